import FleetCore
import Foundation

// What the alerts, response-actions and events pages show. Every string is escaped when rendered.

/// One alert in the alerts table, with an acknowledge form while it is open and the role may.
public struct AlertRowView: Sendable {
    public var id: String
    public var time: String
    public var severity: String
    public var name: String
    public var client: String
    public var clientLink: String
    public var artifact: String
    public var details: String
    public var acknowledgedBy: String
    public var acknowledgedAt: String
    public var open: Bool
    /// The acknowledge form's action (shown only when open and the role may acknowledge).
    public var ackAction: String?

    public init(_ alert: AlertRecord, canAcknowledge: Bool) {
        id = alert.id.map(String.init) ?? ""
        time = ConsoleText.time(alert.time)
        severity = alert.severity.rawValue
        name = alert.name
        client = alert.clientId
        clientLink = alert.clientId.isEmpty ? "" : "/clients/" + ConsoleText.pathSegment(alert.clientId)
        artifact = alert.artifact
        details = ConsoleText.cell(alert.details)
        acknowledgedBy = alert.acknowledgedBy ?? ""
        acknowledgedAt = alert.acknowledgedAt.map(ConsoleText.time) ?? ""
        open = alert.acknowledgedBy == nil
        ackAction = open && canAcknowledge && alert.id != nil ? "/alerts/" + id + "/ack" : nil
    }
}

/// The alerts page: the filter form (minimum severity, open only) and the newest alerts.
public struct AlertsPageView: Sendable {
    public var severityOptions: [OptionView]
    public var openOnly: Bool
    public var rows: [AlertRowView]
    public var next: String?

    /// `severity`: the chosen minimum (nil for all); `next`: the link to older alerts, if any.
    public init(alerts: [AlertRecord], severity: AlertSeverity?, openOnly: Bool, canAcknowledge: Bool, next: String?) {
        severityOptions = [OptionView(value: "", label: "any", selected: severity == nil)]
            + AlertSeverity.allCases.map { OptionView(value: $0.rawValue, label: "at least " + $0.rawValue, selected: $0 == severity) }
        self.openOnly = openOnly
        rows = alerts.map { AlertRowView($0, canAcknowledge: canAcknowledge) }
        self.next = next
    }
}

/// One response action waiting for (or decided by) a second analyst.
public struct ActionRowView: Sendable {
    public var id: String
    public var client: String
    public var clientLink: String
    public var artifacts: String
    public var parameters: String
    public var requester: String
    public var reason: String
    public var created: String
    public var state: String
    public var decided: String
    public var flow: String
    /// The approve and deny forms' actions: only for a pending action the role may decide.
    public var approveAction: String?
    public var denyAction: String?

    public init(
        id: String, clientId: String, artifacts: [String], parameters: [String: String], requester: String, reason: String, createdAt: Double,
        state: String, decidedBy: String?, decidedAt: Double?, decisionReason: String?, flowId: String?, canDecide: Bool
    ) {
        self.id = id
        client = clientId
        clientLink = "/clients/" + ConsoleText.pathSegment(clientId)
        self.artifacts = artifacts.joined(separator: ", ")
        self.parameters = parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.requester = requester
        self.reason = reason
        created = ConsoleText.time(createdAt)
        self.state = state
        let by = decidedBy.map { "by \($0) " } ?? ""
        let why = decisionReason.flatMap { $0.isEmpty ? nil : "(\($0))" } ?? ""
        decided = (by + (decidedAt.map(ConsoleText.time) ?? "") + " " + why).trimmingCharacters(in: .whitespaces)
        flow = flowId ?? ""
        let base = "/actions/" + ConsoleText.pathSegment(id)
        approveAction = state == "pending" && canDecide ? base + "/approve" : nil
        denyAction = state == "pending" && canDecide ? base + "/deny" : nil
    }
}

/// One stored client event row.
public struct EventRowView: Sendable {
    public var time: String
    public var client: String
    public var clientLink: String
    public var source: String
    public var json: String

    public init(_ row: EventRow) {
        time = ConsoleText.time(row.time)
        client = row.clientId
        clientLink = "/clients/" + ConsoleText.pathSegment(row.clientId)
        source = row.source
        json = row.json.count > ResultTableView.maxCellCharacters ? String(row.json.prefix(ResultTableView.maxCellCharacters)) + "…" : row.json
    }
}

/// The events page: the artifact picker (the monitoring table's artifacts) and the newest rows.
public struct EventsPageView: Sendable {
    public var artifactOptions: [OptionView]
    public var artifact: String
    public var hasArtifact: Bool
    public var rows: [EventRowView]
    public var count: Int
    /// Whether older rows exist beyond those shown.
    public var truncated: Bool

    /// `rows` newest first.
    public init(artifacts: [String], artifact: String, rows: [EventRow], truncated: Bool) {
        let names = Set(artifacts).union(artifact.isEmpty ? [] : [artifact]).sorted()
        artifactOptions = names.map { OptionView(value: $0, label: $0, selected: $0 == artifact) }
        self.artifact = artifact
        hasArtifact = !artifact.isEmpty
        self.rows = rows.map(EventRowView.init)
        count = rows.count
        self.truncated = truncated
    }
}
