import Foundation
import Testing

@testable import FleetCore

/// The `FleetStore` contract for the client monitoring table and event rows, on every engine.
@Suite struct EventsContractTests {
    @Test(arguments: Engine.allCases) func monitoringEntriesAreSetReplacedAndRemovedByArtifactAndLabel(engine: Engine) async throws {
        try await withStore(engine) { store in
            #expect(try await store.monitoringTable().isEmpty)
            try await store.setMonitoring(MonitoringEntry(artifact: "Linux.Events.SSHLogin", creator: "ann", updatedAt: 1))
            try await store.setMonitoring(MonitoringEntry(artifact: "Linux.Events.DNS", parameters: ["Port": "53"], label: "web", creator: "ann", updatedAt: 2))
            try await store.setMonitoring(MonitoringEntry(artifact: "Linux.Events.DNS", creator: "bob", updatedAt: 3))
            // Same artifact and label: replaced.
            try await store.setMonitoring(MonitoringEntry(artifact: "Linux.Events.DNS", parameters: ["Port": "5353", "Note": "it's \"q\""], label: "web", creator: "bob", updatedAt: 4))
            let table = try await store.monitoringTable()
            #expect(table.map { "\($0.artifact)|\($0.label)" } == ["Linux.Events.DNS|", "Linux.Events.DNS|web", "Linux.Events.SSHLogin|"])
            #expect(table[1] == MonitoringEntry(artifact: "Linux.Events.DNS", parameters: ["Port": "5353", "Note": "it's \"q\""], label: "web", creator: "bob", updatedAt: 4))
            #expect(try await store.removeMonitoring(artifact: "Linux.Events.DNS", label: "web"))
            #expect(try await !store.removeMonitoring(artifact: "Linux.Events.DNS", label: "web"))
            #expect(try await store.monitoringTable().map(\.label) == ["", ""])
            let refused = await #expect(throws: StoreError.self) { try await store.setMonitoring(MonitoringEntry(artifact: "")) }
            #expect(refused?.refusesData == true)
        }
    }

    /// The server monitoring table lives in metadata notes of its own owner: no migration, and
    /// apart from the server's and the clients' notes.
    @Test(arguments: Engine.allCases) func serverMonitoringEntriesAreSetReplacedAndRemovedByArtifact(engine: Engine) async throws {
        try await withStore(engine) { store in
            #expect(try await store.serverMonitoringTable().isEmpty)
            try await store.setServerMonitoring(MonitoringEntry(artifact: "Server.Detection.ExecFromTmp", creator: "ann", updatedAt: 1))
            try await store.setServerMonitoring(MonitoringEntry(artifact: "Server.A", parameters: ["Regex": "^/tmp/", "Note": "it's \"q\""], creator: "ann", updatedAt: 2))
            try await store.setServerMonitoring(MonitoringEntry(artifact: "Server.A", parameters: ["Regex": "^/dev/shm/"], creator: "bob", updatedAt: 3))
            let table = try await store.serverMonitoringTable()
            #expect(table == [
                MonitoringEntry(artifact: "Server.A", parameters: ["Regex": "^/dev/shm/"], creator: "bob", updatedAt: 3),
                MonitoringEntry(artifact: "Server.Detection.ExecFromTmp", creator: "ann", updatedAt: 1),
            ])
            #expect(try await store.metadata(MetadataOwner.server).isEmpty)
            #expect(try await store.monitoringTable().isEmpty)
            #expect(try await store.removeServerMonitoring(artifact: "Server.A"))
            #expect(try await !store.removeServerMonitoring(artifact: "Server.A"))
            #expect(try await store.serverMonitoringTable().map(\.artifact) == ["Server.Detection.ExecFromTmp"])
            let refused = await #expect(throws: StoreError.self) { try await store.setServerMonitoring(MonitoringEntry(artifact: "Bad\u{0}")) }
            #expect(refused?.refusesData == true)
        }
    }

    @Test(arguments: Engine.allCases) func eventBatchesAreStoredOncePerClientArtifactAndSeq(engine: Engine) async throws {
        try await withStore(engine) { store in
            let day = 20_000.0 * 86_400
            let first = EventBatch(clientId: "C.1", artifact: "A", source: "", seq: 1, rows: ["{\"n\":1}", "{\"n\":2}"], receivedAt: day + 10)
            let outcomes = try await store.ingestEvents([
                first,
                EventBatch(clientId: "C.2", artifact: "A", source: "S", seq: 1, rows: ["{\"n\":3}"], receivedAt: day + 5),
                EventBatch(clientId: "C.1", artifact: "B", source: "", seq: 1, rows: ["{\"n\":4}"], receivedAt: day + 6),
                EventBatch(clientId: "C.1", artifact: "A", source: "", seq: 2, rows: ["bad\u{0}"], receivedAt: day + 7),
            ])
            #expect(outcomes.count == 4)
            #expect(Array(outcomes.prefix(3)) == [.stored, .stored, .stored])
            if case .rejected = outcomes[3] {} else { Issue.record("a NUL byte was stored: \(outcomes[3])") }
            // A resend (same client, artifact and seq) stores nothing, even with other rows.
            var resent = first
            resent.rows = ["{\"n\":99}"]
            #expect(try await store.ingestEvents([resent]) == [.duplicate])

            let all = try await store.events(EventQuery(artifact: "A"))
            #expect(all.map(\.json) == ["{\"n\":3}", "{\"n\":1}", "{\"n\":2}"])
            #expect(all.map(\.clientId) == ["C.2", "C.1", "C.1"])
            #expect(all[1] == EventRow(clientId: "C.1", artifact: "A", source: "", time: day + 10, seq: 1, index: 0, json: "{\"n\":1}"))
            #expect(try await store.events(EventQuery(artifact: "A", clientId: "C.1")).map(\.json) == ["{\"n\":1}", "{\"n\":2}"])
            #expect(try await store.events(EventQuery(artifact: "A", source: "S")).map(\.json) == ["{\"n\":3}"])
            #expect(try await store.events(EventQuery(artifact: "A", since: day + 6, until: day + 11)).map(\.json) == ["{\"n\":1}", "{\"n\":2}"])
            #expect(try await store.events(EventQuery(artifact: "A", until: day + 10)).map(\.json) == ["{\"n\":3}"])
            // Paging: after a row's cursor, the rest; a cursor survives its text form.
            let page = try await store.events(EventQuery(artifact: "A", limit: 2))
            #expect(page.count == 2)
            let cursor = try #require(page.last).cursor
            #expect(EventCursor(cursor.description) == cursor)
            #expect(try await store.events(EventQuery(artifact: "A", after: cursor)).map(\.json) == ["{\"n\":2}"])
        }
    }

    @Test(arguments: Engine.allCases) func retentionDeletesWholeDaysBeforeTheCutoff(engine: Engine) async throws {
        try await withStore(engine) { store in
            let dayOne = 20_000.0 * 86_400
            _ = try await store.ingestEvents([
                EventBatch(clientId: "C.1", artifact: "A", source: "", seq: 1, rows: ["{\"n\":1}", "{\"n\":2}"], receivedAt: dayOne + 86_399),
                EventBatch(clientId: "C.1", artifact: "A", source: "", seq: 2, rows: ["{\"n\":3}"], receivedAt: dayOne + 86_400),
            ])
            #expect(try await store.deleteEvents(beforeDay: 20_000) == 0)
            #expect(try await store.deleteEvents(beforeDay: 20_001) == 2)
            #expect(try await store.events(EventQuery(artifact: "A")).map(\.json) == ["{\"n\":3}"])
        }
    }
}
