import Foundation
import Testing

/// Drives the real `quarry` REPL in a pseudo-terminal through Support/pty_driver.py.
enum PTY {
    static let driver = CLI.root + "/Tests/QuarryCLITests/Support/pty_driver.py"

    struct Outcome: Decodable {
        let ok: Bool
        let failed: Int?
        let elapsed: [Double]
        let transcript: String
    }

    enum Step {
        case send(String)
        case expect(String, timeout: Double = 5)
        case sleep(Double)

        var json: [String: Any] {
            switch self {
            case .send(let text): return ["send": text]
            case .expect(let pattern, let timeout): return ["expect": pattern, "timeout": timeout]
            case .sleep(let seconds): return ["sleep": seconds]
            }
        }
    }

    static func run(_ steps: [Step], home: String) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", driver, CLI.binary]
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: steps.map(\.json)))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return try JSONDecoder().decode(Outcome.self, from: data)
    }

    static func temporaryHome() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-home-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct REPLTests {
    @Test func multiLineStatementAndTabCompletion() throws {
        let home = try PTY.temporaryHome()
        let outcome = try PTY.run([
            .expect("vql> "),
            .send("LET Howmany = 3\r"),
            .send("SELECT _value AS N\r"),
            .expect("\\.\\.\\.> "),
            .send("FROM ran\t"), .sleep(0.2), .send("en\t"), .sleep(0.2), .send("Howm\t"), .sleep(0.2), .send(")\r"),
            .expect("\\| N \\|.*\\| 2 \\|.*vql> "),
            .send("\u{4}"),
        ], home: home)
        #expect(outcome.ok, "\(outcome.transcript)")
        #expect(outcome.transcript.contains("FROM range(end=Howmany)"))
    }

    @Test func ctrlCCancelsASlowQueryAndThePromptReturns() throws {
        let home = try PTY.temporaryHome()
        let outcome = try PTY.run([
            .expect("vql> "),
            .send("SELECT * FROM glob(globs='/**') WHERE Size < 0\r"),
            .sleep(0.5),
            .send("\u{3}"),
            .expect("query cancelled.*vql> ", timeout: 1),
            .send("SELECT 'still alive' AS S FROM scope()\r"),
            .expect("\\| still alive \\|.*vql> "),
            .send("\u{3}"), .expect("press Ctrl-C again"), .send("\u{3}"),
            .sleep(0.3),
        ], home: home)
        #expect(outcome.ok, "\(outcome.transcript)")
        #expect(outcome.elapsed[1] < 1.0)
    }

    @Test func historyPersistsAcrossRestartsWithPrivateMode() throws {
        let home = try PTY.temporaryHome()
        let first = try PTY.run([
            .expect("vql> "), .send("SELECT 40 + 2 AS Answer FROM scope()\r"), .expect("42.*vql> "), .send("\u{4}"),
        ], home: home)
        #expect(first.ok, "\(first.transcript)")
        let attributes = try FileManager.default.attributesOfItem(atPath: home + "/.quarry_history")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let second = try PTY.run([
            .expect("vql> "), .send("\u{1B}[A"), .sleep(0.2), .send("\r"), .expect("\\| 42 +\\|"), .send("\u{4}"),
        ], home: home)
        #expect(second.ok, "\(second.transcript)")
    }

    @Test func errorsShowACaretAndDotCommandsWork() throws {
        let home = try PTY.temporaryHome()
        let outcome = try PTY.run([
            .expect("vql> "),
            .send("SELECT * FROM rnage(end=2)\r"), .expect("did you mean 'range'"), .expect("\\^"),
            .send(".mode jsonl\r"), .send("SELECT 1 AS One FROM scope()\r"), .expect("\\{\"One\":1\\}"),
            .send(".describe format\r"), .expect("format\\(format, args\\)"),
            .send(".timer on\r"), .send("SELECT 2 AS Two FROM scope()\r"), .expect("Run time: .* 1 rows"),
            .send(".quit\r"), .sleep(0.2),
        ], home: home)
        #expect(outcome.ok, "\(outcome.transcript)")
    }

    @Test func artifactsAreListedCompletedAndCollected() throws {
        let home = try PTY.temporaryHome()
        let outcome = try PTY.run([
            .expect("vql> "),
            .send(".artifacts Sys\r"), .expect("Linux.Sys.Users"),
            .send("SELECT User FROM Artifact.Linux.Sys.Us\t"), .sleep(0.2), .send(") WHERE User = 'root'\r"),
            .expect("\\| root +\\|"),
            .send(".mode jsonl\r"), .send(".collect Linux.Sys.Groups\r"), .expect("\\{\"Group\":\"root\""),
            .send("\u{4}"),
        ], home: home)
        #expect(outcome.ok, "\(outcome.transcript)")
        #expect(outcome.transcript.contains("Artifact.Linux.Sys.Users()"))
    }

    @Test func pipedStdinRunsWithoutPrompts() throws {
        let r = try CLI.run(["repl"], stdin: "LET X = 2\nSELECT X * 21 AS Y\nFROM scope()\n")
        #expect(r.status == 0)
        #expect(r.stdout == "[\n{\"Y\":42}\n]\n")
        #expect(!r.stdout.contains("vql>"))
    }
}
