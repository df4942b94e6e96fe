import FleetCore
import Foundation
import VQL

/// Velociraptor's names for the monitoring tables in server VQL: get/add/rm_client_monitoring over
/// the client table and get/add/rm_server_monitoring over the server's. They call the API with the
/// analyst's key, so the roles hold (changing the server table takes an administrator) and every
/// change is audited. Inside the server, the get_ functions read the datastore; changes are refused
/// there (a detection must not rewrite what the server runs).
enum ServerMonitoringTables {
    static var functions: [FunctionDeclaration] { [getClient, addClient, rmClient, getServer, addServer, rmServer] }

    /// A table as the get_ functions show it: the artifact names, and each entry in full.
    static func value(_ table: [MonitoringEntry]) -> Value {
        .dict(Dict([
            ("artifacts", ServerPlugins.strings(table.map(\.artifact))),
            ("specs", .list(table.map { entry in
                .dict(Dict([
                    ("artifact", .string(entry.artifact)), ("label", .string(entry.label)),
                    ("parameters", ServerPlugins.notesValue(entry.parameters)), ("creator", .string(entry.creator)),
                    ("updated", .timestamp(Timestamp(seconds: entry.updatedAt))),
                ]))
            })),
        ]))
    }

    /// The table's value, from the datastore inside the server or the API outside it.
    static func read(_ ctx: CallContext, _ name: String, server: Bool) -> Value {
        if let local = LocalFleet.of(ctx) {
            let store = local.server.store
            do {
                return value(try runBlocking { server ? try await store.serverMonitoringTable() : try await store.monitoringTable() })
            } catch {
                ctx.log(.error, "\(name): \(error)")
                return .null
            }
        }
        return ServerPlugins.call(ctx, name) { api in value(try await server ? api.serverMonitoringTable() : api.monitoringTable()) }
    }

    /// Posts a change of a table through the API; NULL (logged) inside the server.
    static func change(_ ctx: CallContext, _ name: String, path: String, _ body: MonitoringRequest) -> Value {
        if LocalFleet.of(ctx) != nil {
            ctx.log(.error, "\(name): the monitoring tables are changed by analysts, not by the server's own queries")
            return .null
        }
        return ServerPlugins.call(ctx, name) { api in value(try await api.post(path, body: body, as: [MonitoringEntry].self)) }
    }

    static func parameters(_ ctx: CallContext) -> [String: String] {
        ServerPlugins.notes(ctx.value("parameters")).compactMapValues { $0 }
    }

    static let getClient = FunctionDeclaration(
        name: "get_client_monitoring", summary: "The client monitoring table: artifacts (names) and specs (artifact, label, parameters, creator, updated).",
        returns: .dict, examples: ["SELECT get_client_monitoring().artifacts AS Artifacts FROM scope()"]
    ) { ctx in read(ctx, "get_client_monitoring", server: false) }

    static let addClient = FunctionDeclaration(
        name: "add_client_monitoring",
        summary: "Adds a CLIENT_EVENT artifact (with parameters, for every client or one label) to the client monitoring table; agents start it at once. Returns the table.",
        arguments: [
            ArgumentSpec("artifact", .string, required: true, "The CLIENT_EVENT artifact."),
            ArgumentSpec("parameters", .any, "A dict of the artifact's parameters."),
            ArgumentSpec("label", .string, "Only clients with this label run it (default: every client)."),
        ],
        returns: .dict, examples: ["SELECT add_client_monitoring(artifact='Linux.Events.SSHLogin') AS Table FROM scope()"]
    ) { ctx in
        guard let artifact = ctx.string("artifact") else { return .null }
        return change(ctx, "add_client_monitoring", path: "/monitoring", MonitoringRequest(artifact: artifact, parameters: parameters(ctx), label: ctx.string("label")))
    }

    static let rmClient = FunctionDeclaration(
        name: "rm_client_monitoring", summary: "Removes an artifact (of every client, or of one label) from the client monitoring table; agents stop it. Returns the table.",
        arguments: [
            ArgumentSpec("artifact", .string, required: true, "The artifact to remove."),
            ArgumentSpec("label", .string, "The label of the entry (default: the entry for every client)."),
        ],
        returns: .dict, examples: ["SELECT rm_client_monitoring(artifact='Linux.Events.SSHLogin') AS Table FROM scope()"]
    ) { ctx in
        guard let artifact = ctx.string("artifact") else { return .null }
        return change(ctx, "rm_client_monitoring", path: "/monitoring/remove", MonitoringRequest(artifact: artifact, label: ctx.string("label")))
    }

    static let getServer = FunctionDeclaration(
        name: "get_server_monitoring", summary: "The server monitoring table (SERVER_EVENT artifacts the server runs): artifacts (names) and specs.",
        returns: .dict, examples: ["SELECT get_server_monitoring().artifacts AS Artifacts FROM scope()"]
    ) { ctx in read(ctx, "get_server_monitoring", server: true) }

    static let addServer = FunctionDeclaration(
        name: "add_server_monitoring",
        summary: "Adds a SERVER_EVENT artifact (with parameters) to the server monitoring table; the server starts it at once. Needs COLLECT_SERVER (administrators). Returns the table.",
        arguments: [
            ArgumentSpec("artifact", .string, required: true, "The SERVER_EVENT artifact."),
            ArgumentSpec("parameters", .any, "A dict of the artifact's parameters."),
        ],
        returns: .dict, examples: ["SELECT add_server_monitoring(artifact='Server.Detection.ExecFromTmp', parameters=dict(Severity='critical')) AS Table FROM scope()"]
    ) { ctx in
        guard let artifact = ctx.string("artifact") else { return .null }
        return change(ctx, "add_server_monitoring", path: "/server-monitoring", MonitoringRequest(artifact: artifact, parameters: parameters(ctx)))
    }

    static let rmServer = FunctionDeclaration(
        name: "rm_server_monitoring", summary: "Removes an artifact from the server monitoring table; the server stops it. Needs COLLECT_SERVER. Returns the table.",
        arguments: [ArgumentSpec("artifact", .string, required: true, "The artifact to remove.")],
        returns: .dict, examples: ["SELECT rm_server_monitoring(artifact='Server.Detection.ExecFromTmp') AS Table FROM scope()"]
    ) { ctx in
        guard let artifact = ctx.string("artifact") else { return .null }
        return change(ctx, "rm_server_monitoring", path: "/server-monitoring/remove", MonitoringRequest(artifact: artifact))
    }
}
