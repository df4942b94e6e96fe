import FleetCore
import Foundation
import PostgresNIO

/// Coordination of several frontends on PostgreSQL: a transaction-scoped advisory lock per hunt
/// serialises fan-out decisions (limit and rate hold across frontends), the unique index on
/// (hunt, round, client) makes a second flow for a client impossible, and rounds advance by
/// compare-and-set.
extension PostgresFleetStore {
    public func addHuntFlows(_ flows: [FlowRecord], clientLimit: Int?, ratePerMinute: Int?, now: Double) async throws -> [FlowRecord] {
        guard let first = flows.first, let huntId = first.huntId else { return [] }
        let uniform = flows.filter { $0.huntId == huntId && $0.round == first.round && $0.request == first.request && $0.creator == first.creator }
        let request = try Self.json(first.request)
        return try await transaction("addHuntFlows \(huntId)") { connection in
            try await connection.perform("SELECT pg_advisory_xact_lock(hashtext(\(huntId)))")
            let existing = Set(try await connection.fetchAll(
                "SELECT client_id FROM flows WHERE hunt_id = \(huntId) AND round = \(first.round)").map { try $0.decode(String.self) })
            var room = Int.max
            if let clientLimit, clientLimit > 0 { room = max(0, clientLimit - existing.count) }
            if let ratePerMinute, ratePerMinute > 0 {
                let since = now - 60
                let recent = try await connection.fetchAll(
                    "SELECT COUNT(*) FROM flows WHERE hunt_id = \(huntId) AND created_at > \(since)").first.map { try $0.decode(Int.self) } ?? 0
                room = min(room, max(0, ratePerMinute - recent))
            }
            var seen = existing
            let chosen = Array(uniform.filter { seen.insert($0.clientId).inserted }.prefix(room))
            guard !chosen.isEmpty else { return [] }
            let ids = chosen.map(\.flowId), clients = chosen.map(\.clientId)
            let inserted = Set(try await connection.fetchAll(
                """
                INSERT INTO flows (\(unescaped: Self.flowColumns))
                SELECT f, c, \(huntId), \(first.round), \(request), \(first.state.rawValue), \(first.creator), \(first.createdAt),
                       NULL, NULL, 0, 0, '[]', 0
                FROM unnest(\(ids)::text[], \(clients)::text[]) AS t(f, c)
                ON CONFLICT DO NOTHING
                RETURNING flow_id
                """).map { try $0.decode(String.self) })
            return chosen.filter { inserted.contains($0.flowId) }
        }
    }

    public func advanceHunt(_ hunt: HuntRecord, fromRound: Int) async throws -> Bool {
        try await replaceHunt(hunt, ifRound: fromRound)
    }

    public func huntAssignments(_ huntId: String) async throws -> [HuntAssignment] {
        try await fetch("huntAssignments \(huntId)", "SELECT flow_id, client_id, round, created_at, state FROM flows WHERE hunt_id = \(huntId)") { row in
            let (flow, client, round, created, state) = try row.decode((String, String, Int, Double, String).self)
            return HuntAssignment(flowId: flow, clientId: client, round: round, createdAt: created, state: FlowState(rawValue: state) ?? .error)
        }
    }

    public func scheduledFlows(createdAfter: Double) async throws -> [FlowRecord] {
        try await fetch(
            "scheduledFlows",
            """
            SELECT \(unescaped: Self.flowColumns) FROM flows WHERE state = \(FlowState.scheduled.rawValue) AND created_at > \(createdAfter)
            ORDER BY created_at, flow_id COLLATE "C"
            """, Self.flowRecord)
    }

    public func pendingCancellations() async throws -> [FlowRecord] {
        try await fetch(
            "pendingCancellations",
            """
            SELECT \(unescaped: Self.flowColumns) FROM flows WHERE state = \(FlowState.running.rawValue) AND cancel_requested = 1
            ORDER BY created_at, flow_id COLLATE "C"
            """, Self.flowRecord)
    }
}
