import ArgumentParser
import Fleet
import FleetCore
import Foundation
import VQL

/// `quarry alerts list|show|ack`: what the detections raised, newest first.
struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Alerts raised by detections: list, show, acknowledge.",
        subcommands: [ListAlerts.self, ShowAlert.self, AckAlert.self])

    /// An alert as a row.
    static func row(_ alert: AlertRecord) -> Value {
        .dict(Dict([
            ("Id", alert.id.map { .int($0) } ?? .null), ("Time", isoTime(alert.time)), ("Severity", .string(alert.severity.rawValue)),
            ("Name", .string(alert.name)), ("ClientId", .string(alert.clientId)), ("Artifact", .string(alert.artifact)),
            ("FlowId", .string(alert.flowId)), ("Details", (try? JSONParser.parse(alert.details)) ?? .string(alert.details)),
            ("AcknowledgedBy", alert.acknowledgedBy.map { .string($0) } ?? .null), ("AcknowledgedAt", isoTime(alert.acknowledgedAt)),
        ]))
    }
}

struct ListAlerts: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Alerts, newest first.")
    @Option(help: "From this time or age on (2026-12-01T10:00:00Z, 2026-12-01, 30m, 2h, 7d).") var since: String?
    @Option(help: "At least this severe: info, low, medium, high, critical.") var severity: String?
    @Option(help: "Only this client.") var client: String?
    @Flag(help: "Only alerts nobody acknowledged.") var open = false
    @Option(help: "Most alerts to list.") var limit: Int = 100
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        var query: [String: String?] = ["limit": String(limit), "severity": severity, "client_id": self.client, "open": open ? "1" : nil]
        if let since {
            guard let time = EventRows.parseTime(since) else { throw ValidationError("--since \(since): expected seconds, an ISO 8601 time or an age (30m, 2h, 7d)") }
            query["since"] = String(time)
        }
        let asked = query
        let alerts = try runBlocking { try await client.get("/alerts", query: asked, as: [AlertRecord].self) }
        try format.print(alerts.map(AlertsCommand.row))
    }
}

struct ShowAlert: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One alert with its details.")
    @Argument(help: "Alert id.") var id: Int64
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let alerts = try runBlocking { try await client.get("/alerts", query: ["id": String(id)], as: [AlertRecord].self) }
        guard let alert = alerts.first(where: { $0.id == id }) else { throw ValidationError("no alert \(id)") }
        try format.print([AlertsCommand.row(alert)])
    }
}

struct AckAlert: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ack", abstract: "Mark alerts as seen (audited).")
    @Argument(help: "Alert ids.") var ids: [Int64]
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        for id in ids {
            let alert = try runBlocking { try await client.post("/alerts/\(id)/ack", body: [String: String](), as: AlertRecord.self) }
            print("\(id): acknowledged by \(alert.acknowledgedBy ?? "?")")
        }
    }
}
