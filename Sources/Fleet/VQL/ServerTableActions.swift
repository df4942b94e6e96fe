import FleetCore
import Foundation
import VQL

/// Server VQL that changes state through the API with the analyst's key (so roles and the audit
/// log hold): whole monitoring tables at once, an analyst's console password, and imports of
/// collection containers.
enum ServerTableActions {
    static var functions: [FunctionDeclaration] { [setClientMonitoring, setServerMonitoring, passwd, importCollection] }

    /// The entries a `set_*_monitoring(value=)` asks for: Velociraptor's shape (`artifacts` names,
    /// `specs` with `parameters.env` [{key, value}]) or the one `get_*_monitoring()` returns
    /// (`specs` with a `parameters` dict and a `label`).
    static func entries(_ value: Value) -> [MonitoringRequest]? {
        guard case .dict(let table) = value.reduced().materialized() else { return nil }
        var requests: [String: MonitoringRequest] = [:]
        var order: [String] = []
        func add(_ request: MonitoringRequest) {
            let key = request.artifact + "\u{0}" + (request.label ?? "")
            if requests[key] == nil { order.append(key) }
            requests[key] = request
        }
        for name in table["artifacts"]?.listElements?.compactMap(\.stringValue) ?? [] { add(MonitoringRequest(artifact: name)) }
        for spec in table["specs"]?.listElements ?? [] {
            guard let artifact = spec.member("artifact").stringValue else { continue }
            var parameters: [String: String] = [:]
            let given = spec.member("parameters")
            if let env = given.member("env").listElements {
                for pair in env { if let key = pair.member("key").stringValue { parameters[key] = pair.member("value").stringValue ?? "" } }
            } else {
                parameters = ServerPlugins.notes(given).compactMapValues { $0 }
            }
            let label = spec.member("label").stringValue.flatMap { $0.isEmpty ? nil : $0 }
            add(MonitoringRequest(artifact: artifact, parameters: parameters, label: label))
        }
        return order.compactMap { requests[$0] }
    }

    /// Makes a table equal to `value`: entries not in it are removed, the others added or updated.
    static func set(_ ctx: CallContext, _ name: String, server: Bool) -> Value {
        if LocalFleet.of(ctx) != nil {
            ctx.log(.error, "\(name): the monitoring tables are changed by analysts, not by the server's own queries")
            return .null
        }
        guard let wanted = entries(ctx.value("value") ?? .null) else {
            ctx.log(.error, "\(name): value must be a dict with artifacts and/or specs (as get_\(server ? "server" : "client")_monitoring() returns)")
            return .null
        }
        let path = server ? "/server-monitoring" : "/monitoring"
        return ServerPlugins.call(ctx, name) { api in
            let current = try await server ? api.serverMonitoringTable() : api.monitoringTable()
            let kept = Set(wanted.map { $0.artifact + "\u{0}" + (server ? "" : $0.label ?? "") })
            for entry in current where !kept.contains(entry.artifact + "\u{0}" + (server ? "" : entry.label)) {
                _ = try await api.post(path + "/remove", body: MonitoringRequest(artifact: entry.artifact, label: server || entry.label.isEmpty ? nil : entry.label),
                                       as: [MonitoringEntry].self)
            }
            var table = current
            for request in wanted {
                table = try await api.post(path, body: server ? MonitoringRequest(artifact: request.artifact, parameters: request.parameters) : request,
                                           as: [MonitoringEntry].self)
            }
            return ServerMonitoringTables.value(wanted.isEmpty ? try await server ? api.serverMonitoringTable() : api.monitoringTable() : table)
        }
    }

    static let setClientMonitoring = FunctionDeclaration(
        name: "set_client_monitoring",
        summary: "Replaces the client monitoring table with value= (artifacts and specs, as get_client_monitoring() returns or in Velociraptor's shape); agents follow at once. Returns the table.",
        arguments: [ArgumentSpec("value", .any, required: true, "The table: {artifacts: [...], specs: [{artifact, parameters, label}]}.")],
        returns: .dict,
        examples: ["SELECT set_client_monitoring(value=get_client_monitoring()).artifacts AS Artifacts FROM scope()"]
    ) { ctx in set(ctx, "set_client_monitoring", server: false) }

