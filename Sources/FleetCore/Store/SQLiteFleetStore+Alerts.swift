import Foundation

// Alerts on SQLite.
extension SQLiteFleetStore {
    static let alertColumns = "alert_id, raised_at, name, severity, client_id, flow_id, artifact, details, acknowledged_by, acknowledged_at"

    @discardableResult
    public func addAlert(_ alert: AlertRecord) async throws -> Int64 {
        let alert = alert.bounded()
        return try write("addAlert") { db in
            try db.run(
                """
                INSERT INTO alerts (raised_at, name, severity, severity_rank, client_id, flow_id, artifact, details)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                alert.time, alert.name, alert.severity.rawValue, alert.severity.rank, alert.clientId, alert.flowId, alert.artifact, alert.details)
            return Int64(try db.queryFirst("SELECT last_insert_rowid()") { $0.int(0) } ?? 0)
        }
    }

    public func alerts(_ query: AlertQuery) async throws -> [AlertRecord] {
        guard query.limit > 0 else { return [] }
        var conditions: [String] = []
        var values: [SQLiteBindable?] = []
        if let id = query.id {
            conditions.append("alert_id = ?")
            values.append(Int(id))
        }
        if let since = query.since {
            conditions.append("raised_at >= ?")
            values.append(since)
        }
        if let severity = query.minimumSeverity {
            conditions.append("severity_rank >= ?")
            values.append(severity.rank)
        }
        if let client = query.clientId {
            conditions.append("client_id = ?")
            values.append(client)
        }
        if query.unacknowledgedOnly { conditions.append("acknowledged_by IS NULL") }
        if let before = query.before {
            conditions.append("(raised_at, alert_id) < (SELECT raised_at, alert_id FROM alerts WHERE alert_id = ?)")
            values.append(Int(before))
        }
        values.append(query.limit)
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try read("alerts") { db in
            try db.query("SELECT \(Self.alertColumns) FROM alerts \(filter) ORDER BY raised_at DESC, alert_id DESC LIMIT ?", values, Self.alert)
        }
    }

    public func acknowledgeAlert(_ id: Int64, by user: String, at time: Double) async throws -> AlertRecord? {
        try write("acknowledgeAlert") { db in
            try db.run("UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE alert_id = ? AND acknowledged_by IS NULL", user, time, Int(id))
            return try db.queryFirst("SELECT \(Self.alertColumns) FROM alerts WHERE alert_id = ?", [Int(id)], Self.alert)
        }
    }

    private static func alert(_ row: SQLiteStatement) -> AlertRecord {
        AlertRecord(
            id: Int64(row.int(0)), time: row.double(1), name: row.text(2), severity: AlertSeverity(rawValue: row.text(3)) ?? .medium,
            clientId: row.text(4), flowId: row.text(5), artifact: row.text(6), details: row.text(7),
            acknowledgedBy: row.optionalText(8), acknowledgedAt: row.optionalDouble(9))
    }
}
