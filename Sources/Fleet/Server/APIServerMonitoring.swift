import Artifacts
import FleetCore
import Foundation
import Hummingbird

extension FleetServer {
    /// The server monitoring table: SERVER_EVENT artifacts the server runs in-process. Readers
    /// read it and how its artifacts fare on this frontend (`status`); changing it takes COLLECT_SERVER (administrators), because its queries run with the
    /// server's own reach. Each change is audited and applied on this frontend at once (other
    /// frontends apply it on their next scheduler pass).
    func addServerMonitoringRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("server-monitoring") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(try await store.serverMonitoringTable())
        }
        api.get("server-monitoring/status") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(serverMonitors.statuses.all)
        }
        api.post("server-monitoring") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_SERVER")
            let (body, raw) = try await context.decode(MonitoringRequest.self, from: request, limit: config.limits.maxRequestBodyBytes)
            let entry = try monitoringEntry(body, type: .serverEvent, caller: caller)
            let table = try await store.serverMonitoringTable()
            if table.count >= ServerMonitoringTable.maxEntries, !table.contains(where: { $0.artifact == entry.artifact }) {
                throw APIFailure(status: 400, message: "the server monitoring table holds \(ServerMonitoringTable.maxEntries) entries already")
            }
            try await store.setServerMonitoring(entry)
            try await audit(caller, "server-monitoring-add", entry.artifact, raw)
            await refreshServerMonitoring()
            return try ok(try await store.serverMonitoringTable())
        }
        api.post("server-monitoring/remove") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_SERVER")
            let (body, raw) = try await context.decode(MonitoringRequest.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard try await store.removeServerMonitoring(artifact: body.artifact) else {
                throw APIFailure(status: 404, message: "\(body.artifact) is not in the server monitoring table")
            }
            try await audit(caller, "server-monitoring-remove", body.artifact, raw)
            await refreshServerMonitoring()
            return try ok(try await store.serverMonitoringTable())
        }
    }
}
