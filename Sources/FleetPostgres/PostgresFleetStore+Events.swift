import FleetCore
import Foundation
import PostgresNIO

// The client monitoring table and event rows on PostgreSQL. Two frontends storing the same event
// batch at once: the second's insert into `event_batches` waits for the first's transaction and then
// does nothing, so the batch is a duplicate there.
extension PostgresFleetStore {
    public func monitoringTable() async throws -> [MonitoringEntry] {
        try await fetch(
            "monitoringTable",
            "SELECT artifact, label, parameters, creator, updated_at FROM client_monitoring ORDER BY artifact COLLATE \"C\", label COLLATE \"C\""
        ) { row in
            let (artifact, label, parameters, creator, updatedAt) = try row.decode((String, String, String, String, Double).self)
            return MonitoringEntry(
                artifact: artifact, parameters: try Self.decode([String: String].self, parameters, "monitoring parameters"), label: label,
                creator: creator, updatedAt: updatedAt)
        }
    }

    public func setMonitoring(_ entry: MonitoringEntry) async throws {
        if let problem = entry.problem { throw StoreError("setMonitoring: \(problem)", refusesData: true) }
        let parameters = try Self.json(entry.parameters)
        _ = try await fetch(
            "setMonitoring \(entry.artifact)",
            """
            INSERT INTO client_monitoring (artifact, label, parameters, creator, updated_at)
            VALUES (\(entry.artifact), \(entry.label), \(parameters), \(entry.creator), \(entry.updatedAt))
            ON CONFLICT (artifact, label) DO UPDATE SET parameters = excluded.parameters, creator = excluded.creator, updated_at = excluded.updated_at
            """
        ) { _ in () }
    }

    public func removeMonitoring(artifact: String, label: String) async throws -> Bool {
        try await !fetch(
            "removeMonitoring \(artifact)", "DELETE FROM client_monitoring WHERE artifact = \(artifact) AND label = \(label) RETURNING 1"
        ) { _ in () }.isEmpty
    }

    public func ingestEvents(_ batches: [EventBatch]) async throws -> [IngestOutcome] {
        if batches.isEmpty { return [] }
        return try await transaction("ingestEvents") { connection in
            var outcomes: [IngestOutcome] = []
            for batch in batches {
                if let problem = batch.problem {
                    outcomes.append(.rejected(problem))
                    continue
                }
                let day = EventBatch.day(batch.receivedAt)
                let fresh = try await connection.fetchAll(
                    """
                    INSERT INTO event_batches (client_id, artifact, seq, day) VALUES (\(batch.clientId), \(batch.artifact), \(batch.seq), \(day))
                    ON CONFLICT DO NOTHING RETURNING 1
                    """)
                guard !fresh.isEmpty else {
                    outcomes.append(.duplicate)
                    continue
                }
                let indexes = Array(0..<batch.rows.count)
                try await connection.perform(
                    """
                    INSERT INTO events (client_id, artifact, source, day, received_at, seq, row_index, json)
                    SELECT \(batch.clientId), \(batch.artifact), \(batch.source), \(day), \(batch.receivedAt), \(batch.seq), i, j
                    FROM unnest(\(indexes)::bigint[], \(batch.rows)::text[]) AS t (i, j)
                    """)
                outcomes.append(.stored)
            }
            return outcomes
        }
    }

    public func events(_ query: EventQuery) async throws -> [EventRow] {
        var sql = QueryBuilder("SELECT client_id, artifact, source, received_at, seq, row_index, json FROM events")
        sql.filter("artifact", query.artifact)
        sql.filter("source", query.source)
        sql.filter("client_id", query.clientId)
        if let since = query.since { sql.condition("received_at >= \(sql.bind(since))") }
        if let until = query.until { sql.condition("received_at < \(sql.bind(until))") }
        if let after = query.after {
            let (time, client, seq, index) = (sql.bind(after.time), sql.bind(after.clientId), sql.bind(after.seq), sql.bind(after.index))
            sql.condition("(received_at, client_id COLLATE \"C\", seq, row_index) > (\(time), \(client) COLLATE \"C\", \(seq), \(index))")
        }
        sql.append(" ORDER BY received_at, client_id COLLATE \"C\", seq, row_index LIMIT \(sql.bind(max(0, query.limit)))")
        return try await fetch("events \(query.artifact)", sql.query) { row in
            let (client, artifact, source, time, seq, index, json) = try row.decode((String, String, String, Double, Int, Int, String).self)
            return EventRow(clientId: client, artifact: artifact, source: source, time: time, seq: seq, index: index, json: json)
        }
    }

    public func deleteEvents(beforeDay day: Int) async throws -> Int {
        try await transaction("deleteEvents") { connection in
            let rows = try await connection.fetchAll("WITH gone AS (DELETE FROM events WHERE day < \(day) RETURNING 1) SELECT count(*) FROM gone")
            try await connection.perform("DELETE FROM event_batches WHERE day < \(day)")
            return try rows.first?.decode(Int.self) ?? 0
        }
    }
}
