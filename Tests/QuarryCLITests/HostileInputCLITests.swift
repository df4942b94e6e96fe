import Foundation
import Testing

/// Texts built to exhaust the stack get an error and a non-zero exit, never a crash.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct HostileInputCLITests {
    @Test func deeplyNestedQueriesAndDefinitionsAreErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-hostile-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir + "/defs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The reproduction: 5,000 nested parentheses crashed `quarry query`.
        for n in [5_000, 100_000] {
            try ("SELECT " + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n) + " FROM scope()").write(toFile: dir + "/q.vql", atomically: true, encoding: .utf8)
            let result = try CLI.run(["query", "--file", dir + "/q.vql"])
            #expect(result.status == 1 && result.stderr.contains("nested more than 100 levels deep"), "\(result.status)")
            // The caret is shown in a window of the line, not the whole generated line.
            #expect(result.stderr.count < 1000 && result.stderr.contains("…(((") && result.stderr.contains("^"))
        }
        let json = try CLI.run(["query", "--format", "jsonl", "SELECT parse_json(data=X) AS J FROM scope()", "--env", "X=" + String(repeating: "[", count: 100_000)])
        #expect(json.status == 0 && json.stdout == "{\"J\":null}\n")
        // Artifact definitions nested past any limit: each is reported, the others still load.
        let n = 100_000
        try ("name: Deep.Flow\nsources:\n  - query: SELECT 1 FROM scope()\nx: " + String(repeating: "[", count: n) + String(repeating: "]", count: n) + "\n").write(toFile: dir + "/defs/a.yaml", atomically: true, encoding: .utf8)
        try ("name: Deep.Block\nx:\n" + (0..<3000).map { String(repeating: " ", count: $0) + "- \n" }.joined()).write(toFile: dir + "/defs/b.yaml", atomically: true, encoding: .utf8)
        try ("name: Deep.Query\nsources:\n  - query: SELECT " + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n) + " FROM scope()\n").write(toFile: dir + "/defs/c.yaml", atomically: true, encoding: .utf8)
        try "name: Fine\nsources:\n  - query: SELECT 1 AS One FROM scope()\n".write(toFile: dir + "/defs/d.yaml", atomically: true, encoding: .utf8)
        let list = try CLI.run(["artifacts", "list", "--definitions", dir + "/defs"])
        #expect(list.status == 0 && list.stdout.contains("Fine"))
        #expect(list.stderr.contains("a.yaml") && list.stderr.contains("b.yaml") && list.stderr.contains("c.yaml"))
        #expect(!list.stdout.contains("Deep."))
    }
}
