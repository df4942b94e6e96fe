import Foundation
import Testing
@testable import VQL
import VQLConformance

@Suite struct ParserTests {
    /// Every example text under examples/ and every query in the grammar notes parses.
    @Test func examplesParse() throws {
        let root = TestSupport.packageRoot
        let files = (try FileManager.default.contentsOfDirectory(atPath: root + "/examples")).filter { $0.hasSuffix(".vql") }
        #expect(!files.isEmpty)
        for file in files {
            let text = try String(contentsOfFile: root + "/examples/" + file, encoding: .utf8)
            do {
                let statements = try Parser.parse(text)
                #expect(!statements.isEmpty, "\(file) has no statements")
            } catch {
                Issue.record("\(file): \(error.render(source: text))")
            }
        }
    }

    /// Code blocks in grammar/README.md that look like VQL parse.
    @Test func grammarNotesExamplesParse() throws {
        let text = try String(contentsOfFile: TestSupport.packageRoot + "/grammar/README.md", encoding: .utf8)
        var snippets: [String] = []
        // Placeholders such as "…" and "expr | SELECT" mark schematic forms, not runnable examples.
        for piece in text.components(separatedBy: "`") where (piece.hasPrefix("SELECT ") || piece.hasPrefix("LET ")) && !piece.contains("…") && !piece.contains(" | ") {
            snippets.append(piece)
        }
        #expect(snippets.count >= 2)
        for snippet in snippets {
            #expect(throws: Never.self, "\(snippet)") { try Parser.parse(snippet) }
        }
    }

    /// The canonical printer reproduces the reference formatter for every corpus statement.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: ConformanceTests.corpus)))
    func canonicalPrinterMatchesReference() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: ConformanceTests.corpus))
        let cases = try JSONParser.parse(bytes: [UInt8](data)).listElements ?? []
        var checked = 0
        for c in cases {
            for s in c.member("statements").listElements ?? [] {
                let vql = s.member("vql").stringValue ?? ""
                let canonical = s.member("canonical").stringValue ?? ""
                let statements = try Parser.parse(vql)
                #expect(statements.count == 1, "\(vql)")
                if let first = statements.first {
                    #expect(CanonicalPrinter.print(first) == canonical, "\(vql)")
                }
                checked += 1
            }
        }
        #expect(checked > 100)
    }

    @Test func precedenceFollowsVfilter() throws {
        // AND is the loosest level: OR binds tighter.
        let s = try Parser.parseExpression("a AND b OR c")
        guard case .binary(.and, _, let right, _) = s.kind, case .binary(.or, _, _, _) = right.kind else {
            Issue.record("expected a AND (b OR c), got \(CanonicalPrinter.print(s))")
            return
        }
        // NOT covers the comparison after it.
        let n = try Parser.parseExpression("NOT foo = 2")
        guard case .not(let inner) = n.kind, case .binary(.equal, _, _, _) = inner.kind else {
            Issue.record("expected NOT (foo = 2)")
            return
        }
        // * binds tighter than +, which binds tighter than comparison.
        let m = try Parser.parseExpression("1 + 2 * 3 = 7")
        #expect(CanonicalPrinter.print(m) == "1 + 2 * 3 = 7")
        guard case .binary(.equal, let lhs, _, _) = m.kind, case .binary(.add, _, _, _) = lhs.kind else {
            Issue.record("expected (1 + (2 * 3)) = 7")
            return
        }
    }

    @Test func literalsAndComments() throws {
        let statements = try Parser.parse("""
            /* block */ SELECT 0x10 AS Hex, -5 AS Neg, 1.5e3 AS F, '''raw \\n''' AS R, "a\\x41" AS E -- tail
            FROM scope() // another
            select 1 from scope()
            """)
        #expect(statements.count == 2)
        let rows = try TestSupport.rows(#"SELECT 0x10 AS Hex, -5 AS Neg, 1.5e3 AS F, '''raw \n''' AS R, "a\x41" AS E FROM scope()"#)
        #expect(rows == [#"{"Hex":16,"Neg":-5,"F":1500,"R":"raw \\n","E":"aA"}"#])
    }

    @Test func errorsNameLineColumnAndExpectation() {
        let text = "SELECT *\nFROM test(\n  a=1,, b=2)"
        do {
            _ = try Parser.parse(text)
            Issue.record("expected a parse error")
        } catch {
            #expect(error.range.start.line == 3)
            #expect(error.range.start.column == 7)
            #expect(error.message.contains("expected an argument name"))
            let rendered = error.render(source: text)
            #expect(rendered.contains("query:3:7"))
            #expect(rendered.contains("      ^"))
        }
        for bad in ["SELECT", "SELECT 1 FROM", "LET = 1", "SELECT 'open FROM x", "SELECT (1 FROM scope()", "SELECT 1 FROM scope() LIMIT x", "SELECT 1 /* no end"] {
            #expect(throws: Diagnostic.self, "\(bad)") { try Parser.parse(bad) }
        }
    }

    @Test func keywordsAreCaseInsensitiveAndUsableAsMembers() throws {
        let rows = try TestSupport.rows("select dict(Order=1).Order AS o from scope() where TRUE limit 5")
        #expect(rows == [#"{"o":1}"#])
    }

    /// Hostile input never crashes the lexer or parser: random bytes and truncations of real queries.
    @Test func garbageNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("SELECT FROM WHERE LET ( ) [ ] { } , . = <= => =~ ' \" ` - / * 0x1 -- /* */ \\ \n abc 12 ** || &&".utf8)
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<60, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator) ?? 0x20 }
            _ = try? Parser.parse(String(decoding: bytes, as: UTF8.self))
        }
        let query = "LET X(a, b=2) = SELECT a + b AS S, {SELECT * FROM range(end=3)} AS Q FROM scope() WHERE S =~ 'x' ORDER BY S DESC LIMIT 3"
        for i in 0...query.count {
            _ = try? Parser.parse(String(query.prefix(i)))
        }
    }
}

extension ParserTests {
    /// Velociraptor's artifacts use clause keywords as column names (Linux.Sys.Groups selects `Group`).
    @Test func clauseKeywordsReadAsNamesInExpressions() throws {
        let rows = try TestSupport.rows("LET Group = 'wheel' SELECT Group, dict(Order=1).Order AS Order FROM scope() ORDER BY Order LIMIT 1")
        #expect(rows == [#"{"Group":"wheel","Order":1}"#])
    }
}
