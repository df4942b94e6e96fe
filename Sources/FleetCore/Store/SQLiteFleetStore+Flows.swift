import Foundation

// Flows, ingestion of agents' batches, and reading what they stored.
extension SQLiteFleetStore {
    // MARK: flows

    public func addFlow(_ flow: FlowRecord) async throws {
        try write("addFlow \(flow.flowId)") { db in
            try db.run(
                "INSERT INTO flows (\(Self.flowColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                flow.flowId, flow.clientId, flow.huntId, flow.round, try json(flow.request), flow.state.rawValue,
                flow.creator, flow.createdAt, flow.startedAt, flow.endedAt, flow.rows, flow.uploadedBytes,
                try json(flow.errors), flow.cancelRequested)
        }
    }

    public func flow(_ flowId: String) async throws -> FlowRecord? {
        try read("flow \(flowId)") { db in
            try db.queryFirst("SELECT \(Self.flowColumns) FROM flows WHERE flow_id = ?", [flowId], flowRecord)
        }
    }

    public func flows(clientId: String?, huntId: String?) async throws -> [FlowRecord] {
        var conditions: [String] = []
        var values: [SQLiteBindable?] = []
        if let clientId { conditions.append("client_id = ?"); values.append(clientId) }
        if let huntId { conditions.append("hunt_id = ?"); values.append(huntId) }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try read("flows") { db in
            try db.query("SELECT \(Self.flowColumns) FROM flows \(filter) ORDER BY created_at DESC, flow_id DESC", values, flowRecord)
        }
    }

    public func scheduledFlows(clientId: String) async throws -> [FlowRecord] {
        try read("scheduledFlows \(clientId)") { db in
            try db.query(
                "SELECT \(Self.flowColumns) FROM flows WHERE client_id = ? AND state = ? ORDER BY created_at, flow_id",
                [clientId, FlowState.scheduled.rawValue], flowRecord)
        }
    }

    /// Running flows started before the time; a running flow without a start time counts from its creation.
    public func runningFlows(startedBefore: Double) async throws -> [FlowRecord] {
        try read("runningFlows") { db in
            try db.query(
                """
                SELECT \(Self.flowColumns) FROM flows WHERE state = ? AND COALESCE(started_at, created_at) < ?
                ORDER BY started_at, flow_id
                """,
                [FlowState.running.rawValue, startedBefore], flowRecord)
        }
    }

    public func flowCounts() async throws -> [FlowState: Int] {
        let pairs = try read("flowCounts") { db in
            try db.query("SELECT state, COUNT(*) FROM flows GROUP BY state", []) { row in (row.text(0), row.int(1)) }
        }
        var counts: [FlowState: Int] = [:]
        for (state, count) in pairs { if let state = FlowState(rawValue: state) { counts[state] = count } }
        return counts
    }

    public func updateFlow(_ flowId: String, state: FlowState, startedAt: Double?, endedAt: Double?, errors: [String]) async throws {
        try write("updateFlow \(flowId)") { db in
            guard let stored = try db.queryFirst("SELECT errors FROM flows WHERE flow_id = ?", [flowId], { $0.text(0) }) else {
                throw StoreError("updateFlow: no flow \(flowId)")
            }
            let allErrors = try decode([String].self, stored, "errors of flow \(flowId)") + errors
            try db.run(
                """
                UPDATE flows SET state = ?, started_at = COALESCE(?, started_at), ended_at = COALESCE(?, ended_at), errors = ?
                WHERE flow_id = ?
                """,
                state.rawValue, startedAt, endedAt, try json(allErrors), flowId)
        }
    }

    public func requestCancel(_ flowId: String) async throws {
        try write("requestCancel \(flowId)") { db in
            let changed = try db.run("UPDATE flows SET cancel_requested = 1 WHERE flow_id = ?", flowId)
            if changed == 0 { throw StoreError("requestCancel: no flow \(flowId)") }
        }
    }

    static let flowColumns = """
        flow_id, client_id, hunt_id, round, request, state, creator, created_at, started_at, ended_at, \
        row_count, uploaded_bytes, errors, cancel_requested
        """

    func flowRecord(_ row: SQLiteStatement) throws -> FlowRecord {
        let flowId = row.text(0)
        guard let state = FlowState(rawValue: row.text(5)) else { throw StoreError("flow \(flowId): unknown state \(row.text(5))") }
        var flow = FlowRecord(
            flowId: flowId, clientId: row.text(1), huntId: row.optionalText(2), round: row.int(3),
            request: try decode(CollectionRequest.self, row.text(4), "request of flow \(flowId)"),
            state: state, creator: row.text(6), createdAt: row.double(7))
        flow.startedAt = row.optionalDouble(8)
        flow.endedAt = row.optionalDouble(9)
        flow.rows = row.int(10)
        flow.uploadedBytes = Int64(row.int(11))
        flow.errors = try decode([String].self, row.text(12), "errors of flow \(flowId)")
        flow.cancelRequested = row.bool(13)
        return flow
    }

    // MARK: ingestion

    public func ingest(_ batch: IngestBatch) async throws -> IngestOutcome {
        try write("ingest") { db in try ingest(batch, db) }
    }

    public func ingest(_ batches: [IngestBatch]) async throws -> [IngestOutcome] {
        if batches.isEmpty { return [] }
        return try write("ingest") { db in try batches.map { try ingest($0, db) } }
    }

