import Foundation

// The fleet's records: what the server stores and what crosses its API.
// Plain Codable values with no I/O, shared by the server, the agent, the API client and the datastores.
// Times are seconds since 1970 (UTC) so the same value lands in SQLite and PostgreSQL unchanged.

/// A roles-based permission set for analysts; higher roles hold everything the lower ones do.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case reader, investigator, administrator

    /// The permissions this role holds (names as in artifacts' `required_permissions`, upper-case).
    public var permissions: Set<String> {
        switch self {
        case .reader: return ["READ_RESULTS"]
        case .investigator: return ["READ_RESULTS", "COLLECT_CLIENT", "START_HUNT", "LABEL_CLIENT", "FILESYSTEM_READ", "NETWORK", "MACHINE_STATE"]
        case .administrator:
            return Role.investigator.permissions.union(["SERVER_ADMIN", "EXECVE", "FILESYSTEM_WRITE", "COLLECT_SERVER", "ARTIFACT_WRITER", "PREPARE_RESULTS", "REMEDIATION"])
        }
    }

    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
    private var rank: Int { self == .reader ? 0 : self == .investigator ? 1 : 2 }
}

/// An analyst who may call the server's API. Only the SHA-256 of the API key is stored; a key may
/// carry an expiry, after which the server refuses it.
public struct UserRecord: Codable, Sendable, Equatable {
    public var name: String
    public var role: Role
    public var apiKeySHA256: String
    public var createdAt: Double
    /// When the key stops working (seconds since 1970); nil for a key without expiry.
    public var expiresAt: Double?
    public init(name: String, role: Role, apiKeySHA256: String, createdAt: Double, expiresAt: Double? = nil) {
        self.name = name
        self.role = role
        self.apiKeySHA256 = apiKeySHA256
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    /// Whether the key has expired at `now`.
    public func isExpired(at now: Double) -> Bool {
        expiresAt.map { $0 <= now } ?? false
    }
}

/// An enrolled endpoint. Its ID is the subject of the certificate the server signed for it.
public struct ClientRecord: Codable, Sendable, Equatable {
    public var clientId: String
    public var hostname: String = ""
    public var fqdn: String = ""
    public var os: String = ""
    public var kernel: String = ""
    public var ips: [String] = []
    public var labels: [String] = []
    public var enrolledAt: Double
    public var lastSeen: Double
    public var revoked = false
    /// Serial number (hex) of the certificate issued at enrolment.
    public var certificateSerial: String = ""
    public init(clientId: String, enrolledAt: Double, certificateSerial: String = "") {
        self.clientId = clientId
        self.enrolledAt = enrolledAt
        self.lastSeen = enrolledAt
        self.certificateSerial = certificateSerial
    }
}

/// What facts the server learnt about a client from Generic.Client.Info.
public struct ClientFacts: Codable, Sendable, Equatable {
    public var hostname: String
    public var fqdn: String
    public var os: String
    public var kernel: String
    public var ips: [String]
    public init(hostname: String, fqdn: String, os: String, kernel: String, ips: [String]) {
        self.hostname = hostname
        self.fqdn = fqdn
        self.os = os
        self.kernel = kernel
        self.ips = ips
    }
}

/// What an agent is asked to collect, with the limits the agent enforces.
public struct CollectionRequest: Codable, Sendable, Equatable {
    public var artifacts: [String]
    public var parameters: [String: String] = [:]
    public var timeout: Double?
    public var maxRows: Int?
    public var maxUploadBytes: Int64?
    public var cpuLimit: Double?
    public init(artifacts: [String], parameters: [String: String] = [:], timeout: Double? = nil, maxRows: Int? = nil, maxUploadBytes: Int64? = nil, cpuLimit: Double? = nil) {
        self.artifacts = artifacts
        self.parameters = parameters
        self.timeout = timeout
        self.maxRows = maxRows
        self.maxUploadBytes = maxUploadBytes
        self.cpuLimit = cpuLimit
    }
}

/// Per-client state of one collection, also the per-client state of a hunt.
public enum FlowState: String, Codable, Sendable, CaseIterable {
    case scheduled, running, finished, error
    case timedOut = "timed out"
    case cancelled

