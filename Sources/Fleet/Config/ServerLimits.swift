import Foundation

/// The `limits:` section of server.yaml: how much the server takes from the network before and
/// after it knows who is talking. Every key is optional; the defaults suit a fleet of tens of
/// thousands of agents on one frontend (docs/fleet.md says why each is what it is). A value of 0
/// turns a count or rate limit off.
public struct ServerLimits: Codable, Sendable, Equatable {
    /// Connections open at once, all kinds; more are closed as they arrive.
    public var maxConnections = 20_000
    /// Connections from one address that hold no verified client certificate (TLS handshakes in
    /// progress, enrolments, analysts' API calls). Agents with certificates do not count.
    public var maxUnverifiedConnectionsPerAddress = 64
    /// From accepting a connection to its first complete request head (TLS handshake included).
    public var handshakeTimeoutSeconds = 10.0
    /// An HTTP connection with no request in progress is closed after this long.
    public var idleTimeoutSeconds = 60.0
    /// A connection without a certificate must send its enrolment this soon after the upgrade.
    public var enrolmentTimeoutSeconds = 10.0
    /// The agent channel's ping interval; an agent that misses a pong is disconnected.
    public var pingSeconds = 30.0
    /// HTTP requests (and WebSocket upgrades) per second per address, and the burst allowed.
    public var requestsPerSecondPerAddress = 50.0
    public var requestBurstPerAddress = 200.0
    /// Refused enrolments per minute per address that are logged and audited; more are dropped
    /// without a trace but the metric.
    public var enrolmentRefusalsPerMinutePerAddress = 10.0
    /// Request body of most API calls (labels, user changes, …).
    public var maxRequestBodyBytes = 64 << 10
    /// Request body of `collect` and `hunts` (artifact parameters may hold YARA rules and the like).
    public var maxCollectionBodyBytes = 1 << 20
    /// A collection container imported through `POST /collections/import` (offline collector
    /// output carried by hand): streamed to disk, never held in memory.
    public var maxImportBytes: Int64 = 16 << 30
    /// One message on the agent channel before the peer is known (the enrolment).
    public var maxEnrolmentMessageBytes = 64 << 10
    /// One message from an agent with a certificate: a batch holds up to 2 MiB of rows or upload
    /// data, which JSON escaping or base64 makes larger on the wire.
    public var maxAgentMessageBytes = 8 << 20
    /// Rows in one page of `GET /results` when the caller asks for none, and at most.
    public var resultsPageRows = 10_000
    public var maxResultsPageRows = 100_000
    /// Entries in one page of `GET /audit` when the caller asks for none, and at most.
    public var auditPageEntries = 100
    public var maxAuditPageEntries = 1_000
    /// How long an API key stays cached; a key removed or replaced through another frontend stops
    /// working here within this time (at once through this one).
    public var apiKeyCacheSeconds = 10.0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case maxConnections = "max_connections"
        case maxUnverifiedConnectionsPerAddress = "max_unverified_connections_per_address"
        case handshakeTimeoutSeconds = "handshake_timeout_seconds"
        case idleTimeoutSeconds = "idle_timeout_seconds"
        case enrolmentTimeoutSeconds = "enrolment_timeout_seconds"
        case pingSeconds = "ping_seconds"
        case requestsPerSecondPerAddress = "requests_per_second_per_address"
        case requestBurstPerAddress = "request_burst_per_address"
        case enrolmentRefusalsPerMinutePerAddress = "enrolment_refusals_per_minute_per_address"
        case maxRequestBodyBytes = "max_request_body_bytes"
        case maxCollectionBodyBytes = "max_collection_body_bytes"
        case maxImportBytes = "max_import_bytes"
        case maxEnrolmentMessageBytes = "max_enrolment_message_bytes"
        case maxAgentMessageBytes = "max_agent_message_bytes"
        case resultsPageRows = "results_page_rows"
        case maxResultsPageRows = "max_results_page_rows"
        case auditPageEntries = "audit_page_entries"
        case maxAuditPageEntries = "max_audit_page_entries"
        case apiKeyCacheSeconds = "api_key_cache_seconds"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ServerLimits()
        func value<T: Decodable & Comparable & Numeric>(_ key: CodingKeys, _ fallback: T) throws -> T {
            guard let value = try c.decodeIfPresent(T.self, forKey: key) else { return fallback }
            guard value >= 0 else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "limits.\(key.rawValue) must not be negative")
            }
            return value
        }
        maxConnections = try value(.maxConnections, d.maxConnections)
        maxUnverifiedConnectionsPerAddress = try value(.maxUnverifiedConnectionsPerAddress, d.maxUnverifiedConnectionsPerAddress)
        handshakeTimeoutSeconds = try value(.handshakeTimeoutSeconds, d.handshakeTimeoutSeconds)
        idleTimeoutSeconds = try value(.idleTimeoutSeconds, d.idleTimeoutSeconds)
        enrolmentTimeoutSeconds = try value(.enrolmentTimeoutSeconds, d.enrolmentTimeoutSeconds)
        pingSeconds = try value(.pingSeconds, d.pingSeconds)
        requestsPerSecondPerAddress = try value(.requestsPerSecondPerAddress, d.requestsPerSecondPerAddress)
        requestBurstPerAddress = try value(.requestBurstPerAddress, d.requestBurstPerAddress)
        enrolmentRefusalsPerMinutePerAddress = try value(.enrolmentRefusalsPerMinutePerAddress, d.enrolmentRefusalsPerMinutePerAddress)
        maxRequestBodyBytes = try value(.maxRequestBodyBytes, d.maxRequestBodyBytes)
        maxCollectionBodyBytes = try value(.maxCollectionBodyBytes, d.maxCollectionBodyBytes)
        maxImportBytes = try value(.maxImportBytes, d.maxImportBytes)
        maxEnrolmentMessageBytes = try value(.maxEnrolmentMessageBytes, d.maxEnrolmentMessageBytes)
        maxAgentMessageBytes = try value(.maxAgentMessageBytes, d.maxAgentMessageBytes)
        resultsPageRows = try value(.resultsPageRows, d.resultsPageRows)
        maxResultsPageRows = try value(.maxResultsPageRows, d.maxResultsPageRows)
        auditPageEntries = try value(.auditPageEntries, d.auditPageEntries)
        maxAuditPageEntries = try value(.maxAuditPageEntries, d.maxAuditPageEntries)
        apiKeyCacheSeconds = try value(.apiKeyCacheSeconds, d.apiKeyCacheSeconds)
    }

    /// Written with whole numbers as integers (the YAML encoder would write 10.0 as 1e+1).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        func put(_ value: Double, _ key: CodingKeys) throws {
            if value == value.rounded(), abs(value) < 1e15 { try c.encode(Int(value), forKey: key) } else { try c.encode(value, forKey: key) }
        }
        try c.encode(maxConnections, forKey: .maxConnections)
        try c.encode(maxUnverifiedConnectionsPerAddress, forKey: .maxUnverifiedConnectionsPerAddress)
        try put(handshakeTimeoutSeconds, .handshakeTimeoutSeconds)
        try put(idleTimeoutSeconds, .idleTimeoutSeconds)
        try put(enrolmentTimeoutSeconds, .enrolmentTimeoutSeconds)
        try put(pingSeconds, .pingSeconds)
        try put(requestsPerSecondPerAddress, .requestsPerSecondPerAddress)
        try put(requestBurstPerAddress, .requestBurstPerAddress)
        try put(enrolmentRefusalsPerMinutePerAddress, .enrolmentRefusalsPerMinutePerAddress)
        try c.encode(maxRequestBodyBytes, forKey: .maxRequestBodyBytes)
        try c.encode(maxCollectionBodyBytes, forKey: .maxCollectionBodyBytes)
        try c.encode(maxImportBytes, forKey: .maxImportBytes)
        try c.encode(maxEnrolmentMessageBytes, forKey: .maxEnrolmentMessageBytes)
        try c.encode(maxAgentMessageBytes, forKey: .maxAgentMessageBytes)
        try c.encode(resultsPageRows, forKey: .resultsPageRows)
        try c.encode(maxResultsPageRows, forKey: .maxResultsPageRows)
        try c.encode(auditPageEntries, forKey: .auditPageEntries)
        try c.encode(maxAuditPageEntries, forKey: .maxAuditPageEntries)
        try put(apiKeyCacheSeconds, .apiKeyCacheSeconds)
    }

    /// A page size asked for (or none), within [1, maximum].
    static func page(_ asked: Int?, default fallback: Int, max maximum: Int) -> Int {
        Swift.max(1, Swift.min(asked ?? fallback, Swift.max(1, maximum)))
    }
}
