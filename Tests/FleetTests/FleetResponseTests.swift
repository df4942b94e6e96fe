import Fleet
import FleetCore
import Foundation
import Testing

/// `quarry respond` through a real server and agent: a process killed, a file quarantined and
/// restored byte for byte, the reason in the audit log, and investigators (no REMEDIATION) refused.
extension FleetTests {
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetResponseTests {
    @Test func killQuarantineRestoreAndListThroughTheServer() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))

        // Kill: the sleeper is gone; the row names it.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["307"]
        try sleeper.run()
        defer { if sleeper.isRunning { sleeper.terminate() } }
        let killed = try fleet.cli(["respond", "kill", id, "--pid", String(sleeper.processIdentifier), "--reason", "test kill", "--format", "jsonl"])
        #expect(killed.status == 0, "\(killed.stderr)")
        #expect(killed.stdout.contains("\"Killed\":true") && killed.stdout.contains("sleep"), "\(killed.stdout)")
        sleeper.waitUntilExit()
        #expect(sleeper.terminationReason == .uncaughtSignal)

        // A pid that does not exist: the command says so and fails.
        let missing = try fleet.cli(["respond", "kill", id, "--pid", "4194000", "--reason", "nothing there"])
        #expect(missing.status != 0)

        // Quarantine then restore: gone, then back with the same bytes and mode.
        let path = fleet.dir + "/dropped.bin"
        let bytes = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try bytes.write(to: URL(fileURLWithPath: path))
        chmod(path, 0o640)
        let held = try fleet.cli(["respond", "quarantine", id, "--path", path, "--reason", "test dropper", "--format", "jsonl"])
        #expect(held.status == 0, "\(held.stderr)")
        let quarantineId = try #require(held.stdout.split(separator: "\n").first { $0.hasPrefix("Q.") }.map(String.init), "\(held.stdout)")
        #expect(!FileManager.default.fileExists(atPath: path))
        let restored = try fleet.cli(["respond", "restore", id, "--id", quarantineId, "--reason", "false positive"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(FileManager.default.contents(atPath: path) == bytes)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o640)

        // The list shows each action with who asked and why; the audit log keeps the reason.
        let list = try fleet.cli(["respond", "list", id, "--format", "jsonl"])
        try fleet.check(list)
        let actions = list.stdout.split(separator: "\n")
        #expect(actions.count == 4, "\(list.stdout)")
        #expect(actions.contains { $0.contains("Linux.Response.RestoreFile") && $0.contains("false positive") && $0.contains("admin") })
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "collect" && $0.details.contains("test dropper") })

        // A reason is required; an investigator lacks REMEDIATION and is refused by the server.
        #expect(try fleet.cli(["respond", "kill", id, "--pid", "1"]).status != 0)
        let investigator = fleet.dir + "/investigator.yaml"
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--output", investigator]))
        let refused = try fleet.cli(["respond", "kill", id, "--pid", "1", "--reason", "try"], apiConfig: investigator)
        #expect(refused.status != 0 && refused.stderr.contains("REMEDIATION"), "\(refused.stderr)")
    }
}
}