    public var isFinal: Bool { self != .scheduled && self != .running }
}

/// One collection on one client (a "flow"), on its own or as part of a hunt round.
public struct FlowRecord: Codable, Sendable, Equatable {
    public var flowId: String
    public var clientId: String
    public var huntId: String?
    /// Round of a scheduled hunt (1 for a one-shot hunt; 0 for a direct collection).
    public var round: Int
    public var request: CollectionRequest
    public var state: FlowState
    public var creator: String
    public var createdAt: Double
    public var startedAt: Double?
    public var endedAt: Double?
    /// Rows stored so far, over all sources.
    public var rows: Int = 0
    public var uploadedBytes: Int64 = 0
    public var errors: [String] = []
    /// Set when an analyst or a hunt stop asked the agent to cancel.
    public var cancelRequested = false
    public init(flowId: String, clientId: String, huntId: String? = nil, round: Int = 0, request: CollectionRequest, state: FlowState = .scheduled, creator: String, createdAt: Double) {
        self.flowId = flowId
        self.clientId = clientId
        self.huntId = huntId
        self.round = round
        self.request = request
        self.state = state
        self.creator = creator
        self.createdAt = createdAt
    }
}

/// Which clients a hunt targets. Empty `labels` means any; a client with any excluded label is skipped.
public struct HuntConditions: Codable, Sendable, Equatable {
    public var labels: [String] = []
    public var excludeLabels: [String] = []
    /// e.g. "linux"; nil means any OS. Compared case-insensitively with the client's OS.
    public var os: String?
    public init(labels: [String] = [], excludeLabels: [String] = [], os: String? = nil) {
        self.labels = labels
        self.excludeLabels = excludeLabels
        self.os = os
    }

