import Fleet
import FleetCore
import FleetTestSupport
import Foundation
import Testing

/// Several `quarry server` frontends on one PostgreSQL, with real agents spread over them.
extension FleetTests {
    @Test func frontendsOnOnePostgreSQLShareHuntsAndSurviveAKill() async throws {
        guard let postgres = try await TestPostgres.shared() else { return }
        let database = try await postgres.createDatabase()
        let fleet = try FleetHarness(datastore: database.url, frontends: 3)
        for index in 0..<3 { try await fleet.startServer(index) }
        for (index, name) in ["a", "b", "c"].enumerated() { try fleet.startAgent(name, frontend: index) }
        try await fleet.waitForAgents(["a", "b", "c"], anyFrontend: true)

        // A hunt created through frontend 0 reaches the agents on frontends 1 and 2 within a second or so.
        let created = Date()
        let first = try fleet.cli(["hunt", "create", "Test.Rows", "--args", "Count=500"])
        try fleet.check(first)
        let hunt = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 10, "all three running or done") {
            let view = try await fleet.get("/hunts/\(hunt)", as: HuntView.self)
            return view.clients.count == 3 && view.clients.allSatisfy { $0.state != .scheduled }
        }
        #expect(Date().timeIntervalSince(created) < 5)
        try await fleet.waitUntil(timeout: 30, "first hunt done") { try await Self.finished(fleet, hunt: hunt).count == 3 }
        let flows = try await fleet.get("/flows", query: ["hunt_id": hunt], as: [FlowRecord].self)
        #expect(flows.count == 3 && Set(flows.map(\.clientId)).count == 3)

        // Kill frontend 1 in the middle of a hunt: its agent moves to another frontend and every
        // row arrives exactly once.
        let count = 20_000
        let second = try fleet.cli(["hunt", "create", "Test.Rows", "--args", "Count=\(count)", "--args", "Pause=2"])
        try fleet.check(second)
        let big = second.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await Task.sleep(for: .milliseconds(800))
        fleet.killServer(1)
        try await fleet.waitUntil(timeout: 60, "second hunt done") { try await Self.finished(fleet, hunt: big).count == 3 }
        let byClient = try await Self.rowsByClient(fleet, hunt: big)
        #expect(byClient.count == 3)
        for (client, rows) in byClient {
            let numbers = Set(rows.compactMap { row -> Int? in
                (try? JSONSerialization.jsonObject(with: Data(row.json.utf8)) as? [String: Any])?["N"] as? Int
            })
            #expect(rows.count == count, "client \(client): \(rows.count) rows")
            #expect(numbers.count == count, "client \(client): duplicates")
        }
        let view = try await fleet.get("/hunts/\(big)", as: HuntView.self)
        #expect(view.states["finished"] == 3)
        // The moved agent is now served by a surviving frontend.
        #expect(fleet.log("agent-b").contains("connected to https://127.0.0.1:\(fleet.ports[2])") || fleet.log("agent-b").contains("connected to https://127.0.0.1:\(fleet.ports[0])"))
        await postgres.dropDatabase(database.name)
    }
}
