import FleetCore
import Foundation
import VQL

/// Automatic response: `collect_client()` inside a server rule. A rule listed in server.yaml's
/// `automatic_response` acts at once — the collection is made as the user `server:RULE`, checked
/// and audited like an administrator's — so a detection can kill, quarantine or collect triage
/// within a second of the event. Any other rule's request is not run: it becomes a `high` alert
/// `Server.Response.Pending` for the client, carrying the request, for an analyst to decide.
extension LocalFleet {
    static let pendingAlert = "Server.Response.Pending"
    static let pendingRepeatSeconds = 3600.0

    func collect(_ body: CollectRequestBody, _ ctx: CallContext) -> Value {
        let server = self.server
        if server.config.automaticResponse.contains(rule) {
            let caller = Caller(user: UserRecord(name: "server:" + rule, role: .administrator, apiKeySHA256: "", createdAt: 0), remote: "server monitoring")
            do {
                let raw = try JSONEncoder().encode(body)
                let flow = try runBlocking { try await server.collect(body, caller: caller, raw: raw) }
                return ServerFlows.row(flow)
            } catch {
                ctx.log(.error, "collect_client: \(error)")
                return .null
            }
        }
        let request = Dict([
            ("Rule", .string(rule)), ("ClientId", .string(body.clientId)), ("Artifacts", ServerPlugins.strings(body.request.artifacts)),
            ("Parameters", ServerPlugins.notesValue(body.request.parameters)),
        ])
        let details = JSONWriter.string(.dict(request))
        let now = Date().timeIntervalSince1970
        let fresh = pending.withLockedValue { seen -> Bool in
            if let last = seen[details], now - last < Self.pendingRepeatSeconds { return false }
            if seen.count >= 10_000 { seen = seen.filter { now - $0.value < Self.pendingRepeatSeconds } }
            if seen.count >= 10_000 { seen.removeAll() }
            seen[details] = now
            return true
        }
        if fresh {
            let alert = AlertRecord(time: now, name: Self.pendingAlert, severity: .high, clientId: body.clientId, artifact: rule, details: details)
            _ = try? runBlocking { await server.record(alert) }
        }
        ctx.log(.warning, "collect_client: \(rule) is not in automatic_response (server.yaml): the request waits for an analyst as a \(Self.pendingAlert) alert")
        return .null
    }
}