    public func matches(labels clientLabels: [String], os clientOS: String) -> Bool {
        if let os, !os.isEmpty, os.lowercased() != clientOS.lowercased() { return false }
        if !labels.isEmpty, !labels.contains(where: clientLabels.contains) { return false }
        return !excludeLabels.contains(where: clientLabels.contains)
    }
}

/// Life of a hunt: created paused or running; stopped by an analyst or by expiry; archived to hide it.
public enum HuntState: String, Codable, Sendable, CaseIterable {
    case paused, running, stopped, expired, archived
}

/// A collection fanned out over the fleet, once or in rounds on a cron schedule.
public struct HuntRecord: Codable, Sendable, Equatable {
    public var huntId: String
    public var description: String = ""
    public var request: CollectionRequest
    public var conditions: HuntConditions
    public var state: HuntState
    public var creator: String
    public var createdAt: Double
    public var startedAt: Double?
    public var expiresAt: Double
    public var clientLimit: Int?
    /// Most new clients scheduled per minute.
    public var ratePerMinute: Int?
    /// A cron expression (5 fields, or `@every 30s`); nil for a one-shot hunt.
    public var schedule: String?
    /// Current round (1 once started; grows with each scheduled round).
    public var round: Int = 0
    public var roundStartedAt: Double?
    public var nextRoundAt: Double?
    public init(huntId: String, request: CollectionRequest, conditions: HuntConditions, state: HuntState, creator: String, createdAt: Double, expiresAt: Double) {
        self.huntId = huntId
        self.request = request
        self.conditions = conditions
        self.state = state
        self.creator = creator
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// One batch an agent sent, as the server ingests it. `(flowId, seq)` is unique: a batch seen twice is
/// stored once. Sequence numbers start at 1 per flow and grow by one.
public struct IngestBatch: Codable, Sendable, Equatable {
    public var clientId: String
    public var flowId: String
    public var seq: Int
    public var payload: Payload

    public enum Payload: Codable, Sendable, Equatable {
        /// Rows of one artifact source, each a JSON object text.
        case rows(artifact: String, source: String, rows: [String])
        /// A finished upload whose bytes are already in the blob store.
        case upload(UploadRecord)
        /// A part of an upload written to the blob store's staging area: nothing more to record.
        case uploadPart
        /// Log lines of the collection (JSON object texts).
        case log([String])
        /// The flow's state as the agent sees it (running, or final with totals).
        case status(FlowStatus)
    }

    public init(clientId: String, flowId: String, seq: Int, payload: Payload) {
        self.clientId = clientId
        self.flowId = flowId
        self.seq = seq
        self.payload = payload
    }
}

/// The agent's account of a flow. A final status carries the totals the agent produced, so the server
/// can tell whether every batch arrived (`batches` counts all batches before this one).
public struct FlowStatus: Codable, Sendable, Equatable {
    public var state: FlowState
    public var errors: [String] = []
    public var rows: Int = 0
    public var uploadedBytes: Int64 = 0
    public var batches: Int = 0
    /// Batches the agent's queue dropped (past its bound) before the server acknowledged them.
    public var droppedBatches: Int = 0
    public var time: Double
    public init(state: FlowState, errors: [String] = [], rows: Int = 0, uploadedBytes: Int64 = 0, batches: Int = 0, droppedBatches: Int = 0, time: Double) {
        self.state = state
        self.errors = errors
        self.rows = rows
        self.uploadedBytes = uploadedBytes
        self.batches = batches
        self.droppedBatches = droppedBatches
        self.time = time
    }
}

/// A file an agent uploaded; the bytes live in the blob store under their SHA-256.
public struct UploadRecord: Codable, Sendable, Equatable {
    public var flowId: String
    public var name: String
    public var size: Int64
    public var sha256: String
    public var md5: String
    public init(flowId: String, name: String, size: Int64, sha256: String, md5: String) {
        self.flowId = flowId
        self.name = name
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
    }
}

extension IngestBatch {
    /// Longest artifact, source or upload name accepted.
    public static let maxNameBytes = 1024

    /// Why the datastore must not take this batch, or nil: text that no engine stores faithfully
    /// (NUL bytes: PostgreSQL's text type refuses them, and one bad batch must not fail a
    /// transaction that holds other agents' batches) or names past any sensible length. Invalid
    /// UTF-8 cannot reach here: the server refuses it when it decodes the message.
    public var problem: String? {
        func bad(_ text: String) -> Bool { text.utf8.contains(0) }
        func badName(_ text: String) -> Bool { bad(text) || text.utf8.count > Self.maxNameBytes }
        guard !flowId.isEmpty, !badName(flowId) else { return "the flow ID is empty, too long or holds a NUL byte" }
        switch payload {
        case .rows(let artifact, let source, let rows):
            if badName(artifact) || badName(source) { return "the artifact or source name is too long or holds a NUL byte" }
            if let index = rows.firstIndex(where: bad) { return "row \(index) holds a NUL byte" }
        case .log(let lines):
            if let index = lines.firstIndex(where: bad) { return "log line \(index) holds a NUL byte" }
        case .status(let status):
            if status.errors.contains(where: bad) { return "the status holds a NUL byte" }
        case .upload(let upload):
            if badName(upload.name) || bad(upload.sha256) || bad(upload.md5) { return "the upload record holds a NUL byte or a name that is too long" }
        case .uploadPart:
            break
        }
        return nil
    }
}

/// What happened to a batch at ingestion.
public enum IngestOutcome: Sendable, Equatable {
    case stored
    /// Seen before (a resend after a lost acknowledgement); acknowledge again, store nothing.
    case duplicate
    /// Not this client's flow, or no such flow: never stored; the reason is logged and audited.
    case rejected(String)
}

/// One stored result row with the columns Velociraptor's hunt_results adds.
public struct ResultRow: Codable, Sendable, Equatable {
    public var clientId: String
    public var flowId: String
    public var fqdn: String
    public var huntId: String?
    public var round: Int
    public var artifact: String
    public var source: String
    /// The row itself, a JSON object text as the agent produced it.
    public var json: String
    /// The row's place in its flow: the batch it came in and its index there. With `flowId` they
    /// identify the row, and make the cursor that reads on from it (`ResultCursor`).
    public var seq: Int
    public var index: Int
    public init(
        clientId: String, flowId: String, fqdn: String, huntId: String?, round: Int, artifact: String, source: String, json: String,
        seq: Int = 0, index: Int = 0
    ) {
        self.clientId = clientId
        self.flowId = flowId
        self.fqdn = fqdn
        self.huntId = huntId
        self.round = round
        self.artifact = artifact
        self.source = source
        self.json = json
        self.seq = seq
        self.index = index
    }

    enum CodingKeys: String, CodingKey {
        case clientId, flowId, fqdn, huntId, round, artifact, source, json, seq, index
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        clientId = try c.decode(String.self, forKey: .clientId)
        flowId = try c.decode(String.self, forKey: .flowId)
        fqdn = try c.decode(String.self, forKey: .fqdn)
        huntId = try c.decodeIfPresent(String.self, forKey: .huntId)
        round = try c.decode(Int.self, forKey: .round)
        artifact = try c.decode(String.self, forKey: .artifact)
        source = try c.decode(String.self, forKey: .source)
        json = try c.decode(String.self, forKey: .json)
        seq = try c.decodeIfPresent(Int.self, forKey: .seq) ?? 0
        index = try c.decodeIfPresent(Int.self, forKey: .index) ?? 0
    }

    /// The cursor that reads on after this row.
    public var cursor: ResultCursor { ResultCursor(flowId: flowId, seq: seq, index: index) }
}

/// Where a page of results ends: the last row's flow, batch and index. The next page starts after
/// it, in the same (flow creation, flow, batch, row) order, however many rows came before: reading
/// by cursor costs the same for the first page and the thousandth (an offset does not).
public struct ResultCursor: Codable, Sendable, Equatable, CustomStringConvertible {
    public var flowId: String
    public var seq: Int
    public var index: Int
    public init(flowId: String, seq: Int, index: Int) {
        self.flowId = flowId
        self.seq = seq
        self.index = index
    }

    /// `FLOW/SEQ/INDEX`, as the API's `after` parameter carries it.
    public var description: String { "\(flowId)/\(seq)/\(index)" }

    /// Parses `FLOW/SEQ/INDEX`; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let seq = Int(parts[1]), let index = Int(parts[2]) else { return nil }
        self.init(flowId: String(parts[0]), seq: seq, index: index)
    }
}

/// Which results to read. Nil fields do not filter. Rows come in (flow, seq, row) order.
public struct ResultQuery: Codable, Sendable, Equatable {
    public var huntId: String?
    public var flowId: String?
    public var clientId: String?
    public var artifact: String?
    public var source: String?
    public var round: Int?
    public var limit: Int?
    public var offset: Int = 0
    /// Rows after this one only (the previous page's last row); `offset` is ignored with a cursor.
    public var after: ResultCursor?
    /// Only rows whose top-level `filter.column` holds `filter.contains` (as text, ignoring ASCII
    /// case): the console's column filter, applied by the datastore so pages stay pages.
    public var filter: ResultFilter?
    public init(
        huntId: String? = nil, flowId: String? = nil, clientId: String? = nil, artifact: String? = nil, source: String? = nil, round: Int? = nil,
        limit: Int? = nil, offset: Int = 0, after: ResultCursor? = nil, filter: ResultFilter? = nil
    ) {
        self.after = after
        self.filter = filter
        self.huntId = huntId
        self.flowId = flowId
        self.clientId = clientId
        self.artifact = artifact
        self.source = source
        self.round = round
        self.limit = limit
        self.offset = offset
    }
}

/// A column filter on result rows (`ResultQuery.filter`).
public struct ResultFilter: Codable, Sendable, Equatable {
    public var column: String
    public var contains: String
    public init(column: String, contains: String) {
        self.column = column
        self.contains = contains
    }

