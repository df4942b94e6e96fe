import Artifacts
import FleetCore
import Foundation

// Changes to a hunt beyond start, stop and archive: one more client, and new description, expiry
// or label conditions. And custom artifacts set into the server's repository.
extension FleetServer {
    /// Schedules the hunt on one client in its current round (round 1 before it starts), whatever
    /// its conditions say; a client that already has a flow in that round keeps it.
    func addToHunt(_ huntId: String, _ body: HuntAddBody, caller: Caller, raw: Data) async throws -> FlowRecord {
        guard let hunt = try await store.hunt(huntId) else { throw APIFailure(status: 404, message: "no hunt \(huntId)") }
        guard hunt.state != .archived, hunt.state != .expired else { throw APIFailure(status: 409, message: "hunt \(huntId) is \(hunt.state.rawValue)") }
        try checkArtifacts(hunt.request.artifacts, caller: caller)
        guard let client = try await store.client(body.clientId) else { throw APIFailure(status: 404, message: "no client \(body.clientId)") }
        guard !client.revoked else { throw APIFailure(status: 409, message: "client \(body.clientId) is revoked") }
        let round = max(1, hunt.round)
        if let existing = try await store.flows(clientId: body.clientId, huntId: huntId).first(where: { $0.round == round }) { return existing }
        let flow = FlowRecord(
            flowId: Identifiers.flow(), clientId: body.clientId, huntId: huntId, round: round, request: hunt.request, creator: caller.user.name,
            createdAt: Date().timeIntervalSince1970)
        try await store.addFlow(flow)
        try await audit(caller, "add-to-hunt", huntId, raw)
        if hunt.state == .running { deliver(flow) }
        return flow
    }

    /// A new description, expiry or label conditions for a hunt.
    func updateHunt(_ huntId: String, _ body: HuntUpdateBody, caller: Caller, raw: Data) async throws -> HuntRecord {
        guard var hunt = try await store.hunt(huntId) else { throw APIFailure(status: 404, message: "no hunt \(huntId)") }
        if let description = body.description {
            guard description.utf8.count <= 64 * 1024, !description.utf8.contains(0) else { throw APIFailure(status: 400, message: "description too long or holds NUL") }
            hunt.description = description
        }
        if let expiresAt = body.expiresAt {
            guard expiresAt.isFinite, expiresAt > Date().timeIntervalSince1970 else { throw APIFailure(status: 400, message: "an expiry must be in the future") }
            hunt.expiresAt = expiresAt
        }
        var labels = hunt.conditions.labels.filter { !body.removeLabels.contains($0) }
        for label in body.addLabels where !label.isEmpty && !labels.contains(label) { labels.append(label) }
        hunt.conditions.labels = labels
        try await store.updateHunt(hunt)
        try await audit(caller, "update-hunt", huntId, raw)
        if hunt.state == .running { poke() }
        return hunt
    }

    /// Longest custom artifact name (it is also a file name).
    static let maxArtifactName = 200

    /// Adds or replaces a custom artifact: the YAML must load, its name must be plain, and it may not
    /// replace a built-in artifact or one from a --definitions folder. Kept under the data folder.
    func setArtifact(_ definition: String) throws -> Artifact {
        let artifact: Artifact
        do {
            artifact = try ArtifactLoader.load(text: definition, file: "api").0
        } catch {
            throw APIFailure(status: 400, message: "the artifact does not load: \(error)")
        }
        let name = artifact.name
        guard !name.isEmpty, name.utf8.count <= Self.maxArtifactName,
            name.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) || $0 == "." || $0 == "_" || $0 == "-" }),
            !name.hasPrefix(".")
        else { throw APIFailure(status: 400, message: "artifact name \(name): use letters, digits, '.', '_' and '-'") }
        let directory = customArtifactsDirectory
        let path = directory + "/" + name + ".yaml"
        return try artifactWrites.withLockedValue { _ in
            if let existing = repository.artifact(named: name), existing.origin != path {
                throw APIFailure(status: 409, message: "\(name) is defined by \(existing.origin.hasPrefix("builtin") ? "Quarry" : existing.origin); a custom artifact needs its own name")
            }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard FileManager.default.createFile(atPath: path + ".tmp", contents: Data(definition.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw APIFailure(status: 500, message: "cannot write \(name)")
            }
            guard rename(path + ".tmp", path) == 0 else { throw APIFailure(status: 500, message: "cannot write \(name)") }
            guard repository.add(text: definition, file: path), let stored = repository.artifact(named: name) else {
                throw APIFailure(status: 400, message: "the artifact does not load")
            }
            return stored
        }
    }
}