    /// Stores one batch inside the caller's transaction.
    private func ingest(_ batch: IngestBatch, _ db: SQLiteConnection) throws -> IngestOutcome {
        guard let owner = try db.queryFirst("SELECT client_id FROM flows WHERE flow_id = ?", [batch.flowId], { $0.text(0) }) else {
            return .rejected("no flow \(batch.flowId)")
        }
        guard owner == batch.clientId else {
            return .rejected("flow \(batch.flowId) does not belong to client \(batch.clientId)")
        }
        if let problem = batch.problem { return .rejected(problem) }
        var kind = "", artifact: String?, source: String?, rowCount = 0
        switch batch.payload {
        case .rows(let a, let s, let rows): (kind, artifact, source, rowCount) = ("rows", a, s, rows.count)
        case .upload: kind = "upload"
        case .uploadPart: kind = "uploadPart"
        case .log: kind = "log"
        case .status: kind = "status"
        }
        let inserted = try db.run(
            "INSERT INTO flow_batches (flow_id, seq, kind, artifact, source, row_count) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            batch.flowId, batch.seq, kind, artifact, source, rowCount)
        if inserted == 0 { return .duplicate }

        switch batch.payload {
        case .rows(let artifact, let source, let rows):
            try insertRows(db, batch, artifact: artifact, source: source, rows: rows)
        case .upload(let upload):
            try db.run(
                "INSERT INTO uploads (flow_id, seq, name, size, sha256, md5) VALUES (?, ?, ?, ?, ?, ?)",
                batch.flowId, batch.seq, upload.name, upload.size, upload.sha256, upload.md5)
            try db.run("UPDATE flows SET uploaded_bytes = uploaded_bytes + ? WHERE flow_id = ?", upload.size, batch.flowId)
        case .uploadPart:
            break
        case .log(let lines):
            let statement = try db.statement("INSERT INTO flow_logs (flow_id, seq, line_index, line) VALUES (?, ?, ?, ?)")
            defer { statement.clear() }
            try statement.bind([batch.flowId, batch.seq])
            for (index, line) in lines.enumerated() {
                try statement.bind(index, at: 3)
                try statement.bind(line, at: 4)
                try statement.stepToEnd()
                statement.reset()
            }
        case .status(let status):
            try applyStatus(db, batch.flowId, status)
        }
        return .stored
    }

    /// The fast path: one prepared statement, the batch's constant columns bound once.
    private func insertRows(_ db: SQLiteConnection, _ batch: IngestBatch, artifact: String, source: String, rows: [String]) throws {
        if rows.isEmpty { return }
        let statement = try db.statement(
            "INSERT INTO results (flow_id, seq, row_index, artifact, source, json) VALUES (?, ?, ?, ?, ?, ?)")
        defer { statement.clear() }
        try statement.bind([batch.flowId, batch.seq, nil, artifact, source])
        for (index, row) in rows.enumerated() {
            try statement.bind(index, at: 3)
            try statement.bind(row, at: 6)
            try statement.stepToEnd()
            statement.reset()
        }
        try db.run("UPDATE flows SET row_count = row_count + ? WHERE flow_id = ?", rows.count, batch.flowId)
    }

    /// Running moves a scheduled flow to running (and nothing else); a final status ends the flow
    /// whatever its state, appends its errors, and gives the flow a start time if it had none.
    private func applyStatus(_ db: SQLiteConnection, _ flowId: String, _ status: FlowStatus) throws {
        if status.state == .running {
            try db.run(
                "UPDATE flows SET state = ?, started_at = ? WHERE flow_id = ? AND state = ?",
                FlowState.running.rawValue, status.time, flowId, FlowState.scheduled.rawValue)
            return
        }
        guard status.state.isFinal else { return }
        let stored = try db.queryFirst("SELECT errors FROM flows WHERE flow_id = ?", [flowId], { $0.text(0) }) ?? "[]"
        var errors = try decode([String].self, stored, "errors of flow \(flowId)") + status.errors
        if status.droppedBatches > 0 {
            let count = status.droppedBatches == 1 ? "1 batch was" : "\(status.droppedBatches) batches were"
            errors.append("\(count) lost: the agent's queue dropped them before the server acknowledged them")
        }
        try db.run(
            """
            UPDATE flows SET state = ?, ended_at = ?, started_at = COALESCE(started_at, ?), errors = ?
            WHERE flow_id = ?
            """,
            status.state.rawValue, status.time, status.time, try json(errors), flowId)
    }

    public func resultSources(huntId: String?, flowId: String?) async throws -> [(artifact: String, source: String, rows: Int)] {
        var conditions = ["b.flow_id = f.flow_id", "b.kind = 'rows'"]
        var values: [SQLiteBindable?] = []
        if let huntId { conditions.append("f.hunt_id = ?"); values.append(huntId) }
        if let flowId { conditions.append("f.flow_id = ?"); values.append(flowId) }
        let sql = """
            SELECT b.artifact, b.source, SUM(b.row_count) FROM flows f CROSS JOIN flow_batches b
            WHERE \(conditions.joined(separator: " AND "))
            GROUP BY b.artifact, b.source HAVING SUM(b.row_count) > 0 ORDER BY b.artifact, b.source
            """
        return try read("resultSources") { db in
            try db.query(sql, values) { (artifact: $0.text(0), source: $0.text(1), rows: $0.int(2)) }
        }
    }

    public func uploads(flowId: String) async throws -> [UploadRecord] {
        try read("uploads \(flowId)") { db in
            try db.query("SELECT flow_id, name, size, sha256, md5 FROM uploads WHERE flow_id = ? ORDER BY seq", [flowId]) { row in
                UploadRecord(flowId: row.text(0), name: row.text(1), size: Int64(row.int(2)), sha256: row.text(3), md5: row.text(4))
            }
        }
    }

    public func logs(flowId: String) async throws -> [String] {
        try read("logs \(flowId)") { db in
            try db.query("SELECT line FROM flow_logs WHERE flow_id = ? ORDER BY seq, line_index", [flowId]) { $0.text(0) }
        }
    }
}
