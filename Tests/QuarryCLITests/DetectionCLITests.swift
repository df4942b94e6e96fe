import Foundation
import Testing

/// Built-in detection artifacts on the real kernel: a program run from /tmp is reported and
/// raises an alert with its ATT&CK technique; one run from /usr/bin is not.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary) && getuid() == 0, "needs `swift build` and root (eBPF or the process connector)"))
struct DetectionCLITests {
    @Test func execFromTmpRaisesAnAlert() throws {
        let dir = NSTemporaryDirectory() + "quarry-detect-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dropped = dir + "/dropper"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: dropped)

        let query = Process()
        query.executableURL = URL(fileURLWithPath: CLI.binary)
        query.arguments = ["query", "--format", "jsonl", "SELECT * FROM Artifact.Linux.Detection.ExecFromTmp() LIMIT 1"]
        let out = dir + "/out.jsonl", err = dir + "/err.txt"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        query.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        query.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        query.standardInput = FileHandle.nullDevice
        try query.run()
        defer { if query.isRunning { kill(query.processIdentifier, SIGKILL) } }
        // The watch needs a moment to attach: run a harmless program and the dropper until the
        // query reports (LIMIT 1 ends it).
        let deadline = Date().addingTimeInterval(60)
        while query.isRunning, Date() < deadline {
            for program in ["/usr/bin/true", dropped] {
                let run = Process()
                run.executableURL = URL(fileURLWithPath: program)
                run.arguments = ["quarry-detection-marker"]
                try run.run()
                run.waitUntilExit()
            }
            usleep(300_000)
        }
        #expect(!query.isRunning, "no row within 60 s: \((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
        let rows = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        let row = try #require(rows.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
        #expect(row["Exe"] as? String == dropped, "\(row)")
        #expect((row["CommandLine"] as? String)?.contains("quarry-detection-marker") == true)
        #expect(row["Alerted"] as? Bool == true)
        let log = try String(contentsOfFile: err, encoding: .utf8)
        #expect(log.contains("ALERT: ") && log.contains("Linux.Detection.ExecFromTmp") && log.contains("T1036") && log.contains("\"severity\":\"high\""), "\(log)")
    }
}
