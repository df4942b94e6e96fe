import Artifacts
import FleetCore
import Foundation

/// Bodies and views of the analyst API (shared with the API client).
public struct LabelRequest: Codable, Sendable {
    public var add: [String]
    public var remove: [String]
    public init(add: [String], remove: [String]) {
        self.add = add
        self.remove = remove
    }
}

/// POST /api/v1/collect: one client, some artifacts, limits.
public struct CollectRequestBody: Codable, Sendable {
    public var clientId: String
    public var request: CollectionRequest
    public init(clientId: String, request: CollectionRequest) {
        self.clientId = clientId
        self.request = request
    }
}

/// POST /api/v1/hunts.
public struct HuntRequestBody: Codable, Sendable {
    public var description: String = ""
    public var request: CollectionRequest
    public var conditions: HuntConditions
    /// Seconds from now until the hunt expires (default 7 days).
    public var expiresIn: Double?
    public var clientLimit: Int?
    public var ratePerMinute: Int?
    public var schedule: String?
    public var paused: Bool = false
    public init(request: CollectionRequest, conditions: HuntConditions) {
        self.request = request
        self.conditions = conditions
    }
}

/// POST /api/v1/users/NAME/role.
public struct RoleChange: Codable, Sendable {
    public var role: Role
    public init(role: Role) { self.role = role }
}

/// POST /api/v1/users.
public struct UserRequestBody: Codable, Sendable {
    public var name: String
    public var role: Role
    /// Seconds from now until the key expires; nil for a key without expiry.
    public var expiresIn: Double?
    /// A password for the web console (sent over TLS, stored only as a scrypt hash); nil for none.
    public var password: String?
    public init(name: String, role: Role, expiresIn: Double? = nil, password: String? = nil) {
        self.name = name
        self.role = role
        self.expiresIn = expiresIn
        self.password = password
    }
}

/// POST /api/v1/users/NAME/password: sets (or with nil, removes) the user's console password.
public struct PasswordBody: Codable, Sendable {
    public var password: String?
    public init(password: String?) { self.password = password }
}

/// POST /api/v1/users/NAME/rotate-key.
public struct RotateKeyBody: Codable, Sendable {
    /// Seconds from now until the new key expires; nil for a key without expiry.
    public var expiresIn: Double?
    public init(expiresIn: Double? = nil) { self.expiresIn = expiresIn }
}

/// A key just made for a user (by `users` or `rotate-key`): the only time the server shows it.
public struct IssuedKey: Codable, Sendable {
    public var name: String
    public var role: Role
    public var apiKey: String
    public var expiresAt: Double?

    enum CodingKeys: String, CodingKey {
        case name, role, apiKey = "api_key", expiresAt = "expires_at"
    }
}

/// A user as GET /api/v1/users lists it (never the key or its hash).
public struct UserView: Codable, Sendable {
    public var name: String
    public var role: Role
    public var createdAt: Double
    public var expiresAt: Double?
}

/// A client as the API shows it: its record and whether it is connected now.
public struct ClientView: Codable, Sendable {
    public var client: ClientRecord
    public var connected: Bool
    /// Whether Quarry's network isolation is in force on the host, as last reported (by the agent
    /// at connection or by an isolation action's result), and when that was; only in the view of
    /// one client (`GET /clients/ID`), nil when never reported.
    public var isolated: Bool?
    public var isolationReportedAt: Double?
    public init(client: ClientRecord, connected: Bool, isolated: Bool? = nil, isolationReportedAt: Double? = nil) {
        self.client = client
        self.connected = connected
        self.isolated = isolated
        self.isolationReportedAt = isolationReportedAt
    }
}

/// A flow with its uploads and log.
public struct FlowView: Codable, Sendable {
    public var flow: FlowRecord
    public var uploads: [UploadRecord]
    public var logs: [String]
    /// Rows per artifact source (absent from servers older than this field).
    public var sources: [SourceCount]?
}

