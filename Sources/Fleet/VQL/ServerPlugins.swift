import FleetCore
import Foundation
import VQL

/// Server-side VQL over what the fleet collected, as Velociraptor's notebooks offer: `quarry query
/// --server` adds these plugins, which call the server's API with the analyst's key (so the
/// analyst's role applies) and return rows to post-process in VQL.
public enum ServerPlugins {
    /// The service key under which the query context holds the `APIClient`.
    public static let serviceKey = "fleet.api"

    public static var plugins: [PluginDeclaration] { [clients, hunts, flows, huntResults, collectClient] }

    static func api(_ ctx: CallContext) throws -> APIClient {
        guard let api = ctx.context.service(serviceKey, as: APIClient.self) else {
            throw ServerPluginError("this plugin needs the fleet server: run the query with --server (and --api-config)")
        }
        return api
    }

    /// Any Encodable as a VQL value (through JSON).
    static func value<T: Encodable>(_ item: T) -> Value {
        guard let data = try? JSONEncoder().encode(item), let parsed = try? JSONParser.parse(bytes: Array(data)) else { return .null }
        return parsed
    }

    static let clients = PluginDeclaration(
        name: "clients", summary: "Enrolled clients: ID, host facts, labels, last seen, connected now.",
        columns: [
            ColumnSpec("client_id", .string), ColumnSpec("hostname", .string), ColumnSpec("fqdn", .string), ColumnSpec("os", .string),
            ColumnSpec("kernel", .string), ColumnSpec("ips", .list), ColumnSpec("labels", .list), ColumnSpec("enrolled_at", .timestamp),
            ColumnSpec("last_seen", .timestamp), ColumnSpec("revoked", .bool), ColumnSpec("connected", .bool),
        ],
        examples: ["SELECT client_id, hostname, labels FROM clients() WHERE connected"]
    ) { ctx in
        let api = try api(ctx)
        let views = try runBlocking { try await api.get("/clients", as: [ClientView].self) }
        return ArrayCursor(views.map { view in
            let c = view.client
            return .dict(Dict([
                ("client_id", .string(c.clientId)), ("hostname", .string(c.hostname)), ("fqdn", .string(c.fqdn)), ("os", .string(c.os)),
                ("kernel", .string(c.kernel)), ("ips", .list(c.ips.map { .string($0) })), ("labels", .list(c.labels.map { .string($0) })),
                ("enrolled_at", .timestamp(Timestamp(seconds: c.enrolledAt))), ("last_seen", .timestamp(Timestamp(seconds: c.lastSeen))),
                ("revoked", .bool(c.revoked)), ("connected", .bool(view.connected)),
            ]))
        })
    }

    static let hunts = PluginDeclaration(
        name: "hunts", summary: "Hunts on the server, newest first.",
        columns: [ColumnSpec("huntId", .string), ColumnSpec("state", .string), ColumnSpec("request", .dict), ColumnSpec("round", .int)],
        examples: ["SELECT huntId, state, request.artifacts FROM hunts()"]
    ) { ctx in
        let api = try api(ctx)
        return ArrayCursor(try runBlocking { try await api.get("/hunts", as: [HuntRecord].self) }.map(value))
    }

    static let flows = PluginDeclaration(
        name: "flows", summary: "Collections (flows) of a client or a hunt, newest first.",
        arguments: [ArgumentSpec("client_id", .string, "Only this client's flows."), ArgumentSpec("hunt_id", .string, "Only this hunt's flows.")],
        columns: [ColumnSpec("flowId", .string), ColumnSpec("clientId", .string), ColumnSpec("state", .string), ColumnSpec("rows", .int)],
        examples: ["SELECT flowId, state, rows FROM flows(client_id='C.0123456789abcdef')"]
    ) { ctx in
        let api = try api(ctx)
        let query = ["client_id": ctx.string("client_id"), "hunt_id": ctx.string("hunt_id")]
        return ArrayCursor(try runBlocking { try await api.get("/flows", query: query, as: [FlowRecord].self) }.map(value))
    }

    static let huntResults = PluginDeclaration(
        name: "hunt_results", summary: "Rows a hunt collected, each with ClientId, FlowId and Fqdn added.",
        arguments: [
            ArgumentSpec("hunt_id", .string, required: true, "The hunt."), ArgumentSpec("artifact", .string, "Only this artifact."),
            ArgumentSpec("source", .string, "Only this source of the artifact."), ArgumentSpec("round", .int, "Only this round of a scheduled hunt."),
        ],
        columns: [ColumnSpec("ClientId", .string), ColumnSpec("FlowId", .string), ColumnSpec("Fqdn", .string)],
        examples: ["SELECT ClientId, Fqdn, Name FROM hunt_results(hunt_id='H.0123abcd', artifact='Linux.Sys.Pslist')"]
    ) { ctx in
        let api = try api(ctx)
        let query: [String: String?] = [
            "hunt_id": ctx.string("hunt_id"), "artifact": ctx.string("artifact"), "source": ctx.string("source"), "round": ctx.int("round").map { String($0) },
        ]
        let rows = try runBlocking { try await api.allResults(query) }
        return ArrayCursor(rows.map(resultValue))
    }

    /// A stored row as hunt_results shows it: ClientId, FlowId, Fqdn, then the row's own columns.
    public static func resultValue(_ row: ResultRow) -> Value {
        var pairs: [(String, Value)] = [("ClientId", .string(row.clientId)), ("FlowId", .string(row.flowId)), ("Fqdn", .string(row.fqdn))]
        if case .dict(let dict)? = try? JSONParser.parse(row.json) {
            for key in dict.keys where key != "ClientId" && key != "FlowId" && key != "Fqdn" { pairs.append((key, dict[key] ?? .null)) }
        }
        return .dict(Dict(pairs))
    }

    static let collectClient = PluginDeclaration(
        name: "collect_client", summary: "Schedules a collection on one client; returns the new flow.",
        arguments: [
            ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("artifacts", .stringList, required: true, "Artifacts to collect."),
            ArgumentSpec("args", .dict, "Artifact parameters as a dict."), ArgumentSpec("timeout", .int, "Seconds the collection may run."),
        ],
        columns: [ColumnSpec("flowId", .string), ColumnSpec("clientId", .string), ColumnSpec("state", .string)],
        examples: ["SELECT flowId FROM collect_client(client_id='C.0123456789abcdef', artifacts='Generic.Client.Info')"]
    ) { ctx in
        let api = try api(ctx)
        guard let client = ctx.string("client_id") else { throw ServerPluginError("collect_client: client_id is required") }
        var artifacts: [String] = []
        switch ctx.value("artifacts") {
        case .list(let items)?: artifacts = items.compactMap(\.stringValue)
        case let item?: artifacts = item.stringValue.map { [$0] } ?? []
        case nil: break
        }
        var parameters: [String: String] = [:]
        if case .dict(let args)? = ctx.value("args") {
            for key in args.keys { parameters[key] = args[key].map { $0.stringValue ?? JSONWriter.string($0) } ?? "" }
        }
        let body = CollectRequestBody(clientId: client, request: CollectionRequest(artifacts: artifacts, parameters: parameters, timeout: ctx.double("timeout")))
        let flow = try runBlocking { try await api.post("/collect", body: body, as: FlowRecord.self) }
        return ArrayCursor([value(flow)])
    }
}

/// A server plugin that cannot run (no server configured, missing argument).
struct ServerPluginError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
