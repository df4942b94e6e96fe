import Foundation
import Testing
@testable import VQL

/// Golden tests for the language: each Golden/NAME.vql runs in a fresh core session and its
/// statements' rows plus the query log must equal Golden/NAME.golden. Regenerate on purpose with
/// `QUARRY_REGENERATE_GOLDEN=1 swift test --filter GoldenTests` and review the diff.
@Suite struct GoldenTests {
    static let directory = TestSupport.packageRoot + "/Tests/VQLTests/Golden"

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".vql") }.sorted()
    }

    static func render(_ text: String) -> String {
        let logger = MemoryLogger()
        let session = Session(registry: CoreLibrary.registry(), logger: logger)
        var out = ""
        do {
            for statement in try Parser.parse(text) {
                out += "== " + CanonicalPrinter.print(statement) + "\n"
                switch try session.prepare(statement) {
                case .bound: break
                case .rows(let cursor, _):
                    while let row = try cursor.next() { out += JSONWriter.string(row.materialized()) + "\n" }
                    cursor.close()
                }
            }
        } catch let diagnostic as Diagnostic {
            out += diagnostic.render(source: text)
        } catch {
            out += "error: \(error)\n"
        }
        out += "== log\n" + logger.messages.map { $0 + "\n" }.joined()
        return out
    }

    @Test(arguments: cases)
    func golden(_ name: String) throws {
        let text = try String(contentsOfFile: Self.directory + "/" + name, encoding: .utf8)
        let actual = Self.render(text)
        let goldenPath = Self.directory + "/" + name.replacingOccurrences(of: ".vql", with: ".golden")
        if ProcessInfo.processInfo.environment["QUARRY_REGENERATE_GOLDEN"] != nil {
            try actual.write(toFile: goldenPath, atomically: true, encoding: .utf8)
            return
        }
        let expected = (try? String(contentsOfFile: goldenPath, encoding: .utf8)) ?? "(missing \(goldenPath))"
        #expect(actual == expected, "\(name) differs from its golden file; regenerate on purpose if the change is right")
    }

    @Test func thereAreGoldenCases() {
        #expect(Self.cases.count >= 5)
    }
}
