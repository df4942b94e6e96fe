import FleetCore
import Foundation
import PostgresNIO

// Flows, and reading what their batches stored.
//
// Orderings match SQLite's exactly: text compares byte-wise (COLLATE "C", whatever the database's
// collation), and NULLs sort first in ascending order (NULLS FIRST, as in SQLite).
extension PostgresFleetStore {
    // MARK: flows

    public func addFlow(_ flow: FlowRecord) async throws {
        let request = try Self.json(flow.request), errors = try Self.json(flow.errors)
        try await transaction("addFlow \(flow.flowId)") { connection in
            try await connection.perform(
                """
                INSERT INTO flows (\(unescaped: Self.flowColumns)) VALUES (
                    \(flow.flowId), \(flow.clientId), \(flow.huntId), \(flow.round), \(request), \(flow.state.rawValue),
                    \(flow.creator), \(flow.createdAt), \(flow.startedAt), \(flow.endedAt), \(flow.rows), \(flow.uploadedBytes),
                    \(errors), \(flow.cancelRequested ? 1 : 0))
                """)
        }
    }

    public func flow(_ flowId: String) async throws -> FlowRecord? {
        try await fetch("flow \(flowId)", "SELECT \(unescaped: Self.flowColumns) FROM flows WHERE flow_id = \(flowId)", Self.flowRecord).first
    }

    public func flows(clientId: String?, huntId: String?) async throws -> [FlowRecord] {
        var query = QueryBuilder("SELECT \(Self.flowColumns) FROM flows")
        query.filter("client_id", clientId)
        query.filter("hunt_id", huntId)
        query.append(" ORDER BY created_at DESC, flow_id COLLATE \"C\" DESC")
        return try await fetch("flows", query.query, Self.flowRecord)
    }

    public func scheduledFlows(clientId: String) async throws -> [FlowRecord] {
        try await fetch(
            "scheduledFlows \(clientId)",
            """
            SELECT \(unescaped: Self.flowColumns) FROM flows WHERE client_id = \(clientId) AND state = \(FlowState.scheduled.rawValue)
            ORDER BY created_at, flow_id COLLATE "C"
            """, Self.flowRecord)
    }

    /// Running flows started before the time; a running flow without a start time counts from its creation.
    public func runningFlows(startedBefore: Double) async throws -> [FlowRecord] {
        try await fetch(
            "runningFlows",
            """
            SELECT \(unescaped: Self.flowColumns) FROM flows
            WHERE state = \(FlowState.running.rawValue) AND COALESCE(started_at, created_at) < \(startedBefore)
            ORDER BY started_at NULLS FIRST, flow_id COLLATE "C"
            """, Self.flowRecord)
    }

    public func flowCounts() async throws -> [FlowState: Int] {
        let pairs = try await fetch("flowCounts", "SELECT state, COUNT(*) FROM flows GROUP BY state") { row in
            try row.decode((String, Int).self)
        }
        var counts: [FlowState: Int] = [:]
        for (state, count) in pairs { if let state = FlowState(rawValue: state) { counts[state] = count } }
        return counts
    }

    public func updateFlow(_ flowId: String, state: FlowState, startedAt: Double?, endedAt: Double?, errors: [String]) async throws {
        try await transaction("updateFlow \(flowId)") { connection in
            let rows = try await connection.fetchAll("SELECT errors FROM flows WHERE flow_id = \(flowId) FOR UPDATE")
            guard let stored = try rows.first?.decode(String.self) else { throw StoreError("updateFlow: no flow \(flowId)") }
            let allErrors = try Self.json(try Self.decode([String].self, stored, "errors of flow \(flowId)") + errors)
            try await connection.perform(
                """
                UPDATE flows SET state = \(state.rawValue), started_at = COALESCE(\(startedAt)::double precision, started_at),
                    ended_at = COALESCE(\(endedAt)::double precision, ended_at), errors = \(allErrors)
                WHERE flow_id = \(flowId)
                """)
        }
    }

    public func requestCancel(_ flowId: String) async throws {
        try await changeOne("requestCancel", "flow", flowId) { connection in
            try await connection.fetchAll("UPDATE flows SET cancel_requested = 1 WHERE flow_id = \(flowId) RETURNING 1")
        }
    }

