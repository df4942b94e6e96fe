import Testing
import VQL

/// Inputs that libFuzzer (Fuzz/, `make fuzz`) found crashing a harness, kept as tests so they stay
/// fixed. The fuzz-vql harness requires the canonical text of every statement that parses to parse
/// again to the same statement.
@Suite struct FuzzRegressionTests {
    /// Names that need backquotes (found by fuzz-vql from a vfilter corpus query: the printer wrote
    /// `FROM D1.@Items`, which does not parse).
    @Test(arguments: [
        "SELECT * FROM D1.`@Items`",
        "SELECT * FROM `my plugin`(a=1)",
        "SELECT a.`b c`(x=1) FROM scope()",
        "LET `my var` = 1",
        "LET f(`a b`, c=2) = 1",
        "LET group = 1",
        // fuzz-vql, second session: a dot followed by a combining mark is one Swift Character, so
        // splitting the name on characters kept `a.\u{5B0}b` whole and backquoted it, and a
        // backquoted name cannot be called.
        "SELECT a.\u{5B0}b(epoch=1) AS T FROM scope()",
        "SELECT timestamp\u{FFFD}\u{FFFD}t.\u{5B0}TL(epoch=1) AS T FROM scope()",
        // fuzz-vql, second session: a clause keyword called as a function printed backquoted.
        "SELECT X[1:5], GROUP() FROM scope()",
        "SELECT order.x(a=1) FROM scope()",
    ])
    func canonicalTextParsesBackToTheSameStatement(_ text: String) throws {
        for statement in try Parser.parse(text) {
            let printed = CanonicalPrinter.print(statement)
            let again = try Parser.parse(printed)
            #expect(again.count == 1)
            #expect(again.first.map(CanonicalPrinter.print) == printed)
        }
    }

    /// fuzz-plist, second session: a plist `<date>` in the year 10000 trapped converting seconds
    /// to 64-bit nanoseconds. Out-of-range times clamp; NaN is the epoch; infinities clamp.
    @Test func timestampsOutOfRangeClampInsteadOfTrapping() throws {
        #expect(Timestamp(seconds: 1e300).nanoseconds == .max)
        #expect(Timestamp(seconds: -1e300).nanoseconds == .min)
        #expect(Timestamp(seconds: .infinity).nanoseconds == .max)
        #expect(Timestamp(seconds: .nan).nanoseconds == 0)
        #expect(Timestamp(seconds: 1.5).nanoseconds == 1_500_000_000)
        let rows = try Parser.parse("SELECT timestamp(epoch=1e300) AS T FROM scope()")
        #expect(rows.count == 1)
    }

    @Test func quotedPluginNamesKeepTheirParts() throws {
        let printed = try Parser.parse("SELECT * FROM D1.`@Items`").map(CanonicalPrinter.print)
        #expect(printed == ["SELECT * FROM D1.`@Items`"])
    }
}
