import Foundation
import Testing

/// Runs the real `quarry` binary (built by `swift build` before the tests).
enum CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let binary = root + "/.build/debug/quarry"

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `executable` (quarry unless another program is given) and collects its output.
    static func run(_ arguments: [String], stdin: String? = nil, executable: String = binary, environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: stderrData, as: UTF8.self))
    }
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct CLITests {
    @Test func jsonPrintsOneArrayPerSelect() throws {
        let r = try CLI.run(["query", "--format", "json", "LET X = 1 SELECT X AS A FROM scope() SELECT 2 AS B FROM range(end=2)"])
        #expect(r.status == 0)
        #expect(r.stdout == "[\n{\"A\":1}\n]\n[\n{\"B\":2},\n{\"B\":2}\n]\n")
    }

    @Test func formatsJsonlCsvAndTable() throws {
        let jsonl = try CLI.run(["query", "--format", "jsonl", "SELECT _value AS N, 'a,b' AS S FROM range(end=2)"])
        #expect(jsonl.stdout == "{\"N\":0,\"S\":\"a,b\"}\n{\"N\":1,\"S\":\"a,b\"}\n")
        let csv = try CLI.run(["query", "--format", "csv", "SELECT _value AS N, 'a,b' AS S FROM range(end=2)"])
        #expect(csv.stdout == "N,S\n0,\"a,b\"\n1,\"a,b\"\n")
        let table = try CLI.run(["query", "--format", "table", "SELECT 'x' AS Name, dict(a=1) AS D FROM scope()"])
        #expect(table.stdout.contains("| Name | D       |"))
        #expect(table.stdout.contains("| x    | {\"a\":1} |"))
    }

    @Test func readsStdinAndFileAndEnv() throws {
        let stdin = try CLI.run(["query", "--format", "jsonl"], stdin: "SELECT Who FROM scope()")
        #expect(stdin.stdout == "{\"Who\":null}\n")
        let env = try CLI.run(["query", "--format", "jsonl", "--env", "Who=me", "SELECT Who FROM scope()"])
        #expect(env.stdout == "{\"Who\":\"me\"}\n")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-cli-\(getpid()).vql").path
        try "SELECT 7 AS Seven FROM scope()".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fromFile = try CLI.run(["query", "--format", "jsonl", "--file", file])
        #expect(fromFile.stdout == "{\"Seven\":7}\n")
    }

    @Test func errorsGoToStderrWithCaretAndNonZeroExit() throws {
        let parse = try CLI.run(["query", "SELECT * FROM range(end=1"])
        #expect(parse.status != 0)
        #expect(parse.stderr.contains("query:1:26"))
        #expect(parse.stderr.contains("^"))
        let unknown = try CLI.run(["query", "SELECT * FROM rnage(end=1)"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("did you mean 'range'"))
        let badArg = try CLI.run(["query", "SELECT format(fromat='x') FROM scope()"])
        #expect(badArg.stderr.contains("did you mean 'format='"))
    }

    @Test func queryLogGoesToStderrOrFile() throws {
        let r = try CLI.run(["query", "--format", "jsonl", "SELECT log(message='hello') FROM scope()"])
        #expect(r.stderr.contains("INFO: hello"))
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-log-\(getpid()).txt").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let f = try CLI.run(["query", "--format", "jsonl", "--log", log, "SELECT log(message='to file') FROM scope()"])
        #expect(!f.stderr.contains("to file"))
        #expect((try String(contentsOfFile: log, encoding: .utf8)).contains("INFO: to file"))
    }

    @Test func listsPluginsAndFunctions() throws {
        let plugins = try CLI.run(["plugins", "range"])
        #expect(plugins.stdout.contains("range(start, end, step)"))
        #expect(plugins.stdout.contains("example: SELECT _value FROM range(start=0, end=3)"))
        let functions = try CLI.run(["functions", "format"])
        #expect(functions.stdout.contains("format(format, args)"))
    }

    @Test func rowsStreamBeforeTheQueryEnds() throws {
        // A query that never ends by itself: the first row must arrive, then SIGINT cancels it.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["query", "--format", "jsonl", "SELECT _value FROM range(end=9223372036854775807)"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        let first = out.fileHandleForReading.availableData
        #expect(String(decoding: first, as: UTF8.self).hasPrefix("{\"_value\":0}"))
        let started = Date()
        process.interrupt()
        _ = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(process.terminationStatus == 130)
    }
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct DocsTests {
    /// docs/reference.md is generated (`make docs`); it must match the declarations.
    @Test func referenceIsCurrent() throws {
        let generated = try CLI.run(["docs"]).stdout
        let committed = try String(contentsOfFile: CLI.root + "/docs/reference.md", encoding: .utf8)
        #expect(generated == committed, "docs/reference.md is stale: run `make docs`")
        #expect(generated.contains("### foreach"))
    }
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct CollectCLITests {
    /// kill -9 in the middle of a collection: the container still opens (Python's zipfile checks
    /// every CRC) and its manifest says it is incomplete.
    @Test func killedCollectionLeavesAReadableIncompleteContainer() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/defs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name: Test.Quick\nsources:\n  - query: SELECT 'done' AS X FROM scope()\n".write(toFile: dir + "/defs/quick.yaml", atomically: true, encoding: .utf8)
        try "name: Test.Forever\nsources:\n  - query: SELECT _value FROM range(end=9223372036854775807)\n".write(toFile: dir + "/defs/forever.yaml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["artifacts", "collect", "Test.Quick", "Test.Forever", "--definitions", dir + "/defs", "--output", dir + "/out.zip"]
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        try process.run()
        // Kill once Test.Quick's member is in the file (its name is in the member's header), so a
        // slow start on a busy machine does not kill the collection before it wrote anything.
        let deadline = Date().addingTimeInterval(60)
        let name = Data("results/Test.Quick.json".utf8)
        while Date() < deadline, (FileManager.default.contents(atPath: dir + "/out.zip") ?? Data()).range(of: name) == nil {
            Thread.sleep(forTimeInterval: 0.1)
        }
        Thread.sleep(forTimeInterval: 0.5)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", """
            import zipfile, json, sys
            z = zipfile.ZipFile(sys.argv[1])
            assert z.testzip() is None
            m = json.loads(z.read('quarry_manifest.json'))
            print(m['complete'], 'results/Test.Quick.json' in z.namelist())
            """, dir + "/out.zip"]
        let out = Pipe()
        check.standardOutput = out
        try check.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        #expect(text == "False True\n")
    }
}
