import Artifacts
import FleetCore
import Foundation
import Hummingbird

// The API calls behind server VQL that the CLI does not need: metadata notes of the server, of
// clients and of users; adding a client to a hunt and editing a hunt; deleting a hunt or a flow
// with what it stored; the artifact definitions and custom artifacts. Each checks the caller's
// role before it reads a body, and each change is audited.
extension FleetServer {
    /// Where custom artifacts set through the API are kept (loaded again at start).
    var customArtifactsDirectory: String { config.dataDir + "/artifacts" }

    func addServerVQLRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("clients/:id/metadata") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            let id = try context.parameters.require("id")
            guard try await store.client(id) != nil else { throw APIFailure(status: 404, message: "no client \(id)") }
            return try ok(try await store.metadata(id))
        }
        api.post("clients/:id/metadata") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_CLIENT")
            let id = try context.parameters.require("id")
            let (body, raw) = try await context.decode(MetadataChange.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard try await store.client(id) != nil else { throw APIFailure(status: 404, message: "no client \(id)") }
            let notes = try await store.setMetadata(id, try Self.checked(body))
            try await audit(caller, "set-client-metadata", id, raw)
            return try ok(notes)
        }
        api.get("server/metadata") { [self] _, context in
            try context.requireCaller().require("SERVER_ADMIN")
            return try ok(try await store.metadata(MetadataOwner.server))
        }
        api.post("server/metadata") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let (body, raw) = try await context.decode(MetadataChange.self, from: request, limit: config.limits.maxRequestBodyBytes)
            let notes = try await store.setMetadata(MetadataOwner.server, try Self.checked(body))
            try await audit(caller, "set-server-metadata", MetadataOwner.server, raw)
            return try ok(notes)
        }
        api.delete("hunts/:id") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let id = try context.parameters.require("id")
            guard try await store.hunt(id) != nil else { throw APIFailure(status: 404, message: "no hunt \(id)") }
            for flow in try await store.flows(clientId: nil, huntId: id) where flow.state == .running { sendCancel(flow) }
            let flows = try await store.deleteHunt(id)
            try await audit(caller, "delete-hunt", id, try json(["flows": flows.count]))
            return try ok(DeletionView(deleted: id, flows: flows))
        }
        api.delete("flows/:id") { [self] _, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let id = try context.parameters.require("id")
            guard let flow = try await store.flow(id) else { throw APIFailure(status: 404, message: "no flow \(id)") }
            if flow.state == .running { sendCancel(flow) }
            guard try await store.deleteFlow(id) else { throw APIFailure(status: 404, message: "no flow \(id)") }
            try await audit(caller, "delete-flow", id, try json(["client_id": flow.clientId]))
            return try ok(DeletionView(deleted: id, flows: [id]))
        }
        addArtifactRoutes(api)
        addUserInfoRoutes(api)
    }

    private func addArtifactRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("artifacts/definitions") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(repository.artifacts.map(ArtifactDefinitionView.init))
        }
        api.post("artifacts") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("ARTIFACT_WRITER")
            let (body, _) = try await context.decode(ArtifactSetBody.self, from: request, limit: config.limits.maxCollectionBodyBytes)
            let artifact = try setArtifact(body.definition)
            try await audit(caller, "set-artifact", artifact.name, try json(["bytes": body.definition.utf8.count]))
            return try ok(ArtifactDefinitionView(artifact))
        }
    }

    private func addUserInfoRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("users/:name") { [self] _, context in
            let name = try Self.selfOrAdmin(context)
            guard let user = try await store.user(named: name) else { throw APIFailure(status: 404, message: "no user \(name)") }
            return try ok(UserView(name: user.name, role: user.role, createdAt: user.createdAt, expiresAt: user.expiresAt))
        }
        api.get("users/:name/options") { [self] _, context in
            let name = try Self.selfOrAdmin(context)
            guard try await store.user(named: name) != nil else { throw APIFailure(status: 404, message: "no user \(name)") }
            return try ok(try await store.metadata("user:" + name))
        }
        api.post("users/:name/options") { [self] request, context in
            let name = try Self.selfOrAdmin(context)
            let caller = try context.requireCaller()
            let (body, raw) = try await context.decode(MetadataChange.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard try await store.user(named: name) != nil else { throw APIFailure(status: 404, message: "no user \(name)") }
            let notes = try await store.setMetadata("user:" + name, try Self.checked(body))
            try await audit(caller, "set-user-options", name, raw)
            return try ok(notes)
        }
    }

    /// The user a /users/NAME call is about, when the caller is that user or an administrator.
    private static func selfOrAdmin(_ context: FleetRequestContext) throws -> String {
        let caller = try context.requireCaller()
        let raw = try context.parameters.require("name")
        let name = raw.removingPercentEncoding ?? raw
        if caller.user.name != name { try caller.require("SERVER_ADMIN") }
        return name
    }

    /// Most notes one change may set, and longest name and value.
    static let maxMetadataNotes = 256, maxMetadataName = 256, maxMetadataValue = 64 * 1024

    /// The change, bounded: a few hundred notes of sane size, no NUL bytes.
    static func checked(_ change: MetadataChange) throws -> [String: String?] {
        guard change.set.count <= maxMetadataNotes else { throw APIFailure(status: 400, message: "at most \(maxMetadataNotes) notes per change") }
        for (name, value) in change.set {
            guard !name.isEmpty, name.utf8.count <= maxMetadataName, !name.utf8.contains(0) else {
                throw APIFailure(status: 400, message: "a metadata name is 1 to \(maxMetadataName) bytes without NUL")
            }
            if let value, value.utf8.count > maxMetadataValue || value.utf8.contains(0) {
                throw APIFailure(status: 400, message: "metadata \(name): a value is at most \(maxMetadataValue) bytes without NUL")
            }
        }
        return change.set
    }
}