/// A hunt with per-client states of its current round and its sources.
public struct HuntView: Codable, Sendable {
    public var hunt: HuntRecord
    /// Count of clients per state (scheduled, running, finished, error, timed out, cancelled) in the current round.
    public var states: [String: Int]
    public var clients: [HuntClientState]
    public var sources: [SourceCount]
}

/// One client's state in a hunt round.
public struct HuntClientState: Codable, Sendable {
    public var clientId: String
    public var flowId: String
    public var round: Int
    public var state: FlowState
    public var rows: Int
    public var errors: [String]
}

/// Rows stored for one artifact source.
public struct SourceCount: Codable, Sendable {
    public var artifact: String
    public var source: String
    public var rows: Int
}

/// The rows a scheduled hunt's round added or removed compared with the previous round, per client.
public struct HuntDiff: Codable, Sendable {
    public var round: Int
    public var previous: Int
    public var added: [ResultRow]
    public var removed: [ResultRow]
}

/// An artifact as GET /api/v1/artifacts lists it.
public struct ArtifactSummary: Codable, Sendable {
    public var name: String
    public var description: String
    public var requiredPermissions: [String]
    public var parameters: [String]
}

extension FleetServer {
    func clientViews() async throws -> [ClientView] {
        let connected = connectedClientIds
        return try await store.clients().map { ClientView(client: $0, connected: connected.contains($0.clientId)) }
    }

    func collect(_ body: CollectRequestBody, caller: Caller, raw: Data) async throws -> CollectOutcome {
        try caller.require("COLLECT_CLIENT")
        try checkArtifacts(body.request.artifacts, caller: caller)
        try checkParameters(body.request)
        guard let client = try await store.client(body.clientId) else { throw APIFailure(status: 404, message: "no client \(body.clientId)") }
        guard !client.revoked else { throw APIFailure(status: 409, message: "client \(body.clientId) is revoked") }
        if config.responseApprovals && needsRemediation(body.request.artifacts) {
            return .awaitingApproval(try await requestApproval(body, caller: caller, raw: raw))
        }
        let flow = FlowRecord(flowId: Identifiers.flow(), clientId: body.clientId, request: body.request, creator: caller.user.name, createdAt: Date().timeIntervalSince1970)
        try await store.addFlow(flow)
        try await audit(caller, "collect", flow.flowId, raw)
        deliver(flow)
        return .started(flow)
    }

    func createHunt(_ body: HuntRequestBody, caller: Caller, raw: Data) async throws -> HuntRecord {
        try caller.require("START_HUNT")
        try checkArtifacts(body.request.artifacts, caller: caller)
        try checkParameters(body.request)
        try refuseResponseHunts(body.request.artifacts)
        if let schedule = body.schedule {
            do { _ = try CronSchedule(schedule) } catch { throw APIFailure(status: 400, message: "schedule: \(error)") }
        }
        if let limit = body.clientLimit, limit < 1 { throw APIFailure(status: 400, message: "client limit must be at least 1") }
        if let rate = body.ratePerMinute, rate < 1 { throw APIFailure(status: 400, message: "rate must be at least 1 per minute") }
        let now = Date().timeIntervalSince1970
        var hunt = HuntRecord(
            huntId: Identifiers.hunt(), request: body.request, conditions: body.conditions, state: body.paused ? .paused : .running,
            creator: caller.user.name, createdAt: now, expiresAt: now + (body.expiresIn ?? 7 * 86400))
        hunt.description = body.description
        hunt.clientLimit = body.clientLimit
        hunt.ratePerMinute = body.ratePerMinute
        hunt.schedule = body.schedule
        try await store.addHunt(hunt)
        try await audit(caller, "create-hunt", hunt.huntId, raw)
        if hunt.state == .running { poke() }
        return try await store.hunt(hunt.huntId) ?? hunt
    }

