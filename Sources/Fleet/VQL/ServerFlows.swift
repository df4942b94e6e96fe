import FleetCore
import Foundation
import VQL

/// Server VQL about collections (flows): list, read, start, cancel, delete, and what each stored.
enum ServerFlows {
    static var plugins: [PluginDeclaration] { [flows, flowResults, source, flowLogs, uploads, enumerateFlow, deleteFlow] }
    static var functions: [FunctionDeclaration] { [collectClient, getFlow, cancelFlow] }

    /// Velociraptor's flow states: WAITING until an agent takes it, RUNNING, FINISHED, or ERROR
    /// (our error, timed out and cancelled; `status` says which).
    static func state(_ state: FlowState) -> String {
        switch state {
        case .scheduled: return "WAITING"
        case .running: return "RUNNING"
        case .finished: return "FINISHED"
        case .error, .timedOut, .cancelled: return "ERROR"
        }
    }

    /// A flow as Velociraptor's flow records show it (session_id, times in microseconds, totals, the
    /// request), with Quarry's hunt ID, round and exact status beside.
    static func row(_ flow: FlowRecord, sources: [SourceCount]? = nil) -> Value {
        var env: [Value] = []
        for (key, value) in flow.request.parameters.sorted(by: { $0.key < $1.key }) {
            env.append(.dict(Dict([("key", .string(key)), ("value", .string(value))])))
        }
        let request = Dict([
            ("client_id", .string(flow.clientId)), ("flow_id", .string(flow.flowId)), ("creator", .string(flow.creator)),
            ("artifacts", ServerPlugins.strings(flow.request.artifacts)), ("env", .list(env)),
            ("timeout", flow.request.timeout.map { .int(Int64($0)) } ?? .null), ("max_rows", flow.request.maxRows.map { .int(Int64($0)) } ?? .null),
            ("max_upload_bytes", flow.request.maxUploadBytes.map { .int($0) } ?? .null), ("cpu_limit", flow.request.cpuLimit.map { .double($0) } ?? .null),
        ])
        var pairs: [(String, Value)] = [
            ("session_id", .string(flow.flowId)), ("flow_id", .string(flow.flowId)), ("client_id", .string(flow.clientId)),
            ("request", .dict(request)), ("state", .string(state(flow.state))), ("status", .string(flow.state.rawValue)),
            ("create_time", ServerPlugins.micros(flow.createdAt)), ("start_time", ServerPlugins.micros(flow.startedAt)),
            ("active_time", ServerPlugins.micros(flow.endedAt ?? flow.startedAt)),
            ("total_collected_rows", .int(Int64(flow.rows))), ("total_uploaded_bytes", .int(flow.uploadedBytes)),
            ("errors", ServerPlugins.strings(flow.errors)), ("hunt_id", flow.huntId.map { .string($0) } ?? .null), ("round", .int(Int64(flow.round))),
            ("cancel_requested", .bool(flow.cancelRequested)),
        ]
        if let sources {
            let names = sources.map { $0.source.isEmpty ? $0.artifact : $0.artifact + "/" + $0.source }
            pairs.append(("artifacts_with_results", ServerPlugins.strings(names)))
        }
        return .dict(Dict(pairs))
    }

    static func fetchView(_ api: APIClient, _ flowId: String) async throws -> FlowView {
        try await api.get("/flows/\(ServerPlugins.segment(flowId))", as: FlowView.self)
    }

    /// The flow, checked to belong to `clientId` when one is given.
    static func fetchView(_ api: APIClient, _ flowId: String, client clientId: String?) async throws -> FlowView {
        let view = try await fetchView(api, flowId)
        if let clientId, view.flow.clientId != clientId { throw ServerPluginError("flow \(flowId) is not a flow of client \(clientId)") }
        return view
    }