    /// Longest column name and text accepted.
    public static let maxLength = 256

    /// Nil (with the reason) when the filter can be applied: a column name without a double
    /// quote or control character, both parts non-empty and short.
    public var problem: String? {
        if column.isEmpty || contains.isEmpty { return "a filter needs a column and a text" }
        if column.utf8.count > Self.maxLength || contains.utf8.count > Self.maxLength { return "a filter's column and text are at most \(Self.maxLength) bytes" }
        if column.contains("\"") || column.unicodeScalars.contains(where: { $0.value < 0x20 }) { return "a filter's column name cannot hold quotes or control characters" }
        return nil
    }
}

/// One state-changing API call: who did what to which object, when and from where.
public struct AuditEntry: Codable, Sendable, Equatable {
    /// The entry's number in the log (set by the datastore; `auditLog(before:)` pages by it).
    public var id: Int64?
    public var time: Double
    public var user: String
    public var action: String
    public var target: String
    /// JSON object text with the call's arguments.
    public var details: String
    public var remote: String
    public init(id: Int64? = nil, time: Double, user: String, action: String, target: String, details: String, remote: String) {
        self.id = id
        self.time = time
        self.user = user
        self.action = action
        self.target = target
        self.details = details
        self.remote = remote
    }

    /// Most bytes kept of the user, action, target and remote fields.
    public static let maxFieldBytes = 256
    /// Most bytes kept of the details.
    public static let maxDetailsBytes = 16 << 10

    /// The entry with every field cut to its bound (a note says how long it was): much of what is
    /// audited comes from the network (a refused enrolment's host name, a call's body), and the log
    /// must not grow by what an attacker sends.
    public func bounded() -> AuditEntry {
        AuditEntry(
            id: id, time: time, user: Self.clip(user, Self.maxFieldBytes), action: Self.clip(action, Self.maxFieldBytes),
            target: Self.clip(target, Self.maxFieldBytes), details: Self.clip(details, Self.maxDetailsBytes), remote: Self.clip(remote, Self.maxFieldBytes))
    }

    /// `text` cut to at most `limit` bytes of UTF-8 (on a character boundary), with the original length noted.
    public static func clip(_ text: String, _ limit: Int) -> String {
        let count = text.utf8.count
        guard count > limit else { return text }
        let note = "…(\(count) bytes)"
        var kept = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            if used + size + note.utf8.count > limit { break }
            kept.append(character)
            used += size
        }
        return kept + note
    }
}
