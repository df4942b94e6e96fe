import FleetCore
import Foundation
import Hummingbird
import QuarryConsole

// The console's alerts (list, filter, acknowledge), response actions awaiting a second analyst
// (approve, deny) and client events pages. Changes go through the same functions as the API
// (`acknowledge`, `decide`), so the role and approval rules are the API's, checked on the server.
extension FleetServer {
    /// Alerts per page, newest first.
    static let consoleAlertRows = 100
    /// Event rows shown, newest first.
    static let consoleEventRows = 200

    func addConsoleAlertPages(_ console: RouterGroup<FleetRequestContext>) {
        console.get("alerts") { [self] request, context in
            let caller = try context.requireConsoleCaller()
            try caller.require("READ_RESULTS")
            return consolePage(.alerts, title: "Alerts", view: try await alertsPage(request.uri.queryParameters, caller: caller), context: context)
        }
        console.post("alerts/:id/ack") { [self] request, context in
            let form = try await ConsoleForm.read(request, context)
            let caller = try context.requireSameSiteForm(form, request)
            let text = try context.parameters.require("id")
            guard let id = Int64(text) else { throw APIFailure(status: 400, message: "alert ids are numbers, not '\(text)'") }
            _ = try await acknowledge(id, caller: caller, raw: Data())
            return ConsoleResponse.redirect("/alerts")
        }
        console.get("actions") { [self] _, context in
            let caller = try context.requireConsoleCaller()
            try caller.require("READ_RESULTS")
            let rows = try await actions().map { action in
                let mayDecide = action.requester != caller.user.name && (try? checkArtifacts(action.request.artifacts, caller: caller)) != nil
                return ActionRowView(
                    id: action.id, clientId: action.clientId, artifacts: action.request.artifacts, parameters: action.request.parameters,
                    requester: action.requester, reason: action.reason, createdAt: action.createdAt, state: action.state.rawValue,
                    decidedBy: action.decidedBy, decidedAt: action.decidedAt, decisionReason: action.decisionReason, flowId: action.flowId,
                    canDecide: mayDecide)
            }
            return consolePage(.actions, title: "Response actions", view: ["rows": rows], context: context)
        }
        console.post("actions/:id/:decision") { [self] request, context in
            let form = try await ConsoleForm.read(request, context)
            let caller = try context.requireSameSiteForm(form, request)
            let id = try context.parameters.require("id"), decision = try context.parameters.require("decision")
            guard decision == "approve" || decision == "deny" else { throw APIFailure(status: 404, message: "no such decision: \(decision)") }
            let reason = form.value("reason").map { String($0.trimmingCharacters(in: .whitespacesAndNewlines).prefix(1000)) }.flatMap { $0.isEmpty ? nil : $0 }
            struct Body: Encodable { var reason: String? }
            _ = try await decide(id, approve: decision == "approve", reason: reason, caller: caller, raw: try JSONEncoder().encode(Body(reason: reason)))
            return ConsoleResponse.redirect("/actions")
        }
        console.get("events") { [self] request, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            let artifact = String((request.uri.queryParameters.string("artifact") ?? "").prefix(256))
            let table = try await store.monitoringTable().map(\.artifact)
            let (rows, truncated) = artifact.isEmpty ? ([], false) : try await latestEvents(artifact, count: Self.consoleEventRows)
            let view = EventsPageView(artifacts: table, artifact: artifact, rows: rows.reversed(), truncated: truncated)
            return consolePage(.events, title: "Events", view: view, context: context)
        }
    }

    /// The alerts page for `query`: `severity` (at least), `open=1`, `before` (an alert id, for
    /// the older pages).
    private func alertsPage(_ query: Hummingbird.Parameters, caller: Caller) async throws -> AlertsPageView {
        var alertQuery = AlertQuery(limit: Self.consoleAlertRows)
        if let text = query.string("severity"), !text.isEmpty {
            guard let severity = AlertSeverity(rawValue: text.lowercased()) else {
                throw APIFailure(status: 400, message: "unknown severity '\(text)' (\(AlertSeverity.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            alertQuery.minimumSeverity = severity
        }
        alertQuery.unacknowledgedOnly = query.string("open") == "1"
        if let text = query.string("before") {
            guard let before = Int64(text) else { throw APIFailure(status: 400, message: "before=\(text): expected an alert id") }
            alertQuery.before = before
        }
        let alerts = try await store.alerts(alertQuery)
        let here: [(String, String?)] = [("severity", alertQuery.minimumSeverity?.rawValue), ("open", alertQuery.unacknowledgedOnly ? "1" : nil)]
        let next = alerts.count == Self.consoleAlertRows ? alerts.last?.id.map { ConsoleText.link("/alerts", here + [("before", String($0))]) } : nil
        return AlertsPageView(
            alerts: alerts, severity: alertQuery.minimumSeverity, openOnly: alertQuery.unacknowledgedOnly,
            canAcknowledge: caller.user.role.permissions.contains("COLLECT_CLIENT"), next: next)
    }

    /// The newest `count` event rows of `artifact`, oldest first. The datastore reads events in
    /// time order only, so this finds the shortest recent window holding `count` rows, then reads
    /// it forward keeping the last `count` (at most `maxPages` pages: past that, `truncated` says
    /// the rows may not be the very newest). `truncated` is also set when older rows exist.
    func latestEvents(_ artifact: String, count: Int, maxPages: Int = 40) async throws -> (rows: [EventRow], truncated: Bool) {
        let now = Date().timeIntervalSince1970
        var since: Double?
        let windows: [Double] = [60, 600, 3600, 86400, 7 * 86400, 30 * 86400]
        for window in windows where since == nil {
            if try await store.events(EventQuery(artifact: artifact, since: now - window, limit: count)).count >= count { since = now - window }
        }
        let pageRows = 5000
        var kept: [EventRow] = []
        var after: EventCursor?
        for page in 1...maxPages {
            let rows = try await store.events(EventQuery(artifact: artifact, since: since, after: after, limit: pageRows))
            kept.append(contentsOf: rows)
            if kept.count > count { kept.removeFirst(kept.count - count) }
            guard rows.count == pageRows, let last = rows.last else { break }
            if page == maxPages { return (kept, true) }
            after = last.cursor
        }
        return (kept, since != nil)
    }
}
