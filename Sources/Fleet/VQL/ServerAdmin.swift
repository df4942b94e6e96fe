import Artifacts
import FleetCore
import Foundation
import VQL

/// Server VQL about the server itself: its artifacts, its users, its metadata notes, its tools.
enum ServerAdmin {
    static var plugins: [PluginDeclaration] { [artifactDefinitions, guiUsers, inventory] }
    static var functions: [FunctionDeclaration] { [artifactSet, whoami, user, userOptions, serverMetadata, serverSetMetadata, userCreate, userDelete, userGrant] }

    static let userGrant = FunctionDeclaration(
        name: "user_grant",
        summary: "Gives an analyst another role (reader, investigator or administrator; Quarry gives each user one); administrators. The user's key keeps working with the new role at once; the last administrator cannot be demoted. Returns the user.",
        arguments: [
            ArgumentSpec("user", .string, required: true, "The user."),
            ArgumentSpec("roles", .stringList, "The role."),
            ArgumentSpec("orgs", .stringList, "Accepted for Velociraptor's queries; Quarry has one organisation."),
            ArgumentSpec("policy", .any, "A dict with a roles list (as gui_users() shows), instead of roles."),
        ],
        returns: .dict,
        examples: ["SELECT user_grant(user='rita', roles='investigator').role AS Role FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("user") else { return .null }
        var roles = ctx.strings("roles") ?? []
        if roles.isEmpty, case .dict(let policy)? = ctx.value("policy"), case .list(let listed)? = policy["roles"] {
            roles = listed.compactMap(\.stringValue)
        }
        guard roles.count == 1, let role = Role(rawValue: roles[0].lowercased()) else {
            ctx.log(.error, "user_grant: give one role of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            return .null
        }
        return ServerPlugins.call(ctx, "user_grant") { api in
            userRow(try await api.post("/users/\(ServerPlugins.segment(name))/role", body: RoleChange(role: role), as: UserView.self))
        }
    }

    static func artifactRow(_ view: ArtifactDefinitionView) -> Value {
        .dict(Dict([
            ("name", .string(view.name)), ("description", .string(view.description)), ("author", .string(view.author)), ("type", .string(view.type.lowercased())),
            ("parameters", .list(view.parameters.map { .dict(Dict([("name", .string($0))])) })),
            ("sources", .list(view.sources.map { .dict(Dict([("name", .string($0))])) })),
            ("required_permissions", ServerPlugins.strings(view.requiredPermissions)), ("built_in", .bool(view.builtIn)),
            ("origin", .string(view.origin)), ("raw", .string(view.definition)),
        ]))
    }

    static let artifactDefinitions = PluginDeclaration(
        name: "artifact_definitions", summary: "The artifacts the server knows, with their YAML (raw); deps=TRUE adds the artifacts they call.",
        arguments: [ArgumentSpec("names", .stringList, "Only these artifacts."), ArgumentSpec("deps", .bool, "Also the artifacts these call or import.")],
        columns: [
            ColumnSpec("name", .string), ColumnSpec("description", .string), ColumnSpec("type", .string), ColumnSpec("parameters", .list),
            ColumnSpec("sources", .list), ColumnSpec("required_permissions", .list), ColumnSpec("built_in", .bool), ColumnSpec("raw", .string, "the YAML"),
        ],
        examples: ["SELECT name, type FROM artifact_definitions(names='Linux.Sys.Pslist')"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        let all = try runBlocking { try await api.get("/artifacts/definitions", as: [ArtifactDefinitionView].self) }
        guard let names = ctx.strings("names") else { return ArrayCursor(all.map(artifactRow)) }
        let byName = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var wanted: [String] = [], seen = Set<String>(), pending = Array(names.reversed())
        while let name = pending.popLast() {
            guard seen.insert(name).inserted, let view = byName[name] else { continue }
            wanted.append(name)
            if ctx.bool("deps") ?? false, let artifact = try? ArtifactLoader.load(text: view.definition, file: view.origin).0 {
                pending.append(contentsOf: ArtifactRepository.dependencies(of: artifact).reversed())
            }
        }
        return ArrayCursor(wanted.compactMap { byName[$0] }.map(artifactRow))
    }

    static let artifactSet = FunctionDeclaration(
        name: "artifact_set",
        summary: "Adds (or replaces) a custom artifact in the server's repository from its YAML; needs ARTIFACT_WRITER. Built-in names cannot be replaced. Returns the artifact.",
        arguments: [ArgumentSpec("definition", .string, required: true, "The artifact's YAML.")], returns: .dict,
        examples: ["SELECT artifact_set(definition='''name: Custom.Hello\nsources:\n  - query: SELECT 1 AS One FROM scope()\n''').name AS Name FROM scope()"]
    ) { ctx in
        guard let definition = ctx.string("definition") else { return .null }
        return ServerPlugins.call(ctx, "artifact_set") { api in
            artifactRow(try await api.post("/artifacts", body: ArtifactSetBody(definition: definition), as: ArtifactDefinitionView.self))
        }
    }

    static let whoami = FunctionDeclaration(
        name: "whoami", summary: "The name of the analyst the query runs as.", returns: .string,
        examples: ["SELECT whoami() AS Me FROM scope()"]
    ) { ctx in
        ServerPlugins.call(ctx, "whoami") { api in .string(try await api.get("/whoami", as: [String: String].self)["user"] ?? "") }
    }

    static func userRow(_ user: UserView) -> Value {
        .dict(Dict([
            ("name", .string(user.name)), ("roles", ServerPlugins.strings([user.role.rawValue])), ("role", .string(user.role.rawValue)),
            ("created", .timestamp(Timestamp(seconds: user.createdAt))), ("expires", user.expiresAt.map { .timestamp(Timestamp(seconds: $0)) } ?? .null),
        ]))
    }

    static let guiUsers = PluginDeclaration(
        name: "gui_users", summary: "The server's analysts and their roles (administrators).",
        columns: [ColumnSpec("name", .string), ColumnSpec("roles", .list), ColumnSpec("created", .timestamp), ColumnSpec("expires", .timestamp)],
        examples: ["SELECT name, roles FROM gui_users()"]
    ) { ctx in
        let api = try ServerPlugins.api(ctx)
        return ArrayCursor(try runBlocking { try await api.get("/users", as: [UserView].self) }.map(userRow))
    }

    static let user = FunctionDeclaration(
        name: "user", summary: "One analyst's record (yourself, or anyone for administrators).",
        arguments: [ArgumentSpec("user", .string, required: true, "The user name.")], returns: .dict,
        examples: ["SELECT user(user=whoami()).roles AS Roles FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("user") else { return .null }
        return ServerPlugins.call(ctx, "user") { api in userRow(try await api.get("/users/\(ServerPlugins.segment(name))", as: UserView.self)) }
    }

    static let userCreate = FunctionDeclaration(
        name: "user_create",
        summary: "Adds an analyst with one role (reader, investigator or administrator); administrators. Returns the user with the new API key, shown this once.",
        arguments: [
            ArgumentSpec("user", .string, required: true, "The new user's name."),
            ArgumentSpec("roles", .stringList, required: true, "The role (Quarry gives each user one)."),
        ],
        returns: .dict,
        examples: ["SELECT user_create(user='rita', roles='reader').name AS Name FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("user"), let roles = ctx.strings("roles") else { return .null }
        guard roles.count == 1, let role = Role(rawValue: roles[0].lowercased()) else {
            ctx.log(.error, "user_create: give one role of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            return .null
        }
        return ServerPlugins.call(ctx, "user_create") { api in
            let issued = try await api.post("/users", body: UserRequestBody(name: name, role: role), as: IssuedKey.self)
            return .dict(Dict([("name", .string(issued.name)), ("roles", ServerPlugins.strings([issued.role.rawValue])), ("api_key", .string(issued.apiKey))]))
        }
    }

    static let userDelete = FunctionDeclaration(
        name: "user_delete", summary: "Removes an analyst (their key stops working at once); administrators. Needs really_do_it=TRUE. Returns the name.",
        arguments: [ArgumentSpec("user", .string, required: true, "The user."), ArgumentSpec("really_do_it", .bool, "Remove; otherwise nothing happens.")],
        returns: .string,
        examples: ["SELECT user_delete(user='rita', really_do_it=TRUE) AS Removed FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("user") else { return .null }
        guard ctx.bool("really_do_it") ?? false else {
            ctx.log(.warning, "user_delete: \(name) kept (add really_do_it=TRUE to remove)")
            return .null
        }
        return ServerPlugins.call(ctx, "user_delete") { api in
            _ = try await api.delete("/users/\(ServerPlugins.segment(name))", as: [String: String].self)
            return .string(name)
        }
    }

    static let userOptions = FunctionDeclaration(
        name: "user_options", summary: "Reads an analyst's preferences, setting those given (theme, timezone, lang); yourself, or anyone for administrators.",
        arguments: [
            ArgumentSpec("user", .string, required: true, "The user name."), ArgumentSpec("theme", .string, "A display theme name."),
            ArgumentSpec("timezone", .string, "A time zone such as UTC."), ArgumentSpec("lang", .string, "A language code."),
        ],
        returns: .dict,
        examples: ["SELECT user_options(user=whoami(), timezone='UTC').timezone AS Zone FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("user") else { return .null }
        var change: [String: String?] = [:]
        for key in ["theme", "timezone", "lang"] { if let value = ctx.string(key) { change[key] = value } }
        let changes = change
        return ServerPlugins.call(ctx, "user_options") { api in
            let path = "/users/\(ServerPlugins.segment(name))/options"
            if changes.isEmpty { return ServerPlugins.notesValue(try await api.get(path, as: [String: String].self)) }
            return ServerPlugins.notesValue(try await api.post(path, body: MetadataChange(set: changes), as: [String: String].self))
        }
    }

    static let serverMetadata = FunctionDeclaration(
        name: "server_metadata", summary: "The server's key/value notes (administrators).", returns: .dict,
        examples: ["SELECT server_metadata() AS Notes FROM scope()"]
    ) { ctx in
        ServerPlugins.call(ctx, "server_metadata") { api in ServerPlugins.notesValue(try await api.get("/server/metadata", as: [String: String].self)) }
    }

    static let serverSetMetadata = FunctionDeclaration(
        name: "server_set_metadata",
        summary: "Sets the server's notes (metadata=dict, or any other argument name=value; NULL removes one); administrators. Returns all notes.",
        arguments: [ArgumentSpec("metadata", .dict, "Notes to set.")], returns: .dict,
        examples: ["SELECT server_set_metadata(contact='soc@example.com') FROM scope()"], strictArguments: false
    ) { ctx in
        let extra = ctx.allArguments().filter { $0.0 != "metadata" }.map { ($0.0, $0.1.reduced()) }
        let change = MetadataChange(set: ServerPlugins.notes(ctx.value("metadata")).merging(ServerPlugins.notes(.dict(Dict(extra))), uniquingKeysWith: { _, b in b }))
        return ServerPlugins.call(ctx, "server_set_metadata") { api in
            ServerPlugins.notesValue(try await api.post("/server/metadata", body: change, as: [String: String].self))
        }
    }

    static let inventory = PluginDeclaration(
        name: "inventory",
        summary: "Third-party tools the server would hand to artifacts. Quarry's artifacts bring no external tools, so this is empty.",
        columns: [ColumnSpec("name", .string), ColumnSpec("url", .string), ColumnSpec("hash", .string), ColumnSpec("filename", .string)],
        examples: ["SELECT name FROM inventory()"]
    ) { ctx in
        _ = try ServerPlugins.api(ctx)
        return ArrayCursor([])
    }
}
