import Artifacts
import FleetCore
import Foundation
import Hummingbird

/// Routes behind a few of Velociraptor's server functions (`ServerExtras`): the frontend's
/// certificate, deleting a custom artifact, creating a client record, and sending a row to an
/// event artifact's stream.
extension FleetServer {
    func addServerExtrasRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("server/certificate") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(["certificate": config.server.certificate])
        }
        api.delete("artifacts/:name") { [self] _, context in
            let caller = try context.requireCaller()
            try caller.require("ARTIFACT_WRITER")
            let name = try context.parameters.require("name")
            try deleteArtifact(name)
            try await audit(caller, "delete-artifact", name, Data("{}".utf8))
            return try ok(["deleted": name])
        }
        api.post("clients") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let (body, raw) = try await context.decode(ClientCreateBody.self, from: request, limit: config.limits.maxRequestBodyBytes)
            let record = try await createClient(body)
            try await audit(caller, "create-client", record.clientId, raw)
            return try ok(record)
        }
        // Velociraptor's client_delete: a dry run unless really_do_it=true.
        api.delete("clients/:id") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let id = try context.parameters.require("id")
            guard request.uri.queryParameters.string("really_do_it") == "true" else {
                guard try await store.client(id) != nil else { throw APIFailure(status: 404, message: "no client \(id)") }
                let flows = try await store.flows(clientId: id, huntId: nil).map(\.flowId)
                return try ok(ClientDeletionView(clientId: id, reallyDoIt: false, deletion: ClientDeletion(flows: flows, eventRows: 0, notes: 0)))
            }
            guard let deletion = try await store.deleteClient(id) else { throw APIFailure(status: 404, message: "no client \(id)") }
            // Its certificate names a client that no longer exists: the server refuses it from now on.
            links.withLockedValue { $0[id] }?.close()
            try await audit(caller, "delete-client", id, try JSONEncoder().encode(deletion))
            return try ok(ClientDeletionView(clientId: id, reallyDoIt: true, deletion: deletion))
        }
        api.post("events") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let (body, _) = try await context.decode(SendEventBody.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard !body.artifact.isEmpty, body.artifact.utf8.count <= Self.maxArtifactName else { throw APIFailure(status: 400, message: "an artifact name is needed") }
            guard let row = try? JSONSerialization.jsonObject(with: Data(body.row.utf8)), row is [String: Any] else {
                throw APIFailure(status: 400, message: "row must be a JSON object")
            }
            if let clientId = body.clientId, clientId != EventStream.serverClientId {
                guard try await store.client(clientId) != nil else { throw APIFailure(status: 404, message: "no client \(clientId)") }
            }
            try await storeSentEvent(artifact: body.artifact, clientId: body.clientId ?? EventStream.serverClientId, row: body.row)
            return try ok(["sent": true])
        }
    }

    /// Removes a custom artifact (one `artifact_set` or the API wrote); Quarry's own and those
    /// loaded from `--definitions` folders stay.
    func deleteArtifact(_ name: String) throws {
        let path = customArtifactsDirectory + "/" + name + ".yaml"
        try artifactWrites.withLockedValue { _ in
            guard let artifact = repository.artifact(named: name) else { throw APIFailure(status: 404, message: "no artifact \(name)") }
            guard artifact.origin == path else {
                throw APIFailure(status: 409, message: "\(name) is defined by \(artifact.origin.hasPrefix("builtin") ? "Quarry" : artifact.origin): only custom artifacts can be deleted")
            }
            guard unlink(path) == 0 || errno == ENOENT else { throw APIFailure(status: 500, message: "cannot delete \(name)") }
            repository.remove(named: name)
        }
    }

    func createClient(_ body: ClientCreateBody) async throws -> ClientRecord {
        let now = Date().timeIntervalSince1970
        let clientId = body.clientId ?? Identifiers.client()
        guard clientId.hasPrefix("C."), clientId.utf8.count <= 64,
              clientId.dropFirst(2).unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil) })
        else { throw APIFailure(status: 400, message: "client_id \(clientId): expected C. then letters and digits") }
        guard try await store.client(clientId) == nil else { throw APIFailure(status: 409, message: "client \(clientId) exists") }
        var record = ClientRecord(clientId: clientId, enrolledAt: body.firstSeenAt ?? now)
        record.lastSeen = body.lastSeenAt ?? record.enrolledAt
        record.hostname = String((body.hostname ?? "").prefix(255))
        record.os = String((body.os ?? "offline").prefix(64))
        record.labels = Array((body.labels ?? []).prefix(64)).map { String($0.prefix(128)) }
        try await store.addClient(record)
        return record
    }

    /// A row sent by `send_event`, stored and handed to live readers like the server's own events.
    func storeSentEvent(artifact: String, clientId: String, row: String) async throws {
        let now = Date().timeIntervalSince1970
        let batch = EventBatch(clientId: clientId, artifact: artifact, source: "", seq: serverMonitors.nextSeq(now: now), rows: [row], receivedAt: now)
        let outcome = try await store.ingestEvents([batch]).first
        guard case .stored? = outcome else { throw APIFailure(status: 500, message: "the event was not stored: \(String(describing: outcome))") }
        metrics.rowsIngested.increment()
        eventReaders.publish([EventRow(clientId: clientId, artifact: artifact, source: "", time: now, seq: batch.seq, index: 0, json: row)])
    }
}

/// `POST /api/v1/clients`: a client record made by hand (Velociraptor's `client_create`).
public struct ClientCreateBody: Codable, Sendable {
    public var clientId: String?
    public var hostname: String?
    public var os: String?
    public var labels: [String]?
    public var firstSeenAt: Double?
    public var lastSeenAt: Double?
    public init(clientId: String? = nil, hostname: String? = nil, os: String? = nil, labels: [String]? = nil, firstSeenAt: Double? = nil, lastSeenAt: Double? = nil) {
        self.clientId = clientId
        self.hostname = hostname
        self.os = os
        self.labels = labels
        self.firstSeenAt = firstSeenAt
        self.lastSeenAt = lastSeenAt
    }
}

/// What `DELETE /api/v1/clients/ID` removed (or, in a dry run, would remove: the flows).
public struct ClientDeletionView: Codable, Sendable {
    public var clientId: String
    public var reallyDoIt: Bool
    public var deletion: ClientDeletion
}

/// `POST /api/v1/events`: one row for an event artifact's stream (`send_event`); `row` is JSON text.
public struct SendEventBody: Codable, Sendable {
    public var artifact: String
    public var clientId: String?
    public var row: String
    public init(artifact: String, clientId: String?, row: String) {
        self.artifact = artifact
        self.clientId = clientId
        self.row = row
    }
}
