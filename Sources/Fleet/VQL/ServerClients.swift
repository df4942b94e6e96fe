import FleetCore
import Foundation
import VQL

/// Server VQL about enrolled clients: `clients()`, `client_info()`, their metadata notes and labels.
/// Inside the server (`LocalFleet`), `clients()` and `client_info()` read the datastore directly.
enum ServerClients {
    static var plugins: [PluginDeclaration] { [clients] }
    static var functions: [FunctionDeclaration] { [clientInfo, clientMetadata, clientSetMetadata, label] }

    /// A client as Velociraptor's client records show it (client_id, os_info, first_seen_at in
    /// seconds, last_seen_at in microseconds, labels), with Quarry's own fields beside.
    static func row(_ view: ClientView) -> Value {
        let c = view.client
        let osInfo = Dict([
            ("system", .string(c.os)), ("hostname", .string(c.hostname)), ("fqdn", .string(c.fqdn)), ("release", .string(c.kernel)),
        ])
        return .dict(Dict([
            ("client_id", .string(c.clientId)),
            ("agent_information", .dict(Dict([("name", .string("quarry"))]))),
            ("os_info", .dict(osInfo)),
            ("first_seen_at", .int(Int64(c.enrolledAt))), ("last_seen_at", ServerPlugins.micros(c.lastSeen)),
            ("last_ip", .string(c.ips.first ?? "")), ("labels", ServerPlugins.strings(c.labels)),
            ("hostname", .string(c.hostname)), ("fqdn", .string(c.fqdn)), ("os", .string(c.os)), ("kernel", .string(c.kernel)),
            ("ips", ServerPlugins.strings(c.ips)), ("enrolled_at", .timestamp(Timestamp(seconds: c.enrolledAt))),
            ("last_seen", .timestamp(Timestamp(seconds: c.lastSeen))), ("revoked", .bool(c.revoked)), ("connected", .bool(view.connected)),
        ]))
    }

    /// Velociraptor's client search: `label:NAME`, `host:NAME`, `client:ID` (or a bare word, matched
    /// against the ID, host name and FQDN), `all`; `*` is a wildcard; case does not matter.
    static func matches(_ view: ClientView, search: String) -> Bool {
        let search = search.trimmingCharacters(in: .whitespaces).lowercased()
        if search.isEmpty || search == "all" { return true }
        let c = view.client
        func glob(_ pattern: String, _ text: String) -> Bool {
            let text = text.lowercased()
            guard pattern.contains("*") else { return text == pattern || text.hasPrefix(pattern) }
            let escaped = pattern.split(separator: "*", omittingEmptySubsequences: false).map { NSRegularExpression.escapedPattern(for: String($0)) }
            return text.range(of: "^" + escaped.joined(separator: ".*") + "$", options: .regularExpression) != nil
        }
        if let colon = search.firstIndex(of: ":") {
            let kind = search[..<colon], term = String(search[search.index(after: colon)...])
            switch kind {
            case "label": return c.labels.contains { glob(term, $0) }
            case "host": return glob(term, c.hostname) || glob(term, c.fqdn)
            case "client": return glob(term, c.clientId)
            default: break
            }
        }
        return glob(search, c.clientId) || glob(search, c.hostname) || glob(search, c.fqdn)
    }

    static let clients = PluginDeclaration(
        name: "clients", summary: "Enrolled clients with their host facts, labels, first and last contact, and whether they are connected now.",
        arguments: [
            ArgumentSpec("search", .string, "Velociraptor-style search: label:NAME, host:NAME, client:ID, a bare word, or all; '*' is a wildcard."),
            ArgumentSpec("client_id", .string, "Only this client."),
        ],
        columns: [
            ColumnSpec("client_id", .string), ColumnSpec("os_info", .dict, "system, hostname, fqdn, release"), ColumnSpec("first_seen_at", .int, "seconds"),
            ColumnSpec("last_seen_at", .int, "microseconds"), ColumnSpec("last_ip", .string), ColumnSpec("labels", .list),
            ColumnSpec("hostname", .string), ColumnSpec("fqdn", .string), ColumnSpec("os", .string), ColumnSpec("kernel", .string),
            ColumnSpec("ips", .list), ColumnSpec("enrolled_at", .timestamp), ColumnSpec("last_seen", .timestamp), ColumnSpec("revoked", .bool),
            ColumnSpec("connected", .bool),
        ],
        examples: ["SELECT client_id, os_info.hostname AS Host, labels FROM clients(search='label:web*')"]
    ) { ctx in
        let search = ctx.string("search"), only = ctx.string("client_id")
        if let local = LocalFleet.of(ctx) {
            let views = try runBlocking { try await local.server.clientViews() }
            let chosen = views.filter { view in only.map { view.client.clientId == $0 } ?? (search == nil || matches(view, search: search ?? "")) }
            return ArrayCursor(chosen.map(row))
        }
        let api = try ServerPlugins.api(ctx)
        if let only {
            let view = try runBlocking { try await api.get("/clients/\(ServerPlugins.segment(only))", as: ClientView.self) }
            return ArrayCursor([row(view)])
        }
        let views = try runBlocking { try await api.get("/clients", as: [ClientView].self) }
        return ArrayCursor(views.filter { search == nil || matches($0, search: search ?? "") }.map(row))
    }

