import Foundation

// The client monitoring table and event rows on SQLite.
extension SQLiteFleetStore {
    public func monitoringTable() async throws -> [MonitoringEntry] {
        try read("monitoringTable") { db in
            try db.query("SELECT artifact, label, parameters, creator, updated_at FROM client_monitoring ORDER BY artifact, label") { row in
                MonitoringEntry(
                    artifact: row.text(0), parameters: try decode([String: String].self, row.text(2), "monitoring parameters"), label: row.text(1),
                    creator: row.text(3), updatedAt: row.double(4))
            }
        }
    }

    public func setMonitoring(_ entry: MonitoringEntry) async throws {
        if let problem = entry.problem { throw StoreError("setMonitoring: \(problem)", refusesData: true) }
        let parameters = try json(entry.parameters)
        try write("setMonitoring \(entry.artifact)") { db in
            try db.run(
                """
                INSERT INTO client_monitoring (artifact, label, parameters, creator, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (artifact, label) DO UPDATE SET parameters = excluded.parameters, creator = excluded.creator, updated_at = excluded.updated_at
                """, entry.artifact, entry.label, parameters, entry.creator, entry.updatedAt)
        }
    }

    public func removeMonitoring(artifact: String, label: String) async throws -> Bool {
        try write("removeMonitoring \(artifact)") { db in
            try db.run("DELETE FROM client_monitoring WHERE artifact = ? AND label = ?", artifact, label) > 0
        }
    }

    public func ingestEvents(_ batches: [EventBatch]) async throws -> [IngestOutcome] {
        if batches.isEmpty { return [] }
        return try write("ingestEvents") { db in
            try batches.map { batch in
                if let problem = batch.problem { return .rejected(problem) }
                let day = EventBatch.day(batch.receivedAt)
                let fresh = try db.run(
                    "INSERT INTO event_batches (client_id, artifact, seq, day) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    batch.clientId, batch.artifact, batch.seq, day)
                guard fresh > 0 else { return .duplicate }
                for (index, row) in batch.rows.enumerated() {
                    try db.run(
                        "INSERT INTO events (client_id, artifact, source, day, received_at, seq, row_index, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        batch.clientId, batch.artifact, batch.source, day, batch.receivedAt, batch.seq, index, row)
                }
                return .stored
            }
        }
    }

    public func events(_ query: EventQuery) async throws -> [EventRow] {
        var conditions = ["artifact = ?"]
        var values: [SQLiteBindable?] = [query.artifact]
        if let source = query.source { conditions.append("source = ?"); values.append(source) }
        if let client = query.clientId { conditions.append("client_id = ?"); values.append(client) }
        if let since = query.since { conditions.append("received_at >= ?"); values.append(since) }
        if let until = query.until { conditions.append("received_at < ?"); values.append(until) }
        if let after = query.after {
            conditions.append("(received_at, client_id, seq, row_index) > (?, ?, ?, ?)")
            values += [after.time, after.clientId, after.seq, after.index]
        }
        values.append(max(0, query.limit))
        let sql = """
            SELECT client_id, artifact, source, received_at, seq, row_index, json FROM events
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY received_at, client_id, seq, row_index LIMIT ?
            """
        return try read("events \(query.artifact)") { db in
            try db.query(sql, values) { row in
                EventRow(clientId: row.text(0), artifact: row.text(1), source: row.text(2), time: row.double(3), seq: row.int(4), index: row.int(5), json: row.text(6))
            }
        }
    }

    public func deleteEvents(beforeDay day: Int) async throws -> Int {
        try write("deleteEvents") { db in
            let rows = try db.run("DELETE FROM events WHERE day < ?", day)
            try db.run("DELETE FROM event_batches WHERE day < ?", day)
            return rows
        }
    }
}
