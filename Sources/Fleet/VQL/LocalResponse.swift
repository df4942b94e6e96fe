import FleetCore
import Foundation
import VQL

/// Automatic response: `collect_client()` inside a server rule. A rule listed in server.yaml's
/// `automatic_response` acts at once — the collection is made as the user `server:RULE`, checked
/// and audited like an administrator's — so a detection can kill, quarantine or collect triage
/// within a second of the event (unless `response_approvals` holds response actions for a second
/// analyst: then even an automatic rule's action waits). Any other rule's request is not run: it
/// becomes a pending action (`quarry respond approve A.…` runs it) and a `high` alert
/// `Server.Response.Pending` for the client, carrying the request and the action's ID.
extension LocalFleet {
    static let pendingAlert = "Server.Response.Pending"
    static let pendingRepeatSeconds = 3600.0

    func collect(_ request: CollectRequestBody, _ ctx: CallContext) -> Value {
        let server = self.server
        var body = request
        // Response artifacts record why they ran: the rule says so when the request does not.
        let takesReason = body.request.artifacts.contains { server.repository.artifact(named: $0)?.parameters.contains { $0.name == "Reason" } == true }
        if takesReason, body.request.parameters["Reason"] == nil { body.request.parameters["Reason"] = "requested by server rule \(rule)" }
        let caller = Caller(user: UserRecord(name: "server:" + rule, role: .administrator, apiKeySHA256: "", createdAt: 0), remote: "server monitoring")
        if server.config.automaticResponse.contains(rule) {
            do {
                let raw = try JSONEncoder().encode(body)
                switch try runBlocking({ [body] in try await server.collect(body, caller: caller, raw: raw) }) {
                case .started(let flow):
                    return ServerFlows.row(flow)
                case .awaitingApproval(let action):
                    ctx.log(.warning, "collect_client: response_approvals holds \(action.id) for a second analyst (quarry respond approve \(action.id))")
                    return .null
                }
            } catch {
                ctx.log(.error, "collect_client: \(error)")
                return .null
            }
        }
        let described = Dict([
            ("Rule", .string(rule)), ("ClientId", .string(body.clientId)), ("Artifacts", ServerPlugins.strings(body.request.artifacts)),
            ("Parameters", ServerPlugins.notesValue(body.request.parameters)),
        ])
        let details = JSONWriter.string(.dict(described))
        let now = Date().timeIntervalSince1970
        let fresh = pending.withLockedValue { seen -> Bool in
            if let last = seen[details], now - last < Self.pendingRepeatSeconds { return false }
            if seen.count >= 10_000 { seen = seen.filter { now - $0.value < Self.pendingRepeatSeconds } }
            if seen.count >= 10_000 { seen.removeAll() }
            seen[details] = now
            return true
        }
        if fresh {
            // A real pending action, which an analyst approves or denies like any other.
            let raw = (try? JSONEncoder().encode(body)) ?? Data()
            let action = try? runBlocking { [body] in try await server.requestApproval(body, caller: caller, raw: raw) }
            var withAction = described
            if let action { withAction["ActionId"] = .string(action.id) }
            let alert = AlertRecord(
                time: now, name: Self.pendingAlert, severity: .high, clientId: body.clientId, artifact: rule, details: JSONWriter.string(.dict(withAction)))
            _ = try? runBlocking { await server.record(alert) }
        }
        ctx.log(.warning, "collect_client: \(rule) is not in automatic_response (server.yaml): the request waits for an analyst as a \(Self.pendingAlert) alert")
        return .null
    }
}
