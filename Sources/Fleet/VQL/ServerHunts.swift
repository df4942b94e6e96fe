import FleetCore
import Foundation
import VQL

/// Server VQL about hunts: list, read, create, add a client, update, delete, and their results.
enum ServerHunts {
    static var plugins: [PluginDeclaration] { [hunts, huntFlows, huntResults, huntDelete] }
    static var functions: [FunctionDeclaration] { [hunt, huntAdd, huntUpdate, huntInfo] }

    /// Velociraptor's hunt states (our expired hunt is STOPPED, as Velociraptor shows one).
    static func state(_ state: HuntState) -> String {
        switch state {
        case .paused: return "PAUSED"
        case .running: return "RUNNING"
        case .stopped, .expired: return "STOPPED"
        case .archived: return "ARCHIVED"
        }
    }

    /// A hunt as Velociraptor's hunt records show it (hunt_id, hunt_description, times in
    /// microseconds, the start request, the condition), with Quarry's schedule and round beside.
    static func row(_ hunt: HuntRecord, view: HuntView? = nil) -> Value {
        let request = Dict([
            ("artifacts", ServerPlugins.strings(hunt.request.artifacts)),
            ("env", .list(hunt.request.parameters.sorted { $0.key < $1.key }.map { .dict(Dict([("key", .string($0.key)), ("value", .string($0.value))])) })),
        ])
        let condition = Dict([
            ("labels", ServerPlugins.strings(hunt.conditions.labels)), ("excluded_labels", ServerPlugins.strings(hunt.conditions.excludeLabels)),
            ("os", hunt.conditions.os.map { .string($0) } ?? .null),
        ])
        var pairs: [(String, Value)] = [
            ("hunt_id", .string(hunt.huntId)), ("hunt_description", .string(hunt.description)), ("creator", .string(hunt.creator)),
            ("create_time", ServerPlugins.micros(hunt.createdAt)), ("start_time", ServerPlugins.micros(hunt.startedAt)),
            ("expires", ServerPlugins.micros(hunt.expiresAt)), ("state", .string(state(hunt.state))), ("status", .string(hunt.state.rawValue)),
            ("artifacts", ServerPlugins.strings(hunt.request.artifacts)), ("start_request", .dict(request)), ("condition", .dict(condition)),
            ("client_limit", hunt.clientLimit.map { .int(Int64($0)) } ?? .null), ("schedule", hunt.schedule.map { .string($0) } ?? .null),
            ("round", .int(Int64(hunt.round))),
        ]
        if let view {
            let finished = view.states.filter { FlowState(rawValue: $0.key)?.isFinal ?? false }.values.reduce(0, +)
            let stats = Dict([
                ("total_clients_scheduled", .int(Int64(view.clients.count))), ("total_clients_with_results", .int(Int64(view.clients.filter { $0.rows > 0 }.count))),
                ("total_clients_with_errors", .int(Int64(view.clients.filter { !$0.errors.isEmpty }.count))), ("total_clients_finished", .int(Int64(finished))),
            ])
            pairs.append(("stats", .dict(stats)))
        }
        return .dict(Dict(pairs))
    }

    static func fetchView(_ api: APIClient, _ huntId: String) async throws -> HuntView {
        try await api.get("/hunts/\(ServerPlugins.segment(huntId))", as: HuntView.self)
    }

