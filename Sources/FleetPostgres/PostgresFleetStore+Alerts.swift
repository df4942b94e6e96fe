import FleetCore
import Foundation
import PostgresNIO

// Alerts on PostgreSQL.
extension PostgresFleetStore {
    @discardableResult
    public func addAlert(_ alert: AlertRecord) async throws -> Int64 {
        let alert = alert.bounded()
        let ids = try await fetch(
            "addAlert",
            """
            INSERT INTO alerts (raised_at, name, severity, severity_rank, client_id, flow_id, artifact, details)
            VALUES (\(alert.time), \(alert.name), \(alert.severity.rawValue), \(alert.severity.rank), \(alert.clientId), \(alert.flowId), \(alert.artifact), \(alert.details))
            RETURNING alert_id
            """
        ) { try $0.decode(Int64.self) }
        return ids.first ?? 0
    }

    public func alerts(_ query: AlertQuery) async throws -> [AlertRecord] {
        guard query.limit > 0 else { return [] }
        var sql = QueryBuilder("SELECT \(Self.alertColumns) FROM alerts")
        sql.filter("alert_id", query.id)
        if let since = query.since { sql.condition("raised_at >= \(sql.bind(since))") }
        if let severity = query.minimumSeverity { sql.condition("severity_rank >= \(sql.bind(severity.rank))") }
        sql.filter("client_id", query.clientId)
        if query.unacknowledgedOnly { sql.condition("acknowledged_by IS NULL") }
        if let before = query.before {
            let placeholder = sql.bind(before)
            sql.condition("(raised_at, alert_id) < (SELECT raised_at, alert_id FROM alerts WHERE alert_id = \(placeholder))")
        }
        sql.append(" ORDER BY raised_at DESC, alert_id DESC LIMIT \(sql.bind(query.limit))")
        return try await fetch("alerts", sql.query, Self.alert)
    }

    public func acknowledgeAlert(_ id: Int64, by user: String, at time: Double) async throws -> AlertRecord? {
        try await transaction("acknowledgeAlert") { connection in
            try await connection.perform("UPDATE alerts SET acknowledged_by = \(user), acknowledged_at = \(time) WHERE alert_id = \(id) AND acknowledged_by IS NULL")
            return try await connection.fetchAll("SELECT \(unescaped: Self.alertColumns) FROM alerts WHERE alert_id = \(id)").map(Self.alert).first
        }
    }

    static let alertColumns = "alert_id, raised_at, name, severity, client_id, flow_id, artifact, details, acknowledged_by, acknowledged_at"

    private static func alert(_ row: PostgresRow) throws -> AlertRecord {
        let (id, time, name, severity, client, flow, artifact, details, by, at) =
            try row.decode((Int64, Double, String, String, String, String, String, String, String?, Double?).self)
        return AlertRecord(
            id: id, time: time, name: name, severity: AlertSeverity(rawValue: severity) ?? .medium, clientId: client, flowId: flow,
            artifact: artifact, details: details, acknowledgedBy: by, acknowledgedAt: at)
    }
}
