import Artifacts
import FleetCore
import Foundation

/// POST /api/v1/clients/ID/metadata and /server/metadata: notes to set; a null value removes the note.
public struct MetadataChange: Codable, Sendable {
    public var set: [String: String?]
    public init(set: [String: String?]) { self.set = set }
}

/// POST /api/v1/hunts/ID/add: schedule the hunt on one more client, whatever its conditions say.
public struct HuntAddBody: Codable, Sendable {
    public var clientId: String
    /// Schedule it again even if the client already has a flow in this round (a fresh flow replaces it).
    public var relaunch: Bool
    public init(clientId: String, relaunch: Bool = false) {
        self.clientId = clientId
        self.relaunch = relaunch
    }
}

/// POST /api/v1/hunts/ID/update: change a hunt's description, expiry or label conditions.
public struct HuntUpdateBody: Codable, Sendable {
    public var description: String?
    /// New expiry, seconds since 1970.
    public var expiresAt: Double?
    public var addLabels: [String]
    public var removeLabels: [String]
    public init(description: String? = nil, expiresAt: Double? = nil, addLabels: [String] = [], removeLabels: [String] = []) {
        self.description = description
        self.expiresAt = expiresAt
        self.addLabels = addLabels
        self.removeLabels = removeLabels
    }
}

/// POST /api/v1/artifacts: a custom artifact's YAML for the server's repository.
public struct ArtifactSetBody: Codable, Sendable {
    public var definition: String
    public init(definition: String) { self.definition = definition }
}

/// An artifact as GET /api/v1/artifacts/definitions shows it: its facts and its YAML.
public struct ArtifactDefinitionView: Codable, Sendable {
    public var name: String
    public var type: String
    public var description: String
    public var author: String
    public var parameters: [String]
    public var requiredPermissions: [String]
    public var sources: [String]
    /// Where it came from: built in, a --definitions folder, or set through the API (custom).
    public var origin: String
    public var builtIn: Bool
    public var definition: String

    init(_ artifact: Artifact) {
        name = artifact.name
        type = artifact.type.rawValue
        description = artifact.description ?? ""
        author = artifact.author ?? ""
        parameters = artifact.parameters.map(\.name)
        requiredPermissions = artifact.requiredPermissions
        sources = artifact.sources.map { $0.name ?? "" }
        origin = artifact.origin
        builtIn = artifact.origin.hasPrefix("builtin")
        definition = artifact.text
    }
}

/// DELETE /api/v1/hunts/ID or /flows/ID: what was removed.
public struct DeletionView: Codable, Sendable {
    public var deleted: String
    public var flows: [String]
}