    static let flowColumns = """
        flow_id, client_id, hunt_id, round, request, state, creator, created_at, started_at, ended_at, \
        row_count, uploaded_bytes, errors, cancel_requested
        """

    static func flowRecord(_ row: PostgresRow) throws -> FlowRecord {
        let (flowId, clientId, huntId, round, request, state, creator, createdAt, startedAt, endedAt, rows, uploaded, errors, cancel) =
            try row.decode((String, String, String?, Int, String, String, String, Double, Double?, Double?, Int, Int64, String, Int).self)
        guard let parsedState = FlowState(rawValue: state) else { throw StoreError("flow \(flowId): unknown state \(state)") }
        var flow = FlowRecord(
            flowId: flowId, clientId: clientId, huntId: huntId, round: round,
            request: try decode(CollectionRequest.self, request, "request of flow \(flowId)"),
            state: parsedState, creator: creator, createdAt: createdAt)
        flow.startedAt = startedAt
        flow.endedAt = endedAt
        flow.rows = rows
        flow.uploadedBytes = uploaded
        flow.errors = try decode([String].self, errors, "errors of flow \(flowId)")
        flow.cancelRequested = cancel != 0
        return flow
    }

    // MARK: reading results

    public func results(_ query: ResultQuery) async throws -> [ResultRow] {
        var rows: [ResultRow] = []
        for step in Self.resultSteps(query) {
            let remaining = query.limit.map { max(0, $0) - rows.count }
            if remaining == 0 { break }
            rows += try await fetch("results", Self.resultsQuery(query, step: step, limit: remaining), Self.resultRow)
        }
        return rows
    }

    /// On one pooled connection: PostgreSQL sends the rows as the consumer takes them (postgres-nio
    /// reads the socket only when asked), so a slow consumer holds a chunk, not the result.
    public func streamResults(_ query: ResultQuery, chunk: Int, _ body: ([ResultRow]) async throws -> Void) async throws {
        let size = max(1, chunk)
        do {
            try await client.withConnection { connection in
                var sent = 0
                for step in Self.resultSteps(query) {
                    let remaining = query.limit.map { max(0, $0) - sent }
                    if remaining == 0 { break }
                    var rows: [ResultRow] = []
                    for try await row in try await connection.query(Self.resultsQuery(query, step: step, limit: remaining), logger: connection.logger) {
                        rows.append(try Self.resultRow(row))
                        if rows.count == size {
                            sent += rows.count
                            try await body(rows)
                            rows.removeAll(keepingCapacity: true)
                        }
                    }
                    sent += rows.count
                    if !rows.isEmpty { try await body(rows) }
                }
            }
        } catch {
            throw Self.storeError("streamResults", error)
        }
    }

    private static func resultRow(_ row: PostgresRow) throws -> ResultRow {
        let (clientId, flowId, fqdn, huntId, round, artifact, source, json, seq, index) =
            try row.decode((String, String, String, String?, Int, String, String, String, Int, Int).self)
        return ResultRow(
            clientId: clientId, flowId: flowId, fqdn: fqdn, huntId: huntId, round: round, artifact: artifact, source: source, json: json,
            seq: seq, index: index)
    }

    /// How a query is read: whole, or after a cursor as the rest of the cursor's flow and then the
    /// flows created after it (each an index range, so a page costs the same wherever it starts).
    enum ResultStep {
        case all, restOfFlow(ResultCursor), laterFlows(ResultCursor)
    }

    static func resultSteps(_ query: ResultQuery) -> [ResultStep] {
        guard let after = query.after else { return [.all] }
        return [.restOfFlow(after), .laterFlows(after)]
    }

