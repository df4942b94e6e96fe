import Artifacts
import FleetCore
import Foundation
import Hummingbird
import VQL

/// Body of POST /monitoring (add or replace an entry) and POST /monitoring/remove (artifact and label only).
public struct MonitoringRequest: Codable, Sendable {
    public var artifact: String
    public var parameters: [String: String]?
    public var label: String?
    public init(artifact: String, parameters: [String: String]? = nil, label: String? = nil) {
        self.artifact = artifact
        self.parameters = parameters
        self.label = label
    }
}

extension FleetServer {
    /// Rows per page of GET /events at most, and by default.
    static let maxEventPageRows = 20_000

    /// The client monitoring table (read: reader; change: investigator or administrator, and the
    /// artifact's own permissions; every change audited and pushed to connected agents at once) and
    /// the reading of event rows.
    func addMonitoringRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("monitoring") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(try await store.monitoringTable())
        }
        api.post("monitoring") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_CLIENT")
            let (body, raw) = try await context.decode(MonitoringRequest.self, from: request, limit: config.limits.maxRequestBodyBytes)
            var entry = try monitoringEntry(body, type: .clientEvent, caller: caller)
            entry.label = body.label ?? ""
            if let problem = entry.problem { throw APIFailure(status: 400, message: problem) }
            let table = try await store.monitoringTable()
            if table.count >= MonitoringEntry.maxEntries, !table.contains(where: { $0.artifact == entry.artifact && $0.label == entry.label }) {
                throw APIFailure(status: 400, message: "the monitoring table holds \(MonitoringEntry.maxEntries) entries already")
            }
            try await store.setMonitoring(entry)
            try await audit(caller, "monitoring-add", entry.artifact, raw)
            try await pushMonitoringIfChanged()
            return try ok(try await store.monitoringTable())
        }
        api.post("monitoring/remove") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_CLIENT")
            let (body, raw) = try await context.decode(MonitoringRequest.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard try await store.removeMonitoring(artifact: body.artifact, label: body.label ?? "") else {
                let label = body.label.map { " for label \($0)" } ?? ""
                throw APIFailure(status: 404, message: "\(body.artifact) is not in the monitoring table\(label)")
            }
            try await audit(caller, "monitoring-remove", body.artifact, raw)
            try await pushMonitoringIfChanged()
            return try ok(try await store.monitoringTable())
        }
        api.get("events") { [self] request, context in try await eventsPage(request, context) }
    }

    /// The entry a request adds to a monitoring table, once the artifact is known to be of `type`,
    /// allowed to the caller, and to have every parameter named.
    func monitoringEntry(_ body: MonitoringRequest, type: Artifact.Kind, caller: Caller) throws -> MonitoringEntry {
        try checkArtifacts([body.artifact], caller: caller)
        guard let artifact = repository.artifact(named: body.artifact), artifact.type == type else {
            throw APIFailure(status: 400, message: "\(body.artifact) is not a \(type.rawValue) artifact: only those can be in this monitoring table")
        }
        let parameters = body.parameters ?? [:]
        for name in parameters.keys.sorted() where !artifact.parameters.contains(where: { $0.name == name }) {
            let hint = NameSuggester.closest(to: name, in: artifact.parameters.map(\.name)).map { " (did you mean \($0)?)" } ?? ""
            throw APIFailure(status: 400, message: "\(body.artifact) has no parameter \(name)\(hint)")
        }
        let problems = ParameterCheck.problems(artifact, parameters)
        if !problems.isEmpty { throw APIFailure(status: 400, message: problems.joined(separator: "; ")) }
        let entry = MonitoringEntry(artifact: body.artifact, parameters: parameters, creator: caller.user.name, updatedAt: Date().timeIntervalSince1970)
        if let problem = entry.problem { throw APIFailure(status: 400, message: problem) }
        return entry
    }

    /// GET /events?artifact=&client_id=&source=&since=&until=&limit=&after=: one page of event rows
    /// as JSON lines, oldest first (times in seconds since 1970; the next page starts `after` the
    /// last row's cursor, `TIME/CLIENT/SEQ/INDEX`). A page shorter than `limit` is the last for now.
    func eventsPage(_ request: Request, _ context: FleetRequestContext) async throws -> Response {
        try context.requireCaller().require("READ_RESULTS")
        let q = request.uri.queryParameters
        guard let artifact = q.string("artifact"), !artifact.isEmpty else { throw APIFailure(status: 400, message: "artifact= is required") }
        var after: EventCursor?
        if let text = q.string("after") {
            guard let cursor = EventCursor(text) else { throw APIFailure(status: 400, message: "after=\(text): expected TIME/CLIENT/SEQ/INDEX") }
            after = cursor
        }
        func time(_ name: String) throws -> Double? {
            guard let text = q.string(name) else { return nil }
            guard let value = Double(text), value.isFinite else { throw APIFailure(status: 400, message: "\(name)=\(text): expected seconds since 1970") }
            return value
        }
        if let text = q.string("limit"), Int(text) == nil { throw APIFailure(status: 400, message: "limit=\(text): expected a number") }
        let query = EventQuery(
            artifact: artifact, source: q.string("source"), clientId: q.string("client_id"), since: try time("since"), until: try time("until"),
            after: after, limit: ServerLimits.page(q.int("limit"), default: Self.maxEventPageRows, max: Self.maxEventPageRows))
        let rows = try await store.events(query)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var buffer = ByteBuffer()
        for row in rows {
            buffer.writeBytes(try encoder.encode(row))
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: .init(byteBuffer: buffer))
    }
}
