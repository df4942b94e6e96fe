import Foundation

/// Coordination on SQLite: one writer at a time makes every call here atomic by itself.
extension SQLiteFleetStore {
    public func addHuntFlows(_ flows: [FlowRecord], clientLimit: Int?, ratePerMinute: Int?, now: Double) async throws -> [FlowRecord] {
        guard let first = flows.first, let huntId = first.huntId else { return [] }
        return try write("addHuntFlows \(huntId)") { db in
            var existing = Set(try db.query("SELECT client_id FROM flows WHERE hunt_id = ? AND round = ?", [huntId, first.round]) { $0.text(0) })
            var room = Int.max
            if let clientLimit, clientLimit > 0 { room = max(0, clientLimit - existing.count) }
            if let ratePerMinute, ratePerMinute > 0 {
                let recent = try db.queryFirst("SELECT COUNT(*) FROM flows WHERE hunt_id = ? AND created_at > ?", [huntId, now - 60]) { $0.int(0) } ?? 0
                room = min(room, max(0, ratePerMinute - recent))
            }
            var added: [FlowRecord] = []
            for flow in flows where added.count < room && flow.huntId == huntId && flow.round == first.round {
                guard existing.insert(flow.clientId).inserted else { continue }
                try db.run(
                    "INSERT INTO flows (\(Self.flowColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    flow.flowId, flow.clientId, flow.huntId, flow.round, try json(flow.request), flow.state.rawValue,
                    flow.creator, flow.createdAt, flow.startedAt, flow.endedAt, flow.rows, flow.uploadedBytes,
                    try json(flow.errors), flow.cancelRequested)
                added.append(flow)
            }
            return added
        }
    }

    public func advanceHunt(_ hunt: HuntRecord, fromRound: Int) async throws -> Bool {
        try replaceHunt(hunt, ifRound: fromRound)
    }

    public func huntAssignments(_ huntId: String) async throws -> [HuntAssignment] {
        try read("huntAssignments \(huntId)") { db in
            try db.query("SELECT flow_id, client_id, round, created_at, state FROM flows WHERE hunt_id = ?", [huntId]) { row in
                HuntAssignment(flowId: row.text(0), clientId: row.text(1), round: row.int(2), createdAt: row.double(3), state: FlowState(rawValue: row.text(4)) ?? .error)
            }
        }
    }

    public func scheduledFlows(createdAfter: Double) async throws -> [FlowRecord] {
        try read("scheduledFlows") { db in
            try db.query(
                "SELECT \(Self.flowColumns) FROM flows WHERE created_at > ? AND state = ? ORDER BY created_at, flow_id",
                [createdAfter, FlowState.scheduled.rawValue], flowRecord)
        }
    }

    public func pendingCancellations() async throws -> [FlowRecord] {
        try read("pendingCancellations") { db in
            try db.query(
                "SELECT \(Self.flowColumns) FROM flows WHERE state = ? AND cancel_requested = 1 ORDER BY created_at, flow_id",
                [FlowState.running.rawValue], flowRecord)
        }
    }
}