    /// The statement for one step: flows in creation order, then each flow's rows in (seq, row)
    /// order. A row carries its batch's artifact and source, so those filters apply to the rows directly.
    static func resultsQuery(_ query: ResultQuery, step: ResultStep = .all, limit: Int? = nil) -> PostgresQuery {
        var sql = QueryBuilder(
            """
            SELECT f.client_id, f.flow_id, COALESCE(c.fqdn, ''), f.hunt_id, f.round, r.artifact, r.source, r.json, r.seq, r.row_index
            FROM flows f JOIN results r ON r.flow_id = f.flow_id LEFT JOIN clients c ON c.client_id = f.client_id
            """)
        sql.filter("f.hunt_id", query.huntId)
        sql.filter("f.flow_id", query.flowId)
        sql.filter("f.client_id", query.clientId)
        sql.filter("f.round", query.round)
        sql.filter("r.artifact", query.artifact)
        sql.filter("r.source", query.source)
        if let filter = query.filter, filter.problem == nil {
            sql.condition("strpos(lower(r.json::json ->> \(sql.bind(filter.column))), lower(\(sql.bind(filter.contains)))) > 0")
        }
        switch step {
        case .all:
            break
        case .restOfFlow(let after):
            sql.filter("f.flow_id", after.flowId)
            sql.condition("(r.seq, r.row_index) > (\(sql.bind(after.seq)), \(sql.bind(after.index)))")
        case .laterFlows(let after):
            let flow = sql.bind(after.flowId)
            sql.condition(
                """
                (f.created_at > (SELECT created_at FROM flows WHERE flow_id = \(flow)) OR (f.created_at = (SELECT created_at FROM flows \
                WHERE flow_id = \(flow)) AND f.flow_id COLLATE "C" > \(flow) COLLATE "C"))
                """)
        }
        sql.append(" ORDER BY f.created_at, f.flow_id COLLATE \"C\", r.seq, r.row_index")
        if let limit { sql.append(" LIMIT \(sql.bind(max(0, limit)))") }
        if case .all = step, query.offset > 0 { sql.append(" OFFSET \(sql.bind(query.offset))") }
        return sql.query
    }

    public func resultSources(huntId: String?, flowId: String?) async throws -> [(artifact: String, source: String, rows: Int)] {
        var sql = QueryBuilder(
            "SELECT b.artifact, b.source, SUM(b.row_count)::bigint FROM flows f JOIN flow_batches b ON b.flow_id = f.flow_id")
        sql.condition("b.kind = 'rows'")
        sql.filter("f.hunt_id", huntId)
        sql.filter("f.flow_id", flowId)
        sql.append(" GROUP BY b.artifact, b.source HAVING SUM(b.row_count) > 0 ORDER BY b.artifact COLLATE \"C\", b.source COLLATE \"C\"")
        let sources = try await fetch("resultSources", sql.query) { row in try row.decode((String, String, Int).self) }
        return sources.map { (artifact: $0.0, source: $0.1, rows: $0.2) }
    }

    public func uploads(flowId: String) async throws -> [UploadRecord] {
        try await fetch("uploads \(flowId)", "SELECT flow_id, name, size, sha256, md5 FROM uploads WHERE flow_id = \(flowId) ORDER BY seq") { row in
            let (flowId, name, size, sha256, md5) = try row.decode((String, String, Int64, String, String).self)
            return UploadRecord(flowId: flowId, name: name, size: size, sha256: sha256, md5: md5)
        }
    }

    public func logs(flowId: String) async throws -> [String] {
        try await fetch("logs \(flowId)", "SELECT line FROM flow_logs WHERE flow_id = \(flowId) ORDER BY seq, line_index") { row in
            try row.decode(String.self)
        }
    }
}

/// A statement put together piece by piece, with `$n` parameters numbered as they are bound.
struct QueryBuilder {
    private var sql: String
    private var binds = PostgresBindings()
    private var hasWhere = false

    init(_ sql: String) { self.sql = sql }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }

    mutating func append(_ text: String) { sql += text }

    /// Binds a value; returns its placeholder.
    mutating func bind<Value: PostgresNonThrowingEncodable>(_ value: Value) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    /// Adds a condition to the WHERE clause.
    mutating func condition(_ text: String) {
        sql += hasWhere ? " AND " : " WHERE "
        sql += text
        hasWhere = true
    }

    /// Adds `column = value` when there is a value (nil does not filter).
    mutating func filter<Value: PostgresNonThrowingEncodable>(_ column: String, _ value: Value?) {
        guard let value else { return }
        let placeholder = bind(value)
        condition("\(column) = \(placeholder)")
    }
}
