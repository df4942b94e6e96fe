import Fleet
import FleetCore
import Foundation
import Testing

/// Alerts end to end: alert() in a collection on a real agent becomes a stored alert, an audit
/// entry, a /metrics count and a webhook call to a real local HTTP listener; analysts list and
/// acknowledge it, readers may not acknowledge.
extension FleetTests {
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetAlertTests {
    @Test func alertFromACollectionIsStoredAuditedCountedAndPosted() async throws {
        let fleet = try FleetHarness()
        let (hook, received) = try await fleet.startWebhookListener()
        defer {
            kill(hook.processIdentifier, SIGKILL)
            hook.waitUntilExit()
        }
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let marker = "m\(UInt32.random(in: 0...UInt32.max))"
        try fleet.check(fleet.cli(["collect", id, "Test.Alert", "--args", "Marker=\(marker)", "--wait"]))

        try await fleet.waitUntil(timeout: 20, "the alert") {
            (try? await fleet.get("/alerts", as: [AlertRecord].self))?.contains { $0.details.contains(marker) } == true
        }
        let alert = try #require(try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self).first)
        #expect(alert.name == "Exec from /tmp" && alert.severity == .high && alert.artifact == "Test.Alert" && alert.flowId.hasPrefix("F."))
        // Filters: a higher minimum severity hides it; the CLI lists it.
        #expect(try await fleet.get("/alerts", query: ["severity": "critical"], as: [AlertRecord].self).isEmpty)
        let listed = try fleet.cli(["alerts", "list", "--severity", "high", "--since", "1h", "--format", "jsonl"])
        #expect(listed.status == 0 && listed.stdout.contains(marker), "\(listed.stderr)")
        // The webhook got it, as JSON.
        try await fleet.waitUntil(timeout: 20, "the webhook call") {
            ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").contains(marker)
        }
        let posted = try String(contentsOfFile: received, encoding: .utf8).split(separator: "\n").first { $0.contains(marker) }
        let decoded = try JSONDecoder().decode(AlertRecord.self, from: Data((posted ?? "").utf8))
        #expect(decoded.name == alert.name && decoded.clientId == id && decoded.id == alert.id)
        // Counted and audited.
        let metrics = try await fleet.api().metrics()
        #expect(metrics.contains("quarry_alerts_total 1"), "\(metrics.split(separator: "\n").filter { $0.contains("alert") })")
        #expect(try await fleet.get("/audit", as: [AuditEntry].self).contains { $0.action == "alert" && $0.user == id && $0.details.contains(marker) })

        // A reader may list but not acknowledge; an investigator acknowledges, once, audited.
        let reader = fleet.dir + "/reader.yaml", investigator = fleet.dir + "/investigator.yaml"
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", reader]))
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--output", investigator]))
        let alertId = String(try #require(alert.id))
        #expect(try fleet.cli(["alerts", "ack", alertId], apiConfig: reader).status != 0)
        let acked = try fleet.cli(["alerts", "ack", alertId], apiConfig: investigator)
        #expect(acked.status == 0 && acked.stdout.contains("acknowledged by ivan"), "\(acked.stderr)")
        let open = try fleet.cli(["alerts", "list", "--open", "--format", "jsonl"], apiConfig: reader)
        #expect(open.status == 0 && !open.stdout.contains(marker))
        let shown = try fleet.cli(["alerts", "show", alertId, "--format", "jsonl"])
        #expect(shown.stdout.contains("\"AcknowledgedBy\":\"ivan\"") && shown.stdout.contains(marker), "\(shown.stdout)")
        #expect(try await fleet.get("/audit", as: [AuditEntry].self).contains { $0.action == "ack-alert" && $0.user == "ivan" && $0.target == alertId })
        #expect(try fleet.cli(["alerts", "show", "987654"]).status != 0)
    }

    /// The built-in detection on a real agent: a program started from /tmp raises an alert on the
    /// server while the artifact runs from the monitoring table. Prints the exec-to-alert time.
    @Test(.enabled(if: getuid() == 0, "eBPF or the process connector needs root"))
    func execFromTmpOnAnAgentBecomesAnAlert() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["monitoring", "add", "Linux.Detection.ExecFromTmp"]))
        let dropped = fleet.dir + "/dropper"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: dropped)
        let caught = try #require(try await fleet.execUntilAlert(dropped, clientId: id), "no alert for an exec from \(dropped) within 90 s")
        print("exec from /tmp on the agent -> alert stored on the server: \(Int(caught.seconds * 1000)) ms (attempt \(caught.attempts))")
        let alert = try #require(try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self).first)
        #expect(alert.name == "Linux.Detection.ExecFromTmp" && alert.severity == .high && alert.artifact == "Linux.Detection.ExecFromTmp")
        #expect(alert.details.contains(dropped) && alert.details.contains("T1036"), "\(alert.details)")
        try fleet.check(fleet.cli(["monitoring", "rm", "Linux.Detection.ExecFromTmp"]))
    }

    /// alert() in a client event artifact from the monitoring table: the alerts arrive as events
    /// of Server.Internal.Alerts and are recorded with the artifact that raised them.
    @Test func alertsFromAMonitoredEventArtifactAreRecorded() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["monitoring", "add", "Test.AlertEvent"]))
        try await fleet.waitUntil(timeout: 60, "alerts from the event artifact") {
            ((try? await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self)) ?? []).count >= 2
        }
        let alerts = try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self)
        #expect(alerts.allSatisfy { $0.name == "Tick alert" && $0.severity == .low && $0.artifact == "Test.AlertEvent" && $0.details.contains("Tick") }, "\(alerts)")
        // The stream is also kept as events, like any other.
        let events = try fleet.cli(["events", "Server.Internal.Alerts", "--client", id, "--format", "jsonl"])
        #expect(events.status == 0 && events.stdout.contains("Tick alert"), "\(events.stderr)")
        try fleet.check(fleet.cli(["monitoring", "rm", "Test.AlertEvent"]))
    }
}
}
