import Foundation
import Testing
@testable import VQL

/// Every recursive path has a depth limit: hostile texts get a clear error, never a stack overflow,
/// and texts at the limits run through every stage (parse, bind, compile, evaluate, print, JSON).
@Suite struct DepthLimitTests {
    static func expectRefused(_ text: String, mentioning words: String) {
        do {
            _ = try Parser.parse(text)
            Issue.record("\(text.prefix(40))… parsed")
        } catch {
            #expect(error.message.contains(words), "\(error.message)")
        }
    }

    /// Runs `body` on a thread with `stack` bytes of stack (as the agent's collection threads,
    /// or smaller) and waits for it.
    static func onThread(stack: Int, _ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            body()
            done.signal()
        }
        thread.stackSize = stack
        thread.start()
        done.wait()
    }

    @Test func deepNestingIsRefusedWithAClearError() {
        for n in [5_000, 100_000] {
            Self.expectRefused("SELECT " + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n) + " FROM scope()", mentioning: "nested more than")
            Self.expectRefused("SELECT " + String(repeating: "[", count: n) + "1" + String(repeating: "]", count: n) + " FROM scope()", mentioning: "nested more than")
            Self.expectRefused("SELECT " + String(repeating: "NOT ", count: n) + "TRUE FROM scope()", mentioning: "nested more than")
            Self.expectRefused("SELECT " + String(repeating: "- ", count: n) + "1 FROM scope()", mentioning: "nested more than")
            Self.expectRefused(String(repeating: "SELECT * FROM foreach(row={", count: n), mentioning: "nested more than")
            Self.expectRefused("SELECT " + String(repeating: "dict(a=", count: n) + "1" + String(repeating: ")", count: n) + " FROM scope()", mentioning: "nested more than")
            // Chains recurse in every later stage though the parser loops over them.
            Self.expectRefused("SELECT " + Array(repeating: "1", count: n).joined(separator: " + ") + " FROM scope()", mentioning: "levels deep")
            Self.expectRefused("SELECT x" + String(repeating: ".y", count: n) + " FROM scope()", mentioning: "levels deep")
            Self.expectRefused("SELECT x" + String(repeating: "[0]", count: n) + " FROM scope()", mentioning: "levels deep")
        }
        #expect(throws: Diagnostic.self) { try Parser.parseLambda("x => " + String(repeating: "(", count: 100_000) + "x") }
    }

    /// At the limits everything works — parse, bind, compile, evaluate, name the columns (the
    /// printer), write JSON — on a thread with the stack the agent gives a collection (8 MiB), in a
    /// debug build (whose frames are several times larger than a release build's).
    @Test func textsAtTheLimitsRunThroughEveryStage() {
        Self.onThread(stack: 8 << 20) {
            let nested = Parser.maxNesting - 2
            let parens = "SELECT " + String(repeating: "(", count: nested) + "1" + String(repeating: ")", count: nested) + " FROM scope()"
            #expect((try? TestSupport.rows(parens))?.count == 1)
            let chain = "SELECT " + Array(repeating: "1", count: Parser.maxDepth - 2).joined(separator: " + ") + " FROM scope()"
            #expect((try? TestSupport.rows(chain))?.first?.hasSuffix(":\(Parser.maxDepth - 2)}") == true)
            let lists = "SELECT " + String(repeating: "[", count: nested) + "1" + String(repeating: "]", count: nested) + " AS X FROM scope()"
            let row = (try? TestSupport.rows(lists))?.first ?? ""
            #expect(row.hasPrefix("{\"X\":[[[") && row.hasSuffix("]]]}"))
            let subqueries = String(repeating: "SELECT * FROM foreach(row={", count: 30) + "SELECT 1 AS X FROM scope()" + String(repeating: "})", count: 30)
            #expect((try? TestSupport.rows(subqueries)) == [#"{"X":1}"#])
        }
    }

    @Test func jsonDepthIsLimitedAndSurrogatesCannotTrap() throws {
        for n in [1_000, 100_000] {
            #expect(throws: JSONParser.ParseError.self) { try JSONParser.parse(String(repeating: "[", count: n) + String(repeating: "]", count: n)) }
            #expect(throws: JSONParser.ParseError.self) { try JSONParser.parse(String(repeating: #"{"a":"#, count: n) + "1" + String(repeating: "}", count: n)) }
        }
        let deep = String(repeating: "[", count: JSONParser.maxDepth - 1) + String(repeating: "]", count: JSONParser.maxDepth - 1)
        #expect(JSONWriter.string(try JSONParser.parse(deep)) == deep)
        // A high surrogate followed by anything but a low one is replaced, not subtracted into a trap.
        #expect(try JSONParser.parse(#""\ud800\u0041""#).stringValue == "\u{FFFD}")
        #expect(try JSONParser.parse(#""\ud83d\ude00""#).stringValue == "😀")
        // parse_json in a query: an error in the log, a NULL in the row.
        let hostile = String(repeating: "[", count: 100_000)
        let result = try TestSupport.run("LET Text = '\(hostile)' SELECT parse_json(data=Text) AS J FROM scope()")
        #expect(result.rows.last == [#"{"J":null}"#])
    }

    /// Values built deeper than the writer goes are cut with a note instead of recursing on.
    @Test func jsonWriterStopsAtItsDepth() {
        var value = Value.int(1)
        for _ in 0..<(JSONWriter.maxDepth + 10) { value = .list([value]) }
        let text = JSONWriter.string(value)
        #expect(text.contains("nested more than \(JSONWriter.maxDepth) levels deep"))
        #expect(text.hasPrefix(String(repeating: "[", count: JSONWriter.maxDepth)))
    }
}
