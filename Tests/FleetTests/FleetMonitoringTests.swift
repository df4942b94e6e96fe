import Fleet
import FleetCore
import Foundation
import Testing

/// Client event monitoring through a real server and agent: the table reaches the agent, its
/// event rows reach the server within seconds, nothing is lost while the server is down, and
/// removing the artifact stops it.
@Suite(.serialized) struct FleetMonitoringTests {
    /// Every stored row of Test.Clock, oldest first (read page by page, as `quarry events` does).
    func clockRows(_ fleet: FleetHarness) async throws -> [EventRow] {
        var rows: [EventRow] = []
        var after: EventCursor?
        while true {
            let page = try await fleet.api().eventsPage(["artifact": "Test.Clock"], after: after, rows: 500)
            rows += page
            guard page.count == 500, let last = page.last else { return rows }
            after = last.cursor
        }
    }

    @Test func eventRowsReachTheServerSurviveItsRestartAndStopWithTheTable() async throws {
        guard FleetHarness.available else { return }
        let fleet = try FleetHarness()
        try await fleet.startServer()
        _ = try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"], timeout: 60)
        let clientId = try #require(fleet.clientId("a"))

        // Only event artifacts can be monitored; a reader may look but not change the table.
        let notEvent = try fleet.cli(["monitoring", "add", "Test.Rows"])
        #expect(notEvent.status != 0)
        #expect(notEvent.stderr.contains("not a CLIENT_EVENT artifact"))
        let reader = fleet.dir + "/reader.yaml"
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", reader]))
        let refused = try fleet.cli(["monitoring", "add", "Test.Clock"], apiConfig: reader)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("lacks COLLECT_CLIENT"))
        let badArgument = try fleet.cli(["monitoring", "add", "Test.Clock", "--args", "Milis=300"])
        #expect(badArgument.stderr.contains("has no parameter Milis (did you mean Millis?)"))

        try fleet.check(fleet.cli(["monitoring", "add", "Test.Clock", "--args", "Millis=300", "--format", "json"]))
        let shown = try fleet.cli(["monitoring", "show", "--format", "jsonl"], apiConfig: reader)
        try fleet.check(shown)
        #expect(shown.stdout.contains("\"Artifact\":\"Test.Clock\""))
        #expect(shown.stdout.contains("\"Millis\":\"300\""))

        // Rows arrive while the agent runs it, readable through the CLI.
        try await fleet.waitUntil(timeout: 60, "Test.Clock rows on the server") { try await clockRows(fleet).count >= 5 }
        let printed = try fleet.cli(["events", "Test.Clock", "--client", clientId, "--since", "1h", "--format", "jsonl"])
        try fleet.check(printed)
        let lines = printed.stdout.split(separator: "\n")
        #expect(lines.count >= 5)
        #expect(lines.allSatisfy { $0.contains("\"ClientId\":\"\(clientId)\"") && $0.contains("\"Tick\":") && $0.contains("\"_ts\":") })

        // Server VQL reads the same rows (a reader may), and follows new ones.
        let stored = try await clockRows(fleet).count
        let query = try fleet.cli(
            ["query", "--server", "--format", "jsonl", "SELECT count() AS N FROM monitoring(artifact='Test.Clock', client_id='\(clientId)', start_time=now() - 3600) GROUP BY 1"],
            apiConfig: reader)
        try fleet.check(query)
        let counted = query.stdout.split(separator: "\n").last.flatMap { line in Int(line.split(separator: ":").last?.dropLast() ?? "") } ?? 0
        #expect(counted >= stored, "\(query.stdout)")
        let live = try fleet.cli(["query", "--server", "--format", "jsonl", "SELECT ClientId, Tick FROM watch_monitoring(artifact='Test.Clock') LIMIT 2"], apiConfig: reader)
        try fleet.check(live)
        #expect(live.stdout.split(separator: "\n").count == 2 && live.stdout.contains(clientId), "\(live.stdout)")

        // The server dies; the agent keeps collecting into its queue and sends it all afterwards.
        let beforeKill = try await clockRows(fleet)
        fleet.killServer()
        try await Task.sleep(for: .seconds(4))
        try await fleet.startServer()
        try await fleet.waitUntil(timeout: 60, "the rows queued while the server was down") {
            let seqs = try await clockRows(fleet).map(\.seq)
            return (seqs.max() ?? 0) >= (beforeKill.map(\.seq).max() ?? 0) + 8
        }
        let afterRestart = try await clockRows(fleet)
        let seqs = afterRestart.map(\.seq)
        #expect(Set(seqs) == Set(1...(seqs.max() ?? 0)), "event batches missing: \(Set(1...(seqs.max() ?? 0)).subtracting(seqs).sorted())")
        // A batch may hold several rows (the agent sends what gathered in 200 ms); none is stored twice.
        #expect(Set(afterRestart.map { "\($0.seq)/\($0.index)" }).count == afterRestart.count, "a row stored twice")

        // The agent dies and comes back: it resumes its saved table at start and numbers on from
        // where it was (rows it had not yet queued when killed are lost; no number is reused).
        let beforeAgentKill = afterRestart.map(\.seq).max() ?? 0
        fleet.killAgent("a")
        _ = try fleet.startAgent("a")
        try await fleet.waitUntil(timeout: 60, "rows after the agent's restart") {
            (try await clockRows(fleet).map(\.seq).max() ?? 0) >= beforeAgentKill + 5
        }
        let resumed = try await clockRows(fleet).map(\.seq)
        #expect(Set(resumed) == Set(1...(resumed.max() ?? 0)), "event batches missing: \(Set(1...(resumed.max() ?? 0)).subtracting(resumed).sorted())")

        // Removing the artifact stops it on the agent.
        try fleet.check(fleet.cli(["monitoring", "rm", "Test.Clock"]))
        try await fleet.waitUntil(timeout: 60, "the agent stopping Test.Clock") { fleet.log("agent-a").contains("monitoring: stopping Test.Clock") }
        try await Task.sleep(for: .seconds(3))
        let settled = try await clockRows(fleet).count
        try await Task.sleep(for: .seconds(3))
        #expect(try await clockRows(fleet).count == settled)
        let missing = try fleet.cli(["monitoring", "rm", "Test.Clock"])
        #expect(missing.stderr.contains("not in the monitoring table"))
    }
}