    static let setServerMonitoring = FunctionDeclaration(
        name: "set_server_monitoring",
        summary: "Replaces the server monitoring table with value= (artifacts and specs); the server starts and stops rules at once. Needs COLLECT_SERVER. Returns the table.",
        arguments: [ArgumentSpec("value", .any, required: true, "The table: {artifacts: [...], specs: [{artifact, parameters}]}.")],
        returns: .dict,
        examples: ["SELECT set_server_monitoring(value=get_server_monitoring()).artifacts AS Artifacts FROM scope()"]
    ) { ctx in set(ctx, "set_server_monitoring", server: true) }

    static let passwd = FunctionDeclaration(
        name: "passwd",
        summary: "Sets an analyst's console password (your own, or another's as an administrator); their console sessions end. Audited.",
        arguments: [
            ArgumentSpec("user", .string, "The analyst (default: you)."),
            ArgumentSpec("password", .string, required: true, "The new password (at least 8 characters)."),
        ],
        returns: .dict,
        examples: ["SELECT passwd(password='a long passphrase') AS Changed FROM scope()"]
    ) { ctx in
        guard let password = ctx.string("password"), password.count >= 8 else {
            ctx.log(.error, "passwd: the password needs at least 8 characters")
            return .null
        }
        let named = ctx.string("user")
        return ServerPlugins.call(ctx, "passwd") { api in
            var user = named ?? ""
            if named == nil { user = try await api.get("/whoami", as: [String: String].self)["user"] ?? "" }
            let answer = try await api.post("/users/\(ServerPlugins.segment(user))/password", body: PasswordBody(password: password), as: [String: String].self)
            return .dict(Dict(answer.sorted { $0.key < $1.key }.map { ($0.key, Value.string($0.value)) }))
        }
    }

    static let importCollection = FunctionDeclaration(
        name: "import_collection",
        summary: "Imports a collection container (Quarry's or Velociraptor's offline collector zip) as a finished flow: of client_id, else the client with its host name, else a new client labelled offline. Returns the flow.",
        arguments: [
            ArgumentSpec("client_id", .string, "The client to import to ('auto' or empty: match by host name)."),
            ArgumentSpec("hostname", .string, "The host name, when the container does not say."),
            ArgumentSpec("filename", .string, required: true, "The container (on the machine running the query)."),
            ArgumentSpec("accessor", .string, "Only file."),
            ArgumentSpec("import_type", .string, "Only offline_collector (hunt exports are not imported)."),
        ],
        returns: .dict,
        examples: ["SELECT import_collection(filename='/srv/Collection-web1-20261201T101500Z.zip').flow_id AS Flow FROM scope()"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let path = ctx.string("filename") else { return .null }
        if let accessor = ctx.string("accessor"), accessor != "file", accessor != "auto" {
            ctx.log(.error, "import_collection: only the file accessor is supported")
            return .null
        }
        if let type = ctx.string("import_type"), type != "offline_collector", !type.isEmpty {
            ctx.log(.error, "import_collection: import_type '\(type)' is not supported (offline_collector)")
            return .null
        }
        let client = ctx.string("client_id").flatMap { $0.isEmpty || $0 == "auto" ? nil : $0 }
        let hostname = ctx.string("hostname")
        @Sendable func row(_ outcome: ImportOutcome) -> Value {
            .dict(Dict([
                ("client_id", .string(outcome.clientId)), ("session_id", .string(outcome.flowId)), ("flow_id", .string(outcome.flowId)),
                ("hostname", .string(outcome.hostname)), ("created_client", .bool(outcome.createdClient)),
                ("total_collected_rows", .from(outcome.rows)), ("total_uploaded_files", .from(outcome.uploads)),
                ("artifacts_with_results", ServerPlugins.strings(outcome.sources.filter { $0.rows > 0 }.map(\.artifact))),
            ]))
        }
        if let local = LocalFleet.of(ctx) {
            do {
                return row(try runBlocking { try await local.server.importOnThread(path: path, hostname: hostname, clientId: client, creator: "server") })
            } catch {
                ctx.log(.error, "import_collection: \(error)")
                return .null
            }
        }
        return ServerPlugins.call(ctx, "import_collection") { api in
            row(try await api.streamCollection(path: path, hostname: hostname, clientId: client))
        }
    }
}
