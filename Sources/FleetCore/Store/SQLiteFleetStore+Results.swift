import Foundation

// Reading results: a page at a time (by cursor or offset), whole or streamed in chunks.
extension SQLiteFleetStore {
    public func results(_ query: ResultQuery) async throws -> [ResultRow] {
        try read("results") { db in
            var reader = SQLiteResultsReader(db, query)
            defer { reader.finish() }
            var rows: [ResultRow] = []
            while case let chunk = try reader.next(max: 10_000), !chunk.isEmpty { rows.append(contentsOf: chunk) }
            return rows
        }
    }

    /// On a reader of its own (waiting for one if need be), in one read transaction held between
    /// chunks; an in-memory database reads everything first (tests only).
    public func streamResults(_ query: ResultQuery, chunk: Int, _ body: ([ResultRow]) async throws -> Void) async throws {
        let size = max(1, chunk)
        guard let readers else {
            let rows = try await results(query)
            for start in stride(from: 0, to: rows.count, by: size) { try await body(Array(rows[start..<min(rows.count, start + size)])) }
            return
        }
        let db = await readers.takeForLongRead()
        defer { readers.giveBackFromLongRead(db) }
        try Self.named("streamResults") { try db.execute("BEGIN") }
        var reader = SQLiteResultsReader(db, query)
        do {
            while case let rows = try Self.named("streamResults", { try reader.next(max: size) }), !rows.isEmpty {
                try await body(rows)
            }
            reader.finish()
            try Self.named("streamResults") { try db.execute("COMMIT") }
        } catch {
            reader.finish()
            try? db.execute("ROLLBACK")
            throw error
        }
    }
}

/// Steps through the rows of a `ResultQuery` on one connection, a chunk at a time.
///
/// Rows come in (flow creation, flow, batch, row) order, walking the flows' unique indexes and the
/// results' primary key, so no sort is needed however many rows there are. A cursor (`after`) is
/// read in two steps, each an index range: the rest of the cursor's flow from (seq, row) on, then
/// the flows created after it; so each page costs the same wherever it starts.
struct SQLiteResultsReader {
    private let db: SQLiteConnection
    private var steps: [(sql: String, values: [SQLiteBindable?])]
    private var current: SQLiteStatement?
    private var remaining: Int?

    init(_ db: SQLiteConnection, _ query: ResultQuery) {
        self.db = db
        remaining = query.limit.map { max(0, $0) }
        steps = Self.steps(query)
    }

    /// The statements that read `query`, in order.
    static func steps(_ query: ResultQuery) -> [(sql: String, values: [SQLiteBindable?])] {
        guard let after = query.after else { return [sql(query, extra: [], offset: query.offset)] }
        // Walking the batches (by source), a range on b.seq would pass to r.seq and make SQLite
        // sort each batch's rows: skip the earlier batches by filter instead ("+ 0").
        let start = query.artifact != nil || query.source != nil ? "b.seq + 0 >= ? AND (b.seq > ?" : "r.seq >= ? AND (r.seq > ?"
        return [
            sql(query, extra: [("f.flow_id = ?", [after.flowId]), ("\(start) OR r.row_index > ?)", [after.seq, after.seq, after.index])]),
            sql(query, extra: [("(f.created_at, f.flow_id) > (SELECT created_at, flow_id FROM flows WHERE flow_id = ?)", [after.flowId])]),
        ]
    }

    /// Up to `max` more rows; empty when done.
    mutating func next(max: Int) throws -> [ResultRow] {
        var rows: [ResultRow] = []
        while rows.count < max, remaining != 0 {
            if current == nil {
                guard !steps.isEmpty else { break }
                let step = steps.removeFirst()
                let statement = try db.statement(step.sql)
                try statement.bind(step.values)
                current = statement
            }
            guard let statement = current else { break }
            if try statement.step() {
                rows.append(
                    ResultRow(
                        clientId: statement.text(0), flowId: statement.text(1), fqdn: statement.text(2), huntId: statement.optionalText(3),
                        round: statement.int(4), artifact: statement.text(5), source: statement.text(6), json: statement.text(7),
                        seq: statement.int(8), index: statement.int(9)))
                remaining = remaining.map { $0 - 1 }
            } else {
                statement.clear()
                current = nil
            }
        }
        return rows
    }

    /// Releases the statement being stepped (call when stopping early).
    mutating func finish() {
        current?.clear()
        current = nil
    }

    /// The statement for `query` with `extra` conditions. With an artifact or source filter, the
    /// flow's batches are walked first to skip other sources' rows a batch at a time.
    static func sql(_ query: ResultQuery, extra: [(String, [SQLiteBindable?])], offset: Int = 0) -> (sql: String, values: [SQLiteBindable?]) {
        var conditions: [String] = []
        var values: [SQLiteBindable?] = []
        let bySource = query.artifact != nil || query.source != nil
        var from = "flows f"
        if bySource {
            from += " CROSS JOIN flow_batches b CROSS JOIN results r"
            conditions.append("b.flow_id = f.flow_id AND r.flow_id = b.flow_id AND r.seq = b.seq")
        } else {
            from += " CROSS JOIN results r"
            conditions.append("r.flow_id = f.flow_id")
        }
        let filters: [(String, SQLiteBindable?)] = [
            ("f.hunt_id", query.huntId), ("f.flow_id", query.flowId), ("f.client_id", query.clientId),
            ("f.round", query.round), ("b.artifact", query.artifact), ("b.source", query.source),
        ]
        for case let (column, value?) in filters {
            conditions.append("\(column) = ?")
            values.append(value)
        }
        if let filter = query.filter, filter.problem == nil {
            conditions.append("instr(lower(CAST(json_extract(r.json, ?) AS TEXT)), lower(?)) > 0")
            values.append("$.\"" + filter.column + "\"")
            values.append(filter.contains)
        }
        for (condition, bound) in extra {
            conditions.append(condition)
            values.append(contentsOf: bound)
        }
        var sql = """
            SELECT f.client_id, f.flow_id, COALESCE(c.fqdn, ''), f.hunt_id, f.round, r.artifact, r.source, r.json, r.seq, r.row_index
            FROM \(from) LEFT JOIN clients c ON c.client_id = f.client_id
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY f.created_at, f.flow_id, \(bySource ? "b.seq" : "r.seq"), r.row_index
            """
        if offset > 0 {
            sql += " LIMIT -1 OFFSET ?"
            values.append(offset)
        }
        return (sql, values)
    }
}