    static let flows = PluginDeclaration(
        name: "flows", summary: "Collections (flows) of a client, or of a hunt, newest first.",
        arguments: [
            ArgumentSpec("client_id", .string, "The client whose flows to list."), ArgumentSpec("flow_id", .string, "Only this flow."),
            ArgumentSpec("hunt_id", .string, "Only this hunt's flows."),
        ],
        columns: [
            ColumnSpec("session_id", .string), ColumnSpec("client_id", .string), ColumnSpec("request", .dict), ColumnSpec("state", .string),
            ColumnSpec("status", .string), ColumnSpec("create_time", .int, "microseconds"), ColumnSpec("start_time", .int),
            ColumnSpec("active_time", .int), ColumnSpec("total_collected_rows", .int), ColumnSpec("total_uploaded_bytes", .int),
            ColumnSpec("errors", .list), ColumnSpec("hunt_id", .string), ColumnSpec("round", .int),
        ],
        examples: ["SELECT session_id, state, total_collected_rows FROM flows(client_id='C.0123456789abcdef')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        let client = ctx.string("client_id"), hunt = ctx.string("hunt_id")
        if let flowId = ctx.string("flow_id") {
            let view = try runBlocking { try await fetchView(api, flowId, client: client) }
            return ArrayCursor([row(view.flow, sources: view.sources)])
        }
        let records = try runBlocking { try await api.get("/flows", query: ["client_id": client, "hunt_id": hunt], as: [FlowRecord].self) }
        return ArrayCursor(records.map { row($0) })
    }

    /// The rows of a results query, page by page from the server.
    static func results(_ api: APIClient, _ query: [String: String?], tagged: Bool) throws -> RowCursor {
        let rows = try runBlocking { try await api.allResults(query) }
        return ArrayCursor(rows.map { tagged ? ServerPlugins.resultValue($0) : ServerPlugins.parsed($0.json) })
    }

    static let flowResults = PluginDeclaration(
        name: "flow_results", summary: "The rows one flow collected, as the artifact wrote them.",
        arguments: [
            ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("flow_id", .string, required: true, "The flow."),
            ArgumentSpec("artifact", .string, "Only this artifact (or Artifact/Source)."), ArgumentSpec("source", .string, "Only this source."),
        ],
        examples: ["SELECT * FROM flow_results(client_id='C.0123456789abcdef', flow_id='F.0123456789abcdef', artifact='Linux.Sys.Pslist')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        guard let client = ctx.string("client_id"), let flow = ctx.string("flow_id") else { throw ServerPluginError("flow_results: client_id and flow_id are required") }
        let (artifact, source) = ServerPlugins.artifactAndSource(ctx)
        return try results(api, ["client_id": client, "flow_id": flow, "artifact": artifact, "source": source], tagged: false)
    }

    static let source = PluginDeclaration(
        name: "source",
        summary: "Rows of an artifact source stored on the server: of one flow (client_id, flow_id) or of a hunt (hunt_id, with ClientId, FlowId and Fqdn added).",
        arguments: [
            ArgumentSpec("client_id", .string, "The client of the flow."), ArgumentSpec("flow_id", .string, "The flow."),
            ArgumentSpec("hunt_id", .string, "The hunt."), ArgumentSpec("artifact", .string, "The artifact (or Artifact/Source)."),
            ArgumentSpec("source", .string, "The source of the artifact."),
            ArgumentSpec("start_row", .int, "Skip this many rows."), ArgumentSpec("count", .int, "Return at most this many rows."),
        ],
        examples: ["SELECT * FROM source(hunt_id='H.0123abcd', artifact='Linux.Sys.Pslist')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        let (artifact, sourceName) = ServerPlugins.artifactAndSource(ctx)
        let hunt = ctx.string("hunt_id"), flow = ctx.string("flow_id")
        guard hunt != nil || flow != nil else { throw ServerPluginError("source: give hunt_id, or client_id and flow_id") }
        var query: [String: String?] = ["hunt_id": hunt, "flow_id": flow, "client_id": ctx.string("client_id"), "artifact": artifact, "source": sourceName]
        let start = max(0, Int(ctx.int("start_row") ?? 0)), count = ctx.int("count").map { max(0, Int($0)) }
        if start > 0 || count != nil {
            query["offset"] = String(start)
            query["limit"] = String(count ?? APIClient.resultPageRows)
            let page = query
            let rows = try runBlocking { try await api.raw(.GET, "/results", query: page, body: nil) }
            let lines = rows.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONDecoder().decode(ResultRow.self, from: Data($0)) }
            return ArrayCursor(lines.map { hunt != nil ? ServerPlugins.resultValue($0) : ServerPlugins.parsed($0.json) })
        }
        return try results(api, query, tagged: hunt != nil)
    }

    static let flowLogs = PluginDeclaration(
        name: "flow_logs", summary: "The log lines of one flow, in order.",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("flow_id", .string, required: true, "The flow.")],
        columns: [ColumnSpec("level", .string), ColumnSpec("message", .string)],
        examples: ["SELECT * FROM flow_logs(client_id='C.0123456789abcdef', flow_id='F.0123456789abcdef')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        guard let client = ctx.string("client_id"), let flow = ctx.string("flow_id") else { throw ServerPluginError("flow_logs: client_id and flow_id are required") }
        let logs = try runBlocking { try await fetchView(api, flow, client: client).logs }
        return ArrayCursor(logs.map { line in
            if case .dict(let dict) = ServerPlugins.parsed(line) { return .dict(dict) }
            return .dict(Dict([("message", .string(line))]))
        })
    }

    static func uploadRow(_ upload: UploadRecord, clientId: String) -> Value {
        .dict(Dict([
            ("vfs_path", .string(FileStoreAccessor.path(of: upload, clientId: clientId))), ("Name", .string(upload.name)), ("file_size", .int(upload.size)), ("uploaded_size", .int(upload.size)),
            ("sha256", .string(upload.sha256)), ("md5", .string(upload.md5)), ("flow_id", .string(upload.flowId)), ("client_id", .string(clientId)),
        ]))
    }

    static let uploads = PluginDeclaration(
        name: "uploads", summary: "Files uploaded by a flow, or by every flow of a hunt, with their size and hashes.",
        arguments: [
            ArgumentSpec("client_id", .string, "The client of the flow."), ArgumentSpec("flow_id", .string, "The flow."),
            ArgumentSpec("hunt_id", .string, "Every flow of this hunt."),
        ],
        columns: [
            ColumnSpec("vfs_path", .string, "where the fs accessor reads it: /clients/ID/collections/FLOW/uploads/NAME"),
            ColumnSpec("Name", .string, "the name the agent gave the file"), ColumnSpec("file_size", .int), ColumnSpec("uploaded_size", .int),
            ColumnSpec("sha256", .string), ColumnSpec("md5", .string), ColumnSpec("flow_id", .string), ColumnSpec("client_id", .string),
        ],
        examples: ["SELECT vfs_path, file_size, sha256 FROM uploads(client_id='C.0123456789abcdef', flow_id='F.0123456789abcdef')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        let client = ctx.string("client_id")
        if let hunt = ctx.string("hunt_id") {
            let values = try runBlocking {
                var all: [Value] = []
                for flow in try await api.get("/flows", query: ["hunt_id": hunt], as: [FlowRecord].self) where flow.uploadedBytes > 0 {
                    all += try await fetchView(api, flow.flowId).uploads.map { uploadRow($0, clientId: flow.clientId) }
                }
                return all
            }
            return ArrayCursor(values)
        }
        guard let flow = ctx.string("flow_id") else { throw ServerPluginError("uploads: give flow_id (with client_id) or hunt_id") }
        let view = try runBlocking { try await fetchView(api, flow, client: client) }
        return ArrayCursor(view.uploads.map { uploadRow($0, clientId: view.flow.clientId) })
    }

    static let enumerateFlow = PluginDeclaration(
        name: "enumerate_flow", summary: "What a flow stored on the server: one row per result source, upload and log.",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("flow_id", .string, "The flow.")],
        columns: [ColumnSpec("Type", .string, "Result, Upload or Log"), ColumnSpec("VFSPath", .string), ColumnSpec("Size", .int, "rows, bytes or lines")],
        examples: ["SELECT Type, VFSPath FROM enumerate_flow(client_id='C.0123456789abcdef', flow_id='F.0123456789abcdef')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        guard let client = ctx.string("client_id"), let flow = ctx.string("flow_id") else { throw ServerPluginError("enumerate_flow: client_id and flow_id are required") }
        let view = try runBlocking { try await fetchView(api, flow, client: client) }
        let base = "/clients/\(client)/collections/\(flow)"
        func entry(_ type: String, _ path: String, _ size: Int64) -> Value {
            .dict(Dict([("Type", .string(type)), ("VFSPath", .string(base + path)), ("Size", .int(size))]))
        }
        var rows = (view.sources ?? []).map { entry("Result", "/results/\($0.source.isEmpty ? $0.artifact : $0.artifact + "/" + $0.source).json", Int64($0.rows)) }
        rows += view.uploads.map { entry("Upload", "/uploads/" + $0.name, $0.size) }
        if !view.logs.isEmpty { rows.append(entry("Log", "/logs", Int64(view.logs.count))) }
        return ArrayCursor(rows)
    }

    static let deleteFlow = PluginDeclaration(
        name: "delete_flow",
        summary: "Deletes a flow with its rows, uploads records and logs (administrators). Without really_do_it it only shows what would go.",
        arguments: [
            ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("flow_id", .string, required: true, "The flow."),
            ArgumentSpec("really_do_it", .bool, "Delete; otherwise a dry run."),
        ],
        columns: [ColumnSpec("Type", .string), ColumnSpec("VFSPath", .string), ColumnSpec("Deleted", .bool)],
        examples: ["SELECT * FROM delete_flow(client_id='C.0123456789abcdef', flow_id='F.0123456789abcdef')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        guard let client = ctx.string("client_id"), let flow = ctx.string("flow_id") else { throw ServerPluginError("delete_flow: client_id and flow_id are required") }
        _ = try runBlocking { try await fetchView(api, flow, client: client) }
        let really = ctx.bool("really_do_it") ?? false
        if really { _ = try runBlocking { try await api.delete("/flows/\(ServerPlugins.segment(flow))", as: DeletionView.self) } }
        return ArrayCursor([.dict(Dict([("Type", .string("Flow")), ("VFSPath", .string("/clients/\(client)/collections/\(flow)")), ("Deleted", .bool(really))]))])
    }
}
