import Fleet
import FleetCore
import Foundation
import Testing

/// End-to-end fleet runs: a real server process and real agent processes on loopback.
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetTests {
    /// Rows of a hunt per client.
    static func rowsByClient(_ fleet: FleetHarness, hunt: String) async throws -> [String: [ResultRow]] {
        Dictionary(grouping: try await fleet.results(["hunt_id": hunt]), by: \.clientId)
    }

    static func finished(_ fleet: FleetHarness, hunt: String, round: Int? = nil) async throws -> [HuntClientState] {
        let view = try await fleet.get("/hunts/\(hunt)", as: HuntView.self)
        return view.clients.filter { $0.state.isFinal && (round == nil || $0.round == round) }
    }

    @Test func pslistHuntReachesEveryAgentIncludingOneThatStartsLater() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        for name in ["a", "b"] { try fleet.startAgent(name) }
        try await fleet.waitForAgents(["a", "b"])
        let created = try fleet.cli(["hunt", "create", "Linux.Sys.Pslist", "--description", "who runs"])
        try fleet.check(created)
        let hunt = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hunt.hasPrefix("H."))
        try await fleet.waitUntil(timeout: 30, "two clients done") { try await Self.finished(fleet, hunt: hunt).count == 2 }
        // An agent that enrols after the hunt was created still gets it.
        try fleet.startAgent("c")
        try await fleet.waitForAgents(["c"])
        try await fleet.waitUntil(timeout: 30, "late client done") { try await Self.finished(fleet, hunt: hunt).count == 3 }

        let byClient = try await Self.rowsByClient(fleet, hunt: hunt)
        #expect(byClient.count == 3)
        for name in ["a", "b", "c"] {
            let id = try #require(fleet.clientId(name))
            let pid = try #require(fleet.agents[name]).processIdentifier
            let rows = try #require(byClient[id])
            // Each agent's own process is in its own rows.
            #expect(rows.contains { $0.json.contains("\"Pid\":\(pid),") })
            #expect(rows.allSatisfy { $0.fqdn == ProcessInfo.processInfo.hostName || !$0.fqdn.isEmpty })
        }
        let view = try await fleet.get("/hunts/\(hunt)", as: HuntView.self)
        #expect(view.states["finished"] == 3)
        // Exactly one flow per client in the round, however many scheduler passes ran.
        let flows = try await fleet.get("/flows", query: ["hunt_id": hunt], as: [FlowRecord].self)
        #expect(flows.count == 3 && Set(flows.map(\.clientId)).count == 3)
        // hunt results through the CLI carry ClientId, FlowId and Fqdn on every row.
        let results = try fleet.cli(["hunt", "results", hunt, "--format", "jsonl"])
        try fleet.check(results)
        let lines = results.stdout.split(separator: "\n")
        #expect(lines.count == byClient.values.reduce(0) { $0 + $1.count })
        #expect(lines.allSatisfy { $0.hasPrefix("{\"ClientId\":\"C.") && $0.contains("\"FlowId\":\"F.") && $0.contains("\"Fqdn\":") })
        // Server-side VQL over the results.
        let query = try fleet.cli(["query", "--server", "--format", "jsonl", "SELECT ClientId, count() AS N FROM hunt_results(hunt_id='\(hunt)') GROUP BY ClientId"])
        try fleet.check(query)
        #expect(query.stdout.split(separator: "\n").count == 3)
        let metrics = try await fleet.api().metrics()
        #expect(metrics.contains("quarry_connected_clients 3"))
        #expect(metrics.contains("quarry_rows_ingested_total"))
    }

    @Test func serverKilledMidHuntLosesAndDuplicatesNothing() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        for name in ["a", "b", "c"] { try fleet.startAgent(name) }
        try await fleet.waitForAgents(["a", "b", "c"])
        let count = 25_000
        let created = try fleet.cli(["hunt", "create", "Test.Rows", "--args", "Count=\(count)", "--args", "Pause=2"])
        try fleet.check(created)
        let hunt = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Kill the server while the agents collect, and again soon after it comes back.
        try await Task.sleep(for: .milliseconds(1000))
        fleet.killServer()
        try await Task.sleep(for: .milliseconds(2500))
        try await fleet.startServer()
        try await Task.sleep(for: .milliseconds(700))
        fleet.killServer()
        try await fleet.startServer()
        try await fleet.waitUntil(timeout: 60, "three clients done") { try await Self.finished(fleet, hunt: hunt).count == 3 }
        let byClient = try await Self.rowsByClient(fleet, hunt: hunt)
        #expect(byClient.count == 3)
        for (client, rows) in byClient {
            let numbers = rows.compactMap { row -> Int? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(row.json.utf8)) as? [String: Any] else { return nil }
                return object["N"] as? Int
            }
            #expect(numbers.count == count, "client \(client): \(numbers.count) rows")
            #expect(Set(numbers).count == count, "client \(client): duplicates")
        }
        let view = try await fleet.get("/hunts/\(hunt)", as: HuntView.self)
        #expect(view.states["finished"] == 3)
        #expect(view.clients.allSatisfy { $0.rows == count })
    }

    @Test func agentKilledMidCollectionEndsInARecordedError() async throws {
        let fleet = try FleetHarness(grace: 2)
        try await fleet.startServer()
        for name in ["a", "b"] { try fleet.startAgent(name) }
        try await fleet.waitForAgents(["a", "b"])
        var flows: [String: String] = [:]
        for name in ["a", "b"] {
            let id = try #require(fleet.clientId(name))
            let collect = try fleet.cli(["collect", id, "Test.Sleep", "--args", "Seconds=60", "--timeout", "4"])
            try fleet.check(collect)
            flows[name] = collect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try await fleet.waitUntil(timeout: 20, "both flows running") {
            var running = 0
            for flow in flows.values where try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state == .running { running += 1 }
            return running == 2
        }
        fleet.killAgent("a")
        fleet.killAgent("b")
        // a comes back at once and reports the interrupted flow; b stays away and the server gives up on it.
        try fleet.startAgent("a")
        try await fleet.waitUntil(timeout: 30, "both flows ended") {
            var ended = 0
            for flow in flows.values where try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state.isFinal { ended += 1 }
            return ended == 2
        }
        let a = try await fleet.get("/flows/\(try #require(flows["a"]))", as: FlowView.self).flow
        let b = try await fleet.get("/flows/\(try #require(flows["b"]))", as: FlowView.self).flow
        #expect(a.state == .error)
        #expect(a.errors.contains { $0.contains("restarted") })
        #expect(b.state == .error)
        #expect(b.errors.contains { $0.contains("no final status") })
    }

    @Test func scheduledHuntRunsRoundsAndReportsTheDifference() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let watched = fleet.dir + "/watched"
        try FileManager.default.createDirectory(atPath: watched, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: watched + "/first", contents: Data())
        let created = try fleet.cli(["hunt", "create", "Test.Files", "--args", "Dir=\(watched)", "--schedule", "@every 4s"])
        try fleet.check(created)
        let hunt = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 30, "round 1 done") { try await Self.finished(fleet, hunt: hunt, round: 1).count == 1 }
        _ = FileManager.default.createFile(atPath: watched + "/second", contents: Data())
        try await fleet.waitUntil(timeout: 30, "round 2 done") { try await Self.finished(fleet, hunt: hunt, round: 2).count == 1 }
        let diff = try await fleet.get("/hunts/\(hunt)/diff", query: ["round": "2"], as: HuntDiff.self)
        #expect(diff.added.count == 1)
        #expect(diff.added.first?.json.contains("second") == true)
        #expect(diff.removed.isEmpty)
        let round1 = try await fleet.results(["hunt_id": hunt, "round": "1"])
        let round2 = try await fleet.results(["hunt_id": hunt, "round": "2"])
        #expect(round1.count == 1)
        #expect(round2.count == 2)
        let printed = try fleet.cli(["hunt", "diff", hunt, "--round", "2", "--format", "jsonl"])
        try fleet.check(printed)
        #expect(printed.stdout.contains("\"Diff\":\"added\"") && printed.stdout.contains("second"))

        // The console shows the same difference, linked from the hunt's page.
        try fleet.check(fleet.cli(["user", "password", "admin"], input: "correct horse battery staple\n"))
        let admin = try ConsoleClient(fleet: fleet, name: "admin")
        #expect(try admin.signIn("admin", "correct horse battery staple").status == 303)
        #expect(try admin.get("/hunts/\(hunt)").body.contains("href=\"/hunts/\(hunt)/diff\" data-testid=\"hunt-diff-link\""))
        let page = try admin.get("/hunts/\(hunt)/diff?round=2")
        #expect(page.status == 200 && page.body.contains("data-testid=\"diff-added-count\">1<") && page.body.contains("data-testid=\"diff-removed-count\">0<"))
        #expect(page.body.components(separatedBy: "data-testid=\"diff-added-row\"").count - 1 == 1 && page.body.contains("second"))
        #expect(try admin.get("/hunts/\(hunt)/diff?round=1").status == 400)
    }
}
