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

    @Test func secondAnalystApprovesResponseActions() async throws {
        let fleet = try FleetHarness()
        var config = try ConfigFile.load(ServerConfig.self, from: fleet.dir + "/srv/server0.yaml")
        config.responseApprovals = true
        try ConfigFile.save(config, to: fleet.dir + "/srv/server0.yaml")
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let olga = fleet.dir + "/olga.yaml", rita = fleet.dir + "/rita.yaml"
        try fleet.check(fleet.cli(["user", "add", "olga", "--role", "administrator", "--output", olga]))
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", rita]))

        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["311"]
        try sleeper.run()
        defer { if sleeper.isRunning { kill(sleeper.processIdentifier, SIGKILL) } }
        // The request is held: exit status 3, the action ID printed, the process alive.
        let asked = try fleet.cli(["respond", "kill", id, "--pid", String(sleeper.processIdentifier), "--reason", "needs two"])
        #expect(asked.status == 3, "\(asked.stderr)")
        let action = try #require(asked.stdout.split(separator: "\n").first { $0.hasPrefix("A.") }.map(String.init))
        try await Task.sleep(for: .seconds(1))
        #expect(sleeper.isRunning)
        #expect(try fleet.cli(["respond", "list", id, "--format", "jsonl"]).stdout.contains("awaiting approval"))

        // Not by the requester, not by a reader; not around the rule by a raw hunt.
        let own = try fleet.cli(["respond", "approve", action])
        #expect(own.status != 0 && own.stderr.contains("another analyst"), "\(own.stderr)")
        #expect(try fleet.cli(["respond", "approve", action], apiConfig: rita).status != 0)
        let hunt = try fleet.cli(["hunt", "create", "Linux.Response.KillProcess", "--args", "Pid=\(sleeper.processIdentifier)"])
        #expect(hunt.status != 0 && hunt.stderr.contains("approval"), "\(hunt.stderr)")
        #expect(sleeper.isRunning)

        // The second analyst approves: the action runs in the requester's name and the process dies.
        let approved = try fleet.cli(["respond", "approve", action, "--reason", "confirmed"], apiConfig: olga)
        #expect(approved.status == 0, "\(approved.stderr)")
        sleeper.waitUntilExit()
        #expect(sleeper.terminationReason == .uncaughtSignal)
        #expect(try fleet.cli(["respond", "approve", action], apiConfig: olga).status != 0, "decided once")
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "request-response" && $0.user == "admin" && $0.target == action })
        #expect(audit.contains { $0.action == "approve-response" && $0.user == "olga" && $0.target == action })

        // A denied action never runs.
        let second = Process()
        second.executableURL = URL(fileURLWithPath: "/bin/sleep")
        second.arguments = ["313"]
        try second.run()
        defer { if second.isRunning { kill(second.processIdentifier, SIGKILL) } }
        let again = try fleet.cli(["respond", "kill", id, "--pid", String(second.processIdentifier), "--reason", "maybe"])
        let other = try #require(again.stdout.split(separator: "\n").first { $0.hasPrefix("A.") }.map(String.init))
        try fleet.check(fleet.cli(["respond", "deny", other, "--reason", "false positive"], apiConfig: olga))
        try await Task.sleep(for: .seconds(1))
        #expect(second.isRunning)
        #expect(try fleet.cli(["respond", "list", id, "--format", "jsonl"]).stdout.contains("denied by olga"))
    }
}
}
