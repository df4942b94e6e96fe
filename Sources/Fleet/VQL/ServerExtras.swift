import FleetCore
import Foundation
import VQL

/// Velociraptor's server functions for the frontend's certificate, custom artifact removal,
/// hand-made client records and events sent into an event artifact's stream (which server
/// monitoring queries following it with `watch_monitoring()` see at once).
enum ServerExtras {
    static var functions: [FunctionDeclaration] { [serverFrontendCert, artifactDelete, clientCreate, sendEvent] }
    static var plugins: [PluginDeclaration] { [clientDelete] }

    static let clientDelete = PluginDeclaration(
        name: "client_delete",
        summary: "Deletes a client and everything stored about it (flows and their results, uploads records and logs, events, labels, notes); a dry run listing what would go unless really_do_it=TRUE. Needs SERVER_ADMIN. Alerts and the audit log stay; the agent is refused from then on.",
        arguments: [
            ArgumentSpec("client_id", .string, required: true, "The client."),
            ArgumentSpec("really_do_it", .bool, "Delete (otherwise only list)."),
        ],
        columns: [ColumnSpec("client_id", .string), ColumnSpec("type", .string, "flow, events, notes or client"), ColumnSpec("vfs_path", .string, "the flow ID, or what else"), ColumnSpec("count", .int), ColumnSpec("really_do_it", .bool)],
        examples: ["SELECT * FROM client_delete(client_id='C.0123456789abcdef')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        guard let id = ctx.string("client_id") else { throw ServerPluginError("client_delete: client_id is required") }
        let really = ctx.bool("really_do_it") ?? false
        let encoded = id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".-_"))) ?? id
        let view = try runBlocking { try await api.delete("/clients/\(encoded)", query: ["really_do_it": String(really)], as: ClientDeletionView.self) }
        func row(_ type: String, _ path: String, _ count: Int) -> Value {
            .dict(Dict([("client_id", .string(id)), ("type", .string(type)), ("vfs_path", .string(path)), ("count", .from(count)), ("really_do_it", .bool(view.reallyDoIt))]))
        }
        var rows = view.deletion.flows.map { row("flow", $0, 1) }
        if view.reallyDoIt {
            rows.append(row("events", "events", view.deletion.eventRows))
            rows.append(row("notes", "metadata", view.deletion.notes))
        }
        rows.append(row("client", id, 1))
        return ArrayCursor(rows)
    }

    static let serverFrontendCert = FunctionDeclaration(
        name: "server_frontend_cert", summary: "The frontend's TLS certificate (PEM).", returns: .string,
        examples: ["SELECT server_frontend_cert() =~ 'BEGIN CERTIFICATE' AS HasCert FROM scope()"]
    ) { ctx in
        ServerPlugins.call(ctx, "server_frontend_cert") { api in
            .string(try await api.get("/server/certificate", as: [String: String].self)["certificate"] ?? "")
        }
    }

    static let artifactDelete = FunctionDeclaration(
        name: "artifact_delete", summary: "Deletes a custom artifact from the server's repository (needs ARTIFACT_WRITER); Quarry's own cannot be deleted. Returns the name.",
        arguments: [ArgumentSpec("name", .string, required: true, "The artifact to delete.")], returns: .string,
        examples: ["SELECT artifact_delete(name='Custom.Hello') AS Deleted FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("name") else { return .null }
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? name
        return ServerPlugins.call(ctx, "artifact_delete") { api in
            .string(try await api.delete("/artifacts/\(encoded)", as: [String: String].self)["deleted"] ?? name)
        }
    }

    static let clientCreate = FunctionDeclaration(
        name: "client_create",
        summary: "Creates a client record (for evidence from a host with no agent); needs SERVER_ADMIN. Returns the client_id.",
        arguments: [
            ArgumentSpec("client_id", .string, "The ID (C. then letters and digits); a new one when absent."),
            ArgumentSpec("hostname", .string, "The host name."),
            ArgumentSpec("os", .string, "The OS (default offline)."),
            ArgumentSpec("labels", .stringList, "Labels."),
            ArgumentSpec("first_seen_at", .any, "When it was first seen (a time)."),
            ArgumentSpec("last_seen_at", .any, "When it was last seen (a time)."),
            ArgumentSpec("mac_addresses", .stringList, "Accepted for Velociraptor's queries; not kept."),
        ],
        returns: .string,
        examples: ["SELECT client_create(hostname='evidence-box', labels='offline') AS ClientId FROM scope()"]
    ) { ctx in
        func seconds(_ name: String) -> Double? {
            switch ctx.value(name) {
            case .timestamp(let t)?: return t.seconds
            case .int(let n)?: return Double(n)
            case .double(let d)?: return d
            default: return nil
            }
        }
        let body = ClientCreateBody(
            clientId: ctx.string("client_id"), hostname: ctx.string("hostname"), os: ctx.string("os"), labels: ctx.strings("labels"),
            firstSeenAt: seconds("first_seen_at"), lastSeenAt: seconds("last_seen_at"))
        return ServerPlugins.call(ctx, "client_create") { api in
            .string(try await api.post("/clients", body: body, as: ClientRecord.self).clientId)
        }
    }

    static let sendEvent = FunctionDeclaration(
        name: "send_event",
        summary: "Sends a row into an event artifact's stream on the server (stored with the events, seen at once by watch_monitoring()); needs SERVER_ADMIN. Returns TRUE when stored.",
        arguments: [
            ArgumentSpec("artifact", .string, required: true, "The event artifact."),
            ArgumentSpec("row", .any, required: true, "The row (a dict)."),
            ArgumentSpec("client_id", .string, "For a client event artifact: whose stream (default: the server's)."),
        ],
        returns: .bool,
        examples: ["SELECT send_event(artifact='Custom.Events', row=dict(Message='hello')) AS Sent FROM scope()"]
    ) { ctx in
        guard let artifact = ctx.string("artifact") else { return .null }
        guard case .dict(let row)? = ctx.value("row")?.materialized() else {
            ctx.log(.error, "send_event: row must be a dict")
            return .null
        }
        let body = SendEventBody(artifact: artifact, clientId: ctx.string("client_id"), row: JSONWriter.string(.dict(row)))
        return ServerPlugins.call(ctx, "send_event") { api in
            .bool(try await api.post("/events", body: body, as: [String: Bool].self)["sent"] ?? false)
        }
    }
}
