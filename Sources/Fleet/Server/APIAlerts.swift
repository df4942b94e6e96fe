import FleetCore
import Foundation
import Hummingbird

extension FleetServer {
    /// `GET /alerts` (readers and up; `id`, `since`, `severity` (at least), `client_id`, `open=1`,
    /// `before`, `limit` capped by the page limit) and `POST /alerts/:id/ack` (investigators and
    /// up; audited).
    func addAlertRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("alerts") { [self] request, context in
            try context.requireCaller().require("READ_RESULTS")
            let parameters = request.uri.queryParameters
            var query = AlertQuery(limit: min(parameters.string("limit").flatMap { Int($0) } ?? 100, config.limits.maxResultsPageRows))
            query.id = parameters.string("id").flatMap { Int64($0) }
            query.since = parameters.string("since").flatMap { Double($0) }
            if let text = parameters.string("severity") {
                guard let severity = AlertSeverity(rawValue: text.lowercased()) else {
                    throw APIFailure(status: 400, message: "unknown severity '\(text)' (\(AlertSeverity.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                query.minimumSeverity = severity
            }
            query.clientId = parameters.string("client_id")
            query.unacknowledgedOnly = parameters.string("open") == "1"
            query.before = parameters.string("before").flatMap { Int64($0) }
            return try ok(try await store.alerts(query))
        }
        api.post("alerts/:id/ack") { [self] request, context in
            let caller = try context.requireCaller()
            let text = try context.parameters.require("id")
            guard let id = Int64(text) else { throw APIFailure(status: 400, message: "alert ids are numbers, not '\(text)'") }
            let raw = try await context.body(of: request, limit: config.limits.maxRequestBodyBytes)
            let alert = try await acknowledge(id, caller: caller, raw: raw)
            return try ok(alert)
        }
    }

    /// Acknowledges alert `id` as `caller` (who needs COLLECT_CLIENT), audited: the API's and the
    /// console's acknowledge both come here.
    func acknowledge(_ id: Int64, caller: Caller, raw: Data) async throws -> AlertRecord {
        try caller.require("COLLECT_CLIENT")
        guard let alert = try await store.acknowledgeAlert(id, by: caller.user.name, at: Date().timeIntervalSince1970) else {
            throw APIFailure(status: 404, message: "no alert \(id)")
        }
        try await audit(caller, "ack-alert", String(id), raw)
        return alert
    }
}
