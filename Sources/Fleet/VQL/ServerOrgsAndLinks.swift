import FleetCore
import Foundation
import VQL

/// Velociraptor's multi-tenant names on a single-tenant server, and links into the console.
/// Quarry has one organisation: `org()` describes it and `orgs()` lists it, so artifacts that
/// loop over orgs (most Server.* ones written since Velociraptor 0.7) run once, on it.
/// `link_to()` builds console URLs for reports, tickets and chat messages.
enum ServerOrgsAndLinks {
    static var plugins: [PluginDeclaration] { [orgs] }
    static var functions: [FunctionDeclaration] { [org, linkTo] }

    /// The one organisation, with Velociraptor's field names.
    static func root(_ ctx: CallContext) -> Value {
        .dict(Dict([("name", .string("<root>")), ("id", .string("root")), ("_client_id", .string("server"))]))
    }

    static let org = FunctionDeclaration(
        name: "org", summary: "The current organisation: Quarry has one, {name: '<root>', id: 'root'}.", returns: .dict,
        examples: ["SELECT org().id AS Org FROM scope()"]
    ) { ctx in root(ctx) }

    static let orgs = PluginDeclaration(
        name: "orgs", summary: "The server's organisations: one row, the root organisation (Quarry is single-tenant).",
        columns: [ColumnSpec("name", .string), ColumnSpec("id", .string)],
        examples: ["SELECT id, name FROM orgs()"]
    ) { ctx in ArrayCursor([root(ctx)]) }

    /// The console's address: the server's own URL inside the server, else the API's.
    static func base(_ ctx: CallContext) -> String? {
        if let local = LocalFleet.of(ctx) { return local.server.config.serverURL }
        return (try? ServerPlugins.api(ctx))?.config.serverURL
    }

    static let linkTo = FunctionDeclaration(
        name: "link_to",
        summary: "A link into the console: a Markdown link with a text (the id, or text=), or the bare URL with raw=TRUE. type= client, collection (a flow, shown on its client's page), hunt, event or alert; inferred from the ids given.",
        arguments: [
            ArgumentSpec("type", .string, "client, collection, hunt, event or alert (default: from the ids given)."),
            ArgumentSpec("client_id", .string, "The client."),
            ArgumentSpec("flow_id", .string, "The collection (on its client's page)."),
            ArgumentSpec("hunt_id", .string, "The hunt."),
            ArgumentSpec("artifact", .string, "The event artifact (type event)."),
            ArgumentSpec("text", .string, "The link's text."),
            ArgumentSpec("raw", .bool, "Only the URL, no Markdown."),
            ArgumentSpec("tab", .string, "Accepted for compatibility."),
            ArgumentSpec("upload", .any, "Accepted for compatibility (uploads have no console page)."),
            ArgumentSpec("notebook_id", .string, "Accepted for compatibility (no notebooks yet)."),
            ArgumentSpec("parameters", .any, "Accepted for compatibility."),
            ArgumentSpec("org", .string, "Accepted for compatibility (one organisation)."),
        ],
        returns: .string,
        examples: ["SELECT link_to(client_id='C.1234567890abcdef', raw=TRUE) AS URL FROM scope()"]
    ) { ctx in
        guard let base = base(ctx)?.trimmingCharacters(in: CharacterSet(charactersIn: "/")) else {
            ctx.log(.error, "link_to: no server address: run the query with --server (and --api-config)")
            return .null
        }
        let client = ctx.string("client_id"), flow = ctx.string("flow_id"), hunt = ctx.string("hunt_id")
        let type = ctx.string("type")?.lowercased() ?? (hunt != nil ? "hunt" : flow != nil ? "collection" : ctx.has("artifact") ? "event" : "client")
        func escaped(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".-_"))) ?? s }
        let path: String, label: String
        switch type {
        case "client", "collection", "flow":
            guard let client else {
                ctx.log(.error, "link_to: a \(type) link needs client_id")
                return .null
            }
            path = "/clients/" + escaped(client)
            label = type == "client" ? client : (flow ?? client)
        case "hunt":
            guard let hunt else {
                ctx.log(.error, "link_to: a hunt link needs hunt_id")
                return .null
            }
            path = "/hunts/" + escaped(hunt)
            label = hunt
        case "event":
            var query: [String] = []
            if let artifact = ctx.string("artifact") { query.append("artifact=" + escaped(artifact)) }
            if let client { query.append("client_id=" + escaped(client)) }
            path = "/events" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
            label = ctx.string("artifact") ?? "events"
        case "alert":
            path = "/alerts"
            label = "alerts"
        default:
            ctx.log(.error, "link_to: the console has no page of type '\(type)' (client, collection, hunt, event, alert)")
            return .null
        }
        let url = base + path
        if ctx.bool("raw") ?? false { return .string(url) }
        return .string("[\(ctx.string("text") ?? label)](\(url))")
    }
}