    func changeHunt(_ huntId: String, action: String, caller: Caller, raw: Data) async throws -> HuntRecord {
        guard var hunt = try await store.hunt(huntId) else { throw APIFailure(status: 404, message: "no hunt \(huntId)") }
        switch action {
        case "start":
            guard hunt.state == .paused || hunt.state == .stopped else { throw APIFailure(status: 409, message: "hunt \(huntId) is \(hunt.state.rawValue)") }
            guard hunt.expiresAt > Date().timeIntervalSince1970 else { throw APIFailure(status: 409, message: "hunt \(huntId) has expired") }
            try checkArtifacts(hunt.request.artifacts, caller: caller)
            try refuseResponseHunts(hunt.request.artifacts)
            hunt.state = .running
        case "stop":
            guard hunt.state == .running || hunt.state == .paused else { throw APIFailure(status: 409, message: "hunt \(huntId) is \(hunt.state.rawValue)") }
            hunt.state = .stopped
        case "archive":
            hunt.state = .archived
        default:
            throw APIFailure(status: 404, message: "no hunt action \(action) (start, stop, archive)")
        }
        try await store.updateHunt(hunt)
        if hunt.state != .running { try await cancelUndelivered(huntId: huntId, reason: "hunt \(action) by \(caller.user.name)") }
        try await audit(caller, "\(action)-hunt", huntId, raw)
        if hunt.state == .running { poke() }
        return hunt
    }

    func huntView(_ huntId: String) async throws -> HuntView {
        guard let hunt = try await store.hunt(huntId) else { throw APIFailure(status: 404, message: "no hunt \(huntId)") }
        let flows = try await store.flows(clientId: nil, huntId: huntId).filter { $0.round == hunt.round }
        var states: [String: Int] = [:]
        for flow in flows { states[flow.state.rawValue, default: 0] += 1 }
        let clients = flows.map { HuntClientState(clientId: $0.clientId, flowId: $0.flowId, round: $0.round, state: $0.state, rows: $0.rows, errors: $0.errors) }
        let sources = try await store.resultSources(huntId: huntId, flowId: nil).map { SourceCount(artifact: $0.artifact, source: $0.source, rows: $0.rows) }
        return HuntView(hunt: hunt, states: states, clients: clients.sorted { $0.clientId < $1.clientId }, sources: sources)
    }

    /// Most rows of one round `huntDiff` compares.
    static let maxDiffRows = 200_000

    /// Differential results: rows of `round` (default the latest finished) not in the round before,
    /// and rows of the round before no longer present — per client, artifact and source.
    func huntDiff(_ huntId: String, round: Int?) async throws -> HuntDiff {
        guard let hunt = try await store.hunt(huntId) else { throw APIFailure(status: 404, message: "no hunt \(huntId)") }
        let current = round ?? max(1, hunt.round)
        guard current > 1 else { throw APIFailure(status: 400, message: "round \(current) has no previous round to compare with") }
        // Both rounds are compared in memory: bounded, so that a huge hunt is refused, not a crash.
        let now = try await store.results(ResultQuery(huntId: huntId, round: current, limit: Self.maxDiffRows + 1))
        let before = try await store.results(ResultQuery(huntId: huntId, round: current - 1, limit: Self.maxDiffRows + 1))
        guard now.count <= Self.maxDiffRows, before.count <= Self.maxDiffRows else {
            throw APIFailure(status: 413, message: "rounds of more than \(Self.maxDiffRows) rows are not compared here; read them with hunt results --round")
        }
        func key(_ row: ResultRow) -> String { row.clientId + "\u{1}" + row.artifact + "\u{1}" + row.source + "\u{1}" + row.json }
        let clientsNow = Set(now.map(\.clientId)), clientsBefore = Set(before.map(\.clientId))
        let beforeKeys = Set(before.map(key)), nowKeys = Set(now.map(key))
        // A client missing from one of the rounds is not compared (it did not report, nothing changed).
        return HuntDiff(
            round: current, previous: current - 1,
            added: now.filter { clientsBefore.contains($0.clientId) && !beforeKeys.contains(key($0)) },
            removed: before.filter { clientsNow.contains($0.clientId) && !nowKeys.contains(key($0)) })
    }
}
