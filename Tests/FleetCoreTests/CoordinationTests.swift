import FleetCore
import Foundation
import Testing

/// The datastore takes each hunt fan-out decision once, whoever asks.
@Suite struct CoordinationTests {
    static func store() async throws -> SQLiteFleetStore {
        let store = try SQLiteFleetStore(path: NSTemporaryDirectory() + "quarry-coord-\(UUID().uuidString).db")
        try await store.migrate()
        return store
    }

    static func flow(_ client: String, round: Int = 1, at time: Double = 1000) -> FlowRecord {
        FlowRecord(flowId: "F.\(UUID().uuidString.prefix(12))", clientId: client, huntId: "H.1", round: round, request: CollectionRequest(artifacts: ["A"]), creator: "t", createdAt: time)
    }

    @Test func aClientGetsOneFlowPerRoundEvenWhenAskedTwice() async throws {
        let store = try await Self.store()
        let first = try await store.addHuntFlows(["C.1", "C.2"].map { Self.flow($0) }, clientLimit: nil, ratePerMinute: nil, now: 1000)
        let again = try await store.addHuntFlows(["C.2", "C.3"].map { Self.flow($0) }, clientLimit: nil, ratePerMinute: nil, now: 1000)
        #expect(first.map(\.clientId) == ["C.1", "C.2"])
        #expect(again.map(\.clientId) == ["C.3"])
        let nextRound = try await store.addHuntFlows([Self.flow("C.1", round: 2)], clientLimit: nil, ratePerMinute: nil, now: 1000)
        #expect(nextRound.count == 1)
        #expect(try await store.huntAssignments("H.1").count == 4)
    }

    @Test func clientLimitAndRateHoldAcrossCalls() async throws {
        let store = try await Self.store()
        let a = try await store.addHuntFlows((1...3).map { Self.flow("C.\($0)") }, clientLimit: 4, ratePerMinute: nil, now: 1000)
        let b = try await store.addHuntFlows((4...9).map { Self.flow("C.\($0)") }, clientLimit: 4, ratePerMinute: nil, now: 1000)
        #expect(a.count == 3 && b.count == 1)
        let rated = try await Self.store()
        let now = 5000.0
        let first = try await rated.addHuntFlows((1...5).map { Self.flow("C.\($0)", at: now) }, clientLimit: nil, ratePerMinute: 2, now: now)
        let soon = try await rated.addHuntFlows((3...5).map { Self.flow("C.\($0)", at: now + 30) }, clientLimit: nil, ratePerMinute: 2, now: now + 30)
        let later = try await rated.addHuntFlows((3...5).map { Self.flow("C.\($0)", at: now + 61) }, clientLimit: nil, ratePerMinute: 2, now: now + 61)
        #expect(first.count == 2 && soon.isEmpty && later.count == 2)
    }

    @Test func onlyOneFrontendStartsARound() async throws {
        let store = try await Self.store()
        var hunt = HuntRecord(huntId: "H.r", request: CollectionRequest(artifacts: ["A"]), conditions: HuntConditions(), state: .running, creator: "t", createdAt: 1, expiresAt: 1e10)
        hunt.round = 1
        try await store.addHunt(hunt)
        var next = hunt
        next.round = 2
        let proposal = next
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 { group.addTask { (try? await store.advanceHunt(proposal, fromRound: 1)) ?? false } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        #expect(try await store.hunt("H.r")?.round == 2)
    }
}
