import Artifacts
import FleetCore
import Foundation
import Hummingbird

/// A response action waiting for (or decided by) a second analyst.
public struct PendingAction: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case pending, approved, denied }
    public var id: String
    public var clientId: String
    public var request: CollectionRequest
    public var requester: String
    public var reason: String
    public var createdAt: Double
    public var state: State
    public var decidedBy: String?
    public var decidedAt: Double?
    public var decisionReason: String?
    /// The flow the approval started.
    public var flowId: String?
}

/// What `POST /collect` answers: the flow, or — for a response action when approvals are on —
/// the action now waiting for a second analyst (HTTP 202).
public enum CollectOutcome: Sendable {
    case started(FlowRecord)
    case awaitingApproval(PendingAction)
}

/// Second-analyst approval of response actions (`response_approvals: true` in server.yaml), as GRR
/// requires approvals: a collection whose artifacts need REMEDIATION (kill, quarantine, restore,
/// isolate …) is not sent; it becomes a pending action that another user holding REMEDIATION must
/// approve (`POST /respond/actions/ID/approve`) — the requester cannot approve their own — or deny.
/// Approval starts the flow in the requester's name. While approvals are on, hunts cannot carry
/// such artifacts at all, so the rule cannot be side-stepped by a hunt of one client. Actions live
/// in the datastore's metadata, so every frontend sees the same ones; every step is audited.
extension FleetServer {
    static let actionsOwner = "response-actions"

    /// Whether any of the artifacts (or what they call) needs REMEDIATION.
    func needsRemediation(_ names: [String]) -> Bool {
        var pending = names
        var seen = Set<String>()
        while let name = pending.popLast() {
            guard seen.insert(name).inserted, let artifact = repository.artifact(named: name) else { continue }
            if artifact.requiredPermissions.contains(where: { $0.uppercased() == "REMEDIATION" }) { return true }
            pending.append(contentsOf: ArtifactRepository.dependencies(of: artifact))
        }
        return false
    }

    /// Records a pending action instead of starting the flow.
    func requestApproval(_ body: CollectRequestBody, caller: Caller, raw: Data) async throws -> PendingAction {
        let action = PendingAction(
            id: "A." + Identifiers.hex(8), clientId: body.clientId, request: body.request, requester: caller.user.name,
            reason: body.request.parameters["Reason"] ?? "", createdAt: Date().timeIntervalSince1970, state: .pending)
        try await save(action)
        try await audit(caller, "request-response", action.id, raw)
        return action
    }

    func actions() async throws -> [PendingAction] {
        try await store.metadata(Self.actionsOwner).values.compactMap { try? JSONDecoder().decode(PendingAction.self, from: Data($0.utf8)) }
            .sorted { $0.createdAt > $1.createdAt }
    }

    func save(_ action: PendingAction) async throws {
        try await store.setMetadata(Self.actionsOwner, [action.id: String(decoding: try JSONEncoder().encode(action), as: UTF8.self)])
    }

    func addApprovalRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("respond/actions") { [self] request, context in
            try context.requireCaller().require("READ_RESULTS")
            let client = request.uri.queryParameters.string("client_id")
            return try ok(try await actions().filter { client == nil || $0.clientId == client })
        }
        api.post("respond/actions/:id/:decision") { [self] request, context in
            let caller = try context.requireCaller()
            let id = try context.parameters.require("id"), decision = try context.parameters.require("decision")
            guard decision == "approve" || decision == "deny" else { throw APIFailure(status: 404, message: "no such decision: \(decision)") }
            struct Body: Decodable { var reason: String? }
            let (body, raw) = try await context.decode(Body.self, from: request, limit: config.limits.maxRequestBodyBytes)
            return try ok(try await decide(id, approve: decision == "approve", reason: body.reason, caller: caller, raw: raw))
        }
    }

    /// Decides pending action `id` for `caller` — the one place the rules live, for the API and the
    /// console alike: the approver must be allowed to run the action's artifacts themselves, may not
    /// be its requester, and an action is decided once. Approval starts the flow in the
    /// requester's name (the client must still be enrolled); both outcomes are audited.
    func decide(_ id: String, approve: Bool, reason: String?, caller: Caller, raw: Data) async throws -> PendingAction {
        guard var action = try await actions().first(where: { $0.id == id }) else { throw APIFailure(status: 404, message: "no action \(id)") }
        try checkArtifacts(action.request.artifacts, caller: caller)
        guard action.requester != caller.user.name else {
            throw APIFailure(status: 403, message: "\(caller.user.name) asked for \(id): another analyst must decide it")
        }
        guard action.state == .pending else { throw APIFailure(status: 409, message: "\(id) was already \(action.state.rawValue) by \(action.decidedBy ?? "?")") }
        action.decidedBy = caller.user.name
        action.decidedAt = Date().timeIntervalSince1970
        action.decisionReason = reason
        if !approve {
            action.state = .denied
            try await save(action)
            try await audit(caller, "deny-response", id, raw)
            return action
        }
        guard let client = try await store.client(action.clientId), !client.revoked else {
            throw APIFailure(status: 409, message: "client \(action.clientId) is gone or revoked")
        }
        let flow = FlowRecord(
            flowId: Identifiers.flow(), clientId: action.clientId, request: action.request, creator: action.requester, createdAt: Date().timeIntervalSince1970)
        action.state = .approved
        action.flowId = flow.flowId
        try await save(action)
        try await store.addFlow(flow)
        try await audit(caller, "approve-response", id, raw)
        deliver(flow)
        return action
    }

    /// Hunts may not carry response artifacts while approvals are on.
    func refuseResponseHunts(_ artifacts: [String]) throws {
        if config.responseApprovals && needsRemediation(artifacts) {
            throw APIFailure(status: 403, message: "response actions need a second analyst's approval here: use `quarry respond` per client, not a hunt")
        }
    }
}
