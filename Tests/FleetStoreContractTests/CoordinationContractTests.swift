import Foundation
import Testing

@testable import FleetCore

/// Each hunt fan-out decision is taken once, however many frontends ask — on every engine.
@Suite struct CoordinationContractTests {
    static func flow(_ client: String, round: Int = 1, at time: Double = 1000) -> FlowRecord {
        FlowRecord(flowId: "F.\(UUID().uuidString.prefix(12))", clientId: client, huntId: "H.1", round: round, request: CollectionRequest(artifacts: ["A"]), creator: "t", createdAt: time)
    }

    @Test(arguments: Engine.allCases) func aClientGetsOneFlowPerRoundEvenWhenAskedTwice(engine: Engine) async throws {
        try await withStore(engine) { store in
            let first = try await store.addHuntFlows(["C.1", "C.2"].map { Self.flow($0) }, clientLimit: nil, ratePerMinute: nil, now: 1000)
            let again = try await store.addHuntFlows(["C.2", "C.3"].map { Self.flow($0) }, clientLimit: nil, ratePerMinute: nil, now: 1000)
            #expect(first.map(\.clientId) == ["C.1", "C.2"])
            #expect(again.map(\.clientId) == ["C.3"])
            #expect(try await store.addHuntFlows([Self.flow("C.1", round: 2)], clientLimit: nil, ratePerMinute: nil, now: 1000).count == 1)
            #expect(try await store.huntAssignments("H.1").count == 4)
            #expect(try await store.scheduledFlows(createdAfter: 999).count == 4)
            #expect(try await store.scheduledFlows(createdAfter: 1000).isEmpty)
        }
    }

    @Test(arguments: Engine.allCases) func clientLimitAndRateHoldAcrossCalls(engine: Engine) async throws {
        try await withStore(engine) { store in
            let a = try await store.addHuntFlows((1...3).map { Self.flow("C.\($0)") }, clientLimit: 4, ratePerMinute: nil, now: 1000)
            let b = try await store.addHuntFlows((4...9).map { Self.flow("C.\($0)") }, clientLimit: 4, ratePerMinute: nil, now: 1000)
            #expect(a.count == 3 && b.count == 1)
        }
        try await withStore(engine) { store in
            let now = 5000.0
            let first = try await store.addHuntFlows((1...5).map { Self.flow("C.\($0)", at: now) }, clientLimit: nil, ratePerMinute: 2, now: now)
            let soon = try await store.addHuntFlows((3...5).map { Self.flow("C.\($0)", at: now + 30) }, clientLimit: nil, ratePerMinute: 2, now: now + 30)
            let later = try await store.addHuntFlows((3...5).map { Self.flow("C.\($0)", at: now + 61) }, clientLimit: nil, ratePerMinute: 2, now: now + 61)
            #expect(first.count == 2 && soon.isEmpty && later.count == 2)
        }
    }

    @Test(arguments: Engine.allCases) func frontendsRacingOverOneHuntScheduleEachClientOnce(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let frontends = try await (0..<3).asyncMap { _ in try await database.migrated() }
            let clients = (1...200).map { "C.\($0)" }
            let added = try await withThrowingTaskGroup(of: [FlowRecord].self) { group in
                for (index, store) in frontends.enumerated() {
                    // Each frontend offers every client, in its own order, with a limit of 150.
                    let offer = index == 1 ? clients.reversed() : clients
                    group.addTask { try await store.addHuntFlows(offer.map { Self.flow($0) }, clientLimit: 150, ratePerMinute: nil, now: 1000) }
                }
                return try await group.reduce(into: [FlowRecord]()) { $0 += $1 }
            }
            #expect(added.count == 150)
            #expect(Set(added.map(\.clientId)).count == 150)
            #expect(try await frontends[0].huntAssignments("H.1").count == 150)
        }
    }

    @Test(arguments: Engine.allCases) func onlyOneFrontendStartsARound(engine: Engine) async throws {
        try await withStore(engine) { store in
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

    @Test(arguments: Engine.allCases) func cancellationsToDeliver(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.addFlow(FlowRecord(flowId: "F.c", clientId: "C.1", request: CollectionRequest(artifacts: ["A"]), creator: "t", createdAt: 1))
            try await store.updateFlow("F.c", state: .running, startedAt: 2, endedAt: nil, errors: [])
            #expect(try await store.pendingCancellations().isEmpty)
            try await store.requestCancel("F.c")
            #expect(try await store.pendingCancellations().map(\.flowId) == ["F.c"])
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