    static let clientInfo = FunctionDeclaration(
        name: "client_info", summary: "One client's record, as a row of clients() shows it.",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client.")], returns: .dict,
        examples: ["SELECT client_info(client_id='C.0123456789abcdef').os_info.hostname AS Host FROM scope()"]
    ) { ctx in
        guard let id = ctx.string("client_id") else { return .null }
        if let local = LocalFleet.of(ctx) {
            let server = local.server
            let client = try? runBlocking { try await server.store.client(id) }
            return client.flatMap { $0 }.map { row(ClientView(client: $0, connected: server.connectedClientIds.contains(id))) } ?? .null
        }
        return ServerPlugins.call(ctx, "client_info") { api in row(try await api.get("/clients/\(ServerPlugins.segment(id))", as: ClientView.self)) }
    }

    static let clientMetadata = FunctionDeclaration(
        name: "client_metadata", summary: "The key/value notes kept on the server about one client.",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client.")], returns: .dict,
        examples: ["SELECT client_metadata(client_id='C.0123456789abcdef').owner AS Owner FROM scope()"]
    ) { ctx in
        guard let id = ctx.string("client_id") else { return .null }
        return ServerPlugins.call(ctx, "client_metadata") { api in
            ServerPlugins.notesValue(try await api.get("/clients/\(ServerPlugins.segment(id))/metadata", as: [String: String].self))
        }
    }

    static let clientSetMetadata = FunctionDeclaration(
        name: "client_set_metadata",
        summary: "Sets notes about a client (metadata=dict, or any other argument name=value); a NULL value removes a note. Returns all its notes.",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("metadata", .dict, "Notes to set.")],
        returns: .dict,
        examples: ["SELECT client_set_metadata(client_id='C.0123456789abcdef', owner='ops') FROM scope()"], strictArguments: false
    ) { ctx in
        guard let id = ctx.string("client_id") else { return .null }
        let change = MetadataChange(set: ServerPlugins.notes(ctx.value("metadata")).merging(extraNotes(ctx), uniquingKeysWith: { _, b in b }))
        return ServerPlugins.call(ctx, "client_set_metadata") { api in
            ServerPlugins.notesValue(try await api.post("/clients/\(ServerPlugins.segment(id))/metadata", body: change, as: [String: String].self))
        }
    }

    /// Arguments other than the declared ones, as notes.
    static func extraNotes(_ ctx: CallContext) -> [String: String?] {
        let declared: Set<String> = ["client_id", "metadata"]
        let pairs = ctx.allArguments().filter { !declared.contains($0.0) }
        return ServerPlugins.notes(.dict(Dict(pairs.map { ($0.0, $0.1.reduced()) })))
    }

    static let label = FunctionDeclaration(
        name: "label",
        summary: "Adds labels to a client (op='set', the default), removes them (op='remove') or checks it has them all (op='check'). Returns the client ID, or FALSE when a check fails.",
        arguments: [
            ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("labels", .stringList, required: true, "One label or a list."),
            ArgumentSpec("op", .string, "set, remove or check."),
        ],
        returns: .any,
        examples: ["SELECT label(client_id='C.0123456789abcdef', labels=['triage'], op='set') FROM scope()"]
    ) { ctx in
        guard let id = ctx.string("client_id"), let labels = ctx.strings("labels") else { return .null }
        let op = (ctx.string("op") ?? "set").lowercased()
        guard ["set", "remove", "check"].contains(op) else {
            ctx.log(.error, "label: op must be set, remove or check, not '\(op)'")
            return .null
        }
        return ServerPlugins.call(ctx, "label") { api in
            let path = "/clients/\(ServerPlugins.segment(id))"
            if op == "check" {
                let view = try await api.get(path, as: ClientView.self)
                return labels.allSatisfy(view.client.labels.contains) ? .string(id) : .bool(false)
            }
            let body = LabelRequest(add: op == "set" ? labels : [], remove: op == "remove" ? labels : [])
            _ = try await api.post(path + "/labels", body: body, as: [String].self)
            return .string(id)
        }
    }
}
