import Artifacts
import Crypto
import FleetCore
import Foundation
import Hummingbird
import PrivateFiles

/// What an import made of a container.
public struct ImportOutcome: Codable, Sendable {
    public var clientId: String
    public var hostname: String
    /// True when no client had that host name and one was created (labelled `offline`).
    public var createdClient: Bool
    public var flowId: String
    public var rows: Int
    public var sources: [SourceCount]
    public var uploads: Int
}

/// `POST /api/v1/collections/import`: a collection container carried by hand (an offline
/// collector's output, Quarry's or Velociraptor's, clear) becomes a finished flow of a client, so
/// hunts' tools — `quarry results`, server VQL, the console — read it like any other. The body is
/// streamed to a private file within `max_import_bytes`; the client is the one named, else the one
/// with the container's host name, else a new one labelled `offline`. Rows go through the same
/// ingestion as agents' batches, uploaded files into the blob store under their SHA-256.
extension FleetServer {
    /// Rows per stored batch.
    static let importBatchRows = 1_000
    static let importBatchBytes = 1 << 20
    /// How many times its own size a container may inflate to (rows and files), at least 256 MiB.
    static let importInflation: Int64 = 20

    func addImportRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.post("collections/import") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_CLIENT")
            let query = request.uri.queryParameters
            let path = try await receiveImport(request, context)
            defer { unlink(path) }
            let hostname = query.string("hostname"), clientId = query.string("client_id")
            let outcome = try await importOnThread(path: path, hostname: hostname, clientId: clientId, creator: caller.user.name)
            let details = try JSONEncoder().encode(["hostname": outcome.hostname, "client_id": outcome.clientId, "rows": String(outcome.rows)])
            try await audit(caller, "import-collection", outcome.flowId, details)
            return try ok(outcome)
        }
    }

    /// Runs the import on a thread of its own: reading the zip blocks, the task pool must not.
    func importOnThread(path: String, hostname: String?, clientId: String?, creator: String) async throws -> ImportOutcome {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try self.importNow(path: path, hostname: hostname, clientId: clientId, creator: creator) })
            }.start()
        }
    }

    /// The request body in a private file under the data folder, refused past the cap.
    func receiveImport(_ request: Request, _ context: FleetRequestContext) async throws -> String {
        let limit = config.limits.maxImportBytes
        if let declared = request.headers[.contentLength].flatMap({ Int64($0) }), declared > limit {
            throw APIFailure(status: 413, message: "the container's \(declared) bytes are over the import limit of \(limit) (limits.max_import_bytes)")
        }
        context.bodyRead.set()
        let folder = config.dataDir + "/imports"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = folder + "/" + Identifiers.hex(16) + ".zip"
        let fd = try PrivateFile.create(path)
        var kept = false
        defer {
            close(fd)
            if !kept { unlink(path) }
        }
        var total: Int64 = 0
        for try await buffer in request.body {
            total += Int64(buffer.readableBytes)
            guard total <= limit else { throw APIFailure(status: 413, message: "the container is over the import limit of \(limit) bytes (limits.max_import_bytes)") }
            try PrivateFile.writeAll(fd, buffer.readableBytesView, path: path)
        }
        kept = true
        return path
    }

    /// The import itself, on a thread that may block.
    func importNow(path: String, hostname: String?, clientId: String?, creator: String) throws -> ImportOutcome {
        let reader: ZipReader
        do { reader = try ZipReader(path: path) } catch { throw APIFailure(status: 422, message: "not a collection container: \(error)") }
        if let data = reader.member("data.zip"), (try? reader.rawLocation(data).encrypted) == true {
            throw APIFailure(status: 422, message: "the collection is encrypted: decrypt it first (quarry collection import --key or --password-stdin does it on your side)")
        }
        let sources = ContainerLayout.sources(reader)
        // What the container may inflate to: a zip bomb is refused, not stored.
        let containerBytes = Int64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0)
        let budget = max(Int64(256 << 20), containerBytes * Self.importInflation)
        var inflated: Int64 = 0
        func spend(_ bytes: Int) throws {
            inflated += Int64(bytes)
            guard inflated <= budget else {
                throw APIFailure(status: 422, message: "the container inflates past \(budget) bytes (\(Self.importInflation)× its size): refused")
            }
        }
        // First by what the directory declares (cheap), then as the bytes really come (a lying directory).
        let declared = reader.members.reduce(Int64(0)) { $0 + Int64($1.size) }
        guard declared <= budget else {
            throw APIFailure(status: 422, message: "the container inflates past \(budget) bytes (\(Self.importInflation)× its size): refused")
        }
        guard let host = hostname ?? Self.hostname(in: reader, sources: sources), !host.isEmpty else {
            throw APIFailure(status: 422, message: "the container does not say which host it came from: give hostname=")
        }
        let store = self.store
        let now = Date().timeIntervalSince1970
        let hostID = Self.hostID(in: reader)
        var created = false
        let client: ClientRecord
        if let clientId {
            guard let named = try runBlocking({ try await store.client(clientId) }) else { throw APIFailure(status: 404, message: "no client \(clientId)") }
            client = named
        } else if let match = try matchingClient(host: host, hostID: hostID) {
            client = match
        } else {
            var record = ClientRecord(clientId: Identifiers.client(), enrolledAt: now)
            record.hostname = host
            record.labels = ["offline"]
            let newClient = record
            try runBlocking { try await store.addClient(newClient) }
            client = newClient
            created = true
        }
        if let hostID {
            // The machine the container came from, so the next import of it finds this client.
            let owner = client.clientId
            if try runBlocking({ try await store.metadata(owner)[Self.hostIDNote] }) == nil {
                _ = try runBlocking { try await store.setMetadata(owner, [Self.hostIDNote: hostID]) }
            }
        }
        let artifacts = sources.map { Self.split($0.label).artifact }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let flow = FlowRecord(
            flowId: Identifiers.flow(), clientId: client.clientId, request: CollectionRequest(artifacts: artifacts), state: .running,
            creator: creator, createdAt: now)
        try runBlocking { try await store.addFlow(flow) }
        var seq = 0
        func ingest(_ payload: IngestBatch.Payload) throws {
            seq += 1
            let batch = IngestBatch(clientId: client.clientId, flowId: flow.flowId, seq: seq, payload: payload)
            if case .rejected(let why) = try runBlocking({ try await store.ingest(batch) }) {
                throw APIFailure(status: 422, message: "the container holds data the server refuses: \(why)")
            }
        }
        var counts: [SourceCount] = []
        var total = 0
        for source in sources {
            let (artifact, name) = Self.split(source.label)
            var rows: [String] = [], bytes = 0, count = 0
            var failure: (any Error)?
            try ContainerLayout.forEachRow(reader, source) { row in
                do { try spend(row.count) } catch { failure = error; return false }
                rows.append(String(decoding: row, as: UTF8.self))
                bytes += row.count
                count += 1
                if rows.count >= Self.importBatchRows || bytes >= Self.importBatchBytes {
                    do { try ingest(.rows(artifact: artifact, source: name, rows: rows)) } catch { failure = error; return false }
                    rows = []
                    bytes = 0
                }
                return true
            }
            if let failure { throw failure }
            if !rows.isEmpty { try ingest(.rows(artifact: artifact, source: name, rows: rows)) }
            counts.append(SourceCount(artifact: artifact, source: name, rows: count))
            total += count
        }
        var uploads = 0
        for member in reader.members where member.name.hasPrefix("uploads/") && !member.name.hasSuffix(".idx") && !member.name.hasSuffix("/") {
            try spend(member.size)
            try ingest(.upload(try fileUpload(reader, member, flowId: flow.flowId)))
            uploads += 1
        }
        if let log = try? reader.read("log.json", limit: 16 << 20) {
            let lines = String(decoding: log, as: UTF8.self).split(separator: "\n").prefix(100_000).map(String.init)
            if !lines.isEmpty { try ingest(.log(lines)) }
        }
        try runBlocking { try await store.updateFlow(flow.flowId, state: .finished, startedAt: now, endedAt: Date().timeIntervalSince1970, errors: []) }
        poke()
        return ImportOutcome(clientId: client.clientId, hostname: host, createdClient: created, flowId: flow.flowId, rows: total, sources: counts, uploads: uploads)
    }

    /// Copies an uploaded file of the container into the blob store, digesting it on the way.
    func fileUpload(_ reader: ZipReader, _ member: ZipReader.Member, flowId: String) throws -> UploadRecord {
        let staging = blobs.root + "/staging/import-" + Identifiers.hex(8)
        let fd = try PrivateFile.create(staging)
        var filed = false
        defer {
            close(fd)
            if !filed { unlink(staging) }
        }
        var sha = SHA256(), md5 = Insecure.MD5()
        var size: Int64 = 0
        let stream = try reader.open(member)
        while let chunk = try stream.read(max: 1 << 20) {
            sha.update(data: chunk)
            md5.update(data: chunk)
            size += Int64(chunk.count)
            // The directory's size was counted against the budget: not a byte more.
            guard size <= Int64(member.size) else { throw APIFailure(status: 422, message: "\(member.name) holds more than its declared \(member.size) bytes") }
            try PrivateFile.writeAll(fd, chunk, path: staging)
        }
        let digest = sha.finalize().map { String(format: "%02x", $0) }.joined()
        let target = blobs.path(sha256: digest)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard fsync(fd) == 0, rename(staging, target) == 0 else { throw APIFailure(status: 500, message: "cannot file an upload: \(String(cString: strerror(errno)))") }
        filed = true
        let name = String(member.name.dropFirst("uploads/".count))
        return UploadRecord(flowId: flowId, name: String(name.utf8.prefix(IngestBatch.maxNameBytes)) ?? name, size: size, sha256: digest,
                            md5: md5.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// "Artifact/Source" apart (the source is "" for an artifact's only, unnamed source).
    static func split(_ label: String) -> (artifact: String, source: String) {
        guard let slash = label.firstIndex(of: "/") else { return (label, "") }
        return (String(label[..<slash]), String(label[label.index(after: slash)...]))
    }

    /// The host a container came from: client_info.json, else the Generic.Client.Info rows.
    /// The client metadata note holding the machine ID that imports matched or created it by.
    static let hostIDNote = "host_id"

    /// The machine ID the container names (`HostID` in client_info.json: /etc/machine-id), if any.
    static func hostID(in reader: ZipReader) -> String? {
        guard let info = try? reader.read("client_info.json", limit: 1 << 20),
              let object = try? JSONSerialization.jsonObject(with: info) as? [String: Any],
              let id = object["HostID"] as? String else { return nil }
        let trimmed = id.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty || trimmed.count > 128 ? nil : trimmed
    }

    /// The client a container belongs to: by host name (or FQDN), and when the container names its
    /// machine ID, never a client noted with a different one — two hosts with one name stay two
    /// clients — preferring the one noted with the same. Among equals, the last seen.
    func matchingClient(host: String, hostID: String?) throws -> ClientRecord? {
        let store = self.store
        let named = try runBlocking { try await store.clients() }
            .filter { $0.hostname.caseInsensitiveCompare(host) == .orderedSame || $0.fqdn.caseInsensitiveCompare(host) == .orderedSame }
        guard let hostID else { return named.max { $0.lastSeen < $1.lastSeen } }
        var same: [ClientRecord] = [], unknown: [ClientRecord] = []
        for candidate in named {
            let owner = candidate.clientId
            switch try runBlocking({ try await store.metadata(owner)[Self.hostIDNote] }) {
            case hostID?: same.append(candidate)
            case nil: unknown.append(candidate)
            default: continue
            }
        }
        return (same.isEmpty ? unknown : same).max { $0.lastSeen < $1.lastSeen }
    }

    static func hostname(in reader: ZipReader, sources: [ContainerLayout.Source]) -> String? {
        if let info = try? reader.read("client_info.json", limit: 1 << 20),
           let object = try? JSONSerialization.jsonObject(with: info) as? [String: Any] {
            for key in ["Hostname", "hostname", "Fqdn"] { if let name = object[key] as? String, !name.isEmpty { return name } }
        }
        for source in sources where source.label.hasPrefix("Generic.Client.Info") {
            var found: String?
            try? ContainerLayout.forEachRow(reader, source) { row in
                if let object = try? JSONSerialization.jsonObject(with: Data(row)) as? [String: Any], let name = object["Hostname"] as? String, !name.isEmpty {
                    found = name
                    return false
                }
                return true
            }
            if let found { return found }
        }
        return nil
    }
}
