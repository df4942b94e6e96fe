import Foundation
import Testing
@testable import VQL

/// Language semantics from Velociraptor's golden files: dict metadata members, dict and list
/// arithmetic, FROM over a variable's member, VQL_MATERIALIZE_ROW_LIMIT, nesting limits.
@Suite struct LibrarySemanticsTests {
    @Test func dictMetadataMembers() throws {
        let rows = try TestSupport.rows("""
            LET D1 <= dict(A=1, B=2, C=3)
            SELECT D1.`@Keys`, D1.`@Values`, D1.`@Len`, D1.`@String` FROM scope()
            """)
        #expect(rows == [#"{"D1.`@Keys`":["A","B","C"],"D1.`@Values`":[1,2,3],"D1.`@Len`":3,"D1.`@String`":"{\"A\":1,\"B\":2,\"C\":3}"}"#])
        #expect(try TestSupport.rows("LET D1 <= dict(A=1, B=2) SELECT * FROM D1.`@Items`") == [#"{"Key":"A","Value":1}"#, #"{"Key":"B","Value":2}"#])
        // A real key of that name wins.
        #expect(try TestSupport.rows("SELECT dict(`@Len`='mine').`@Len` AS L FROM scope()") == [#"{"L":"mine"}"#])
    }

    @Test func dictAndListArithmetic() throws {
        let rows = try TestSupport.rows("""
            SELECT dict(A=1, B=2) + dict(B=3, C=4) AS Merged, [1, 2, 3, 2] - [2] AS Removed, [1] + [2] AS Joined,
                   dict(A=1) + NULL AS WithNull, 'b' IN dict(b=1) AS Key
            FROM scope()
            """)
        #expect(rows == [#"{"Merged":{"A":1,"B":3,"C":4},"Removed":[1,3],"Joined":[1,2],"WithNull":null,"Key":true}"#])
    }

    @Test func materializeRowLimit() throws {
        let text = """
            LET VQL_MATERIALIZE_ROW_LIMIT <= 2
            LET Y <= SELECT "Hello" FROM scope()
            LET X <= SELECT * FROM range(end=100)
            """
        let (results, log) = try TestSupport.run(text + """

            SELECT * FROM X LIMIT 5
            SELECT X, X[0] FROM scope()
            SELECT Y, Y[0] FROM scope()
            SELECT count() AS N FROM X GROUP BY 1
            """)
        #expect(results[0] == (0..<5).map { #"{"_value":\#($0)}"# })
        #expect(results[1] == [#"{"X":null,"X[0]":null}"#])
        #expect(results[2] == [#"{"Y":[{"\"Hello\"":"Hello"}],"Y[0]":{"\"Hello\"":"Hello"}}"#])
        #expect(results[3] == [#"{"N":100}"#])
        #expect(log.contains { $0.contains("Expand larger than 2 rows") })
    }

    @Test func deeplyNestedTextIsRefused() {
        let deep = "SELECT " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " FROM scope()"
        #expect(throws: Diagnostic.self) { _ = try Parser.parse(deep) }
        let nots = "SELECT " + String(repeating: "NOT ", count: 5000) + "TRUE FROM scope()"
        #expect(throws: Diagnostic.self) { _ = try Parser.parse(nots) }
        let negations = "SELECT " + String(repeating: "- ", count: 5000) + "1 FROM scope()"
        #expect(throws: Diagnostic.self) { _ = try Parser.parse(negations) }
        // Ordinary nesting still parses.
        let fine = "SELECT " + String(repeating: "(", count: 50) + "1" + String(repeating: ")", count: 50) + " AS V FROM scope()"
        #expect((try? TestSupport.rows(fine)) == [#"{"V":1}"#])
    }

    @Test func timestampRowsExposeMembers() throws {
        #expect(try TestSupport.rows("SELECT Year > 2000 AS Y FROM clock(ms=1) LIMIT 1") == [#"{"Y":true}"#])
    }
}

/// Floats print in JSON as Go's encoder prints them (and huge integral floats no longer trap).
@Suite struct FloatOutputTests {
    @Test func goJSONFloatForms() {
        let cases: [(Double, String)] = [
            (3, "3"), (1e20, "100000000000000000000"), (0.00001, "0.00001"), (1.5e-7, "1.5e-7"), (123456.789, "123456.789"),
            (-2.5e-9, "-2.5e-9"), (1e21, "1e+21"), (0.1 + 0.2, "0.30000000000000004"), (-1e300, "-1e+300"), (9.5e18, "9500000000000000000"),
        ]
        for (value, expected) in cases { #expect(JSONWriter.formatDouble(value) == expected, "\(value)") }
    }
}
