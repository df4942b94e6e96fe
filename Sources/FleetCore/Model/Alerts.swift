import Foundation

/// How bad an alert is, in order: lists filter by "at least this severe".
public enum AlertSeverity: String, Codable, Sendable, CaseIterable, Comparable {
    case info, low, medium, high, critical

    public var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }

    /// A severity named in a rule ("High", "crit"…); unknown or missing names are medium.
    public static func named(_ text: String?) -> AlertSeverity {
        guard let text = text?.lowercased(), !text.isEmpty else { return .medium }
        return allCases.first { $0.rawValue == text } ?? (text.hasPrefix("crit") ? .critical : text == "informational" ? .info : .medium)
    }
}

/// One alert raised by a detection: by `alert()` in a client's collection or event artifact (it
/// arrives in the flow's log), or in a server-side query. Kept until acknowledged and beyond, so
/// a responder can see what fired, where, when, and who looked at it.
public struct AlertRecord: Codable, Sendable, Equatable {
    /// The alert's number (set by the datastore).
    public var id: Int64?
    public var time: Double
    public var name: String
    public var severity: AlertSeverity
    /// The client it concerns ("" for the server's own).
    public var clientId: String
    /// The flow whose log carried it ("" when raised on the server).
    public var flowId: String
    /// The artifact that raised it, when known.
    public var artifact: String
    /// JSON object text with the alert's details.
    public var details: String
    public var acknowledgedBy: String?
    public var acknowledgedAt: Double?

    public init(
        id: Int64? = nil, time: Double, name: String, severity: AlertSeverity, clientId: String, flowId: String = "", artifact: String = "",
        details: String = "{}", acknowledgedBy: String? = nil, acknowledgedAt: Double? = nil
    ) {
        self.id = id
        self.time = time
        self.name = name
        self.severity = severity
        self.clientId = clientId
        self.flowId = flowId
        self.artifact = artifact
        self.details = details
        self.acknowledgedBy = acknowledgedBy
        self.acknowledgedAt = acknowledgedAt
    }

    /// Field sizes cut to what an audit entry allows: alerts come from agents, so never trusted.
    public func bounded() -> AlertRecord {
        var copy = self
        copy.name = AuditEntry.clip(name, AuditEntry.maxFieldBytes)
        copy.clientId = AuditEntry.clip(clientId, AuditEntry.maxFieldBytes)
        copy.flowId = AuditEntry.clip(flowId, AuditEntry.maxFieldBytes)
        copy.artifact = AuditEntry.clip(artifact, AuditEntry.maxFieldBytes)
        copy.details = AuditEntry.clip(details, AuditEntry.maxDetailsBytes)
        return copy
    }
}

/// Which alerts to list: newest first, optionally from a time on, at least a severity, of one
/// client, only those nobody acknowledged; pages continue below `before` (an alert id).
public struct AlertQuery: Sendable, Equatable {
    /// Only the alert with this id.
    public var id: Int64?
    public var since: Double?
    public var minimumSeverity: AlertSeverity?
    public var clientId: String?
    public var unacknowledgedOnly = false
    public var before: Int64?
    public var limit = 100

    public init(id: Int64? = nil, since: Double? = nil, minimumSeverity: AlertSeverity? = nil, clientId: String? = nil, unacknowledgedOnly: Bool = false, before: Int64? = nil, limit: Int = 100) {
        self.id = id
        self.since = since
        self.minimumSeverity = minimumSeverity
        self.clientId = clientId
        self.unacknowledgedOnly = unacknowledgedOnly
        self.before = before
        self.limit = limit
    }
}