    static let hunts = PluginDeclaration(
        name: "hunts", summary: "Hunts on the server, newest first.",
        arguments: [ArgumentSpec("hunt_id", .string, "Only this hunt (with its stats).")],
        columns: [
            ColumnSpec("hunt_id", .string), ColumnSpec("hunt_description", .string), ColumnSpec("creator", .string), ColumnSpec("create_time", .int, "microseconds"),
            ColumnSpec("start_time", .int), ColumnSpec("expires", .int), ColumnSpec("state", .string), ColumnSpec("artifacts", .list),
            ColumnSpec("start_request", .dict), ColumnSpec("condition", .dict), ColumnSpec("round", .int),
        ],
        examples: ["SELECT hunt_id, state, artifacts FROM hunts()"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        if let huntId = ctx.string("hunt_id") {
            let view = try runBlocking { try await fetchView(api, huntId) }
            return ArrayCursor([row(view.hunt, view: view)])
        }
        return ArrayCursor(try runBlocking { try await api.get("/hunts", as: [HuntRecord].self) }.map { row($0) })
    }

    static let huntInfo = FunctionDeclaration(
        name: "hunt_info", summary: "One hunt's record with its client counts (stats).",
        arguments: [ArgumentSpec("hunt_id", .string, required: true, "The hunt.")], returns: .dict,
        examples: ["SELECT hunt_info(hunt_id='H.0123abcd').stats AS Stats FROM scope()"]
    ) { ctx in
        guard let huntId = ctx.string("hunt_id") else { return .null }
        return ServerPlugins.call(ctx, "hunt_info") { api in
            let view = try await fetchView(api, huntId)
            return row(view.hunt, view: view)
        }
    }

    static let huntFlows = PluginDeclaration(
        name: "hunt_flows", summary: "The flows of a hunt's current round, one per client.",
        arguments: [
            ArgumentSpec("hunt_id", .string, required: true, "The hunt."), ArgumentSpec("start_row", .int, "Skip this many rows."),
            ArgumentSpec("limit", .int, "Return at most this many rows."),
        ],
        columns: [ColumnSpec("HuntId", .string), ColumnSpec("ClientId", .string), ColumnSpec("FlowId", .string), ColumnSpec("Flow", .dict)],
        examples: ["SELECT ClientId, Flow.state AS State FROM hunt_flows(hunt_id='H.0123abcd')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        guard let huntId = ctx.string("hunt_id") else { throw ServerPluginError("hunt_flows: hunt_id is required") }
        let (hunt, flows) = try runBlocking {
            let view = try await fetchView(api, huntId)
            return (view.hunt, try await api.get("/flows", query: ["hunt_id": huntId], as: [FlowRecord].self))
        }
        let current = flows.filter { $0.round == hunt.round }.sorted { $0.clientId < $1.clientId }
        let start = max(0, Int(ctx.int("start_row") ?? 0)), limit = ctx.int("limit").map { max(0, Int($0)) } ?? Int.max
        return ArrayCursor(current.dropFirst(start).prefix(limit).map { flow in
            .dict(Dict([("HuntId", .string(huntId)), ("ClientId", .string(flow.clientId)), ("FlowId", .string(flow.flowId)), ("Flow", ServerFlows.row(flow))]))
        })
    }

    static let huntResults = PluginDeclaration(
        name: "hunt_results", summary: "Rows a hunt collected, each with ClientId, FlowId and Fqdn added.",
        arguments: [
            ArgumentSpec("hunt_id", .string, required: true, "The hunt."), ArgumentSpec("artifact", .string, "Only this artifact (or Artifact/Source)."),
            ArgumentSpec("source", .string, "Only this source of the artifact."), ArgumentSpec("round", .int, "Only this round of a scheduled hunt."),
        ],
        columns: [ColumnSpec("ClientId", .string), ColumnSpec("FlowId", .string), ColumnSpec("Fqdn", .string)],
        examples: ["SELECT ClientId, Fqdn, Name FROM hunt_results(hunt_id='H.0123abcd', artifact='Linux.Sys.Pslist')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        let (artifact, source) = ServerPlugins.artifactAndSource(ctx)
        let query: [String: String?] = ["hunt_id": ctx.string("hunt_id"), "artifact": artifact, "source": source, "round": ctx.int("round").map { String($0) }]
        return try ServerFlows.results(api, query, tagged: true)
    }

    static let huntDelete = PluginDeclaration(
        name: "hunt_delete",
        summary: "Deletes a hunt with its flows and what they stored (administrators); archive=TRUE only archives it. Without really_do_it it lists what would go.",
        arguments: [
            ArgumentSpec("hunt_id", .string, required: true, "The hunt."), ArgumentSpec("really_do_it", .bool, "Delete; otherwise a dry run."),
            ArgumentSpec("archive", .bool, "Archive the hunt instead of deleting it."),
        ],
        columns: [ColumnSpec("HuntId", .string), ColumnSpec("ClientId", .string), ColumnSpec("FlowId", .string), ColumnSpec("Deleted", .bool)],
        examples: ["SELECT * FROM hunt_delete(hunt_id='H.0123abcd')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        guard let huntId = ctx.string("hunt_id") else { throw ServerPluginError("hunt_delete: hunt_id is required") }
        let really = ctx.bool("really_do_it") ?? false
        let flows = try runBlocking { try await api.get("/flows", query: ["hunt_id": huntId], as: [FlowRecord].self) }
        if ctx.bool("archive") ?? false {
            if really { _ = try runBlocking { try await api.post("/hunts/\(ServerPlugins.segment(huntId))/archive", body: [String: String](), as: HuntRecord.self) } }
            return ArrayCursor([.dict(Dict([("HuntId", .string(huntId)), ("ClientId", .null), ("FlowId", .null), ("Archived", .bool(really))]))])
        }
        if really { _ = try runBlocking { try await api.delete("/hunts/\(ServerPlugins.segment(huntId))", as: DeletionView.self) } }
        return ArrayCursor(flows.map { flow in
            .dict(Dict([("HuntId", .string(huntId)), ("ClientId", .string(flow.clientId)), ("FlowId", .string(flow.flowId)), ("Deleted", .bool(really))]))
        })
    }
}
