import FleetCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import VQL

/// The files agents uploaded, back out of the server: the content of one upload of a flow
/// (streamed from the blob store, never read whole), and — for an encrypted local storage file
/// that an agent wrote with write_crypto_file() to the fleet's key and then uploaded — its rows,
/// decrypted here, where the key is. Each download is audited: the files are evidence.
extension FleetServer {
    static let downloadChunk = 256 << 10
    static let maxSlice = 16 << 20

    func addUploadRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("flows/:id/uploads/:sha256") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("READ_RESULTS")
            let (upload, path) = try await locateUpload(context)
            let handle: FileHandle
            do { handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) } catch {
                throw APIFailure(status: 404, message: "the content of \(upload.name) is no longer on the server")
            }
            let query = request.uri.queryParameters
            if let offsetText = query.string("offset") {
                // One slice (offset, length ≤ 16 MiB): how the CLI and the fs accessor read, in bounded memory.
                defer { try? handle.close() }
                guard let offset = UInt64(offsetText), let length = query.int("length"), length >= 0, length <= Self.maxSlice else {
                    throw APIFailure(status: 400, message: "offset= and length= (at most \(Self.maxSlice) bytes) must be numbers")
                }
                // Every reader of a slice is audited (whatever offset it starts at), once per ten
                // minutes per user and file, so reading a large file slice by slice is one entry.
                if downloadAudits.first(caller.user.name + "\u{0}" + upload.flowId + "\u{0}" + upload.sha256) {
                    try await audit(caller, "download-upload", upload.flowId, try JSONEncoder().encode(["name": upload.name, "sha256": upload.sha256]))
                }
                try handle.seek(toOffset: min(offset, UInt64(upload.size)))
                let data = try handle.read(upToCount: length) ?? Data()
                return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
            }
            try await audit(caller, "download-upload", upload.flowId, try JSONEncoder().encode(["name": upload.name, "sha256": upload.sha256]))
            return Self.uploadResponse(upload, handle)
        }
        api.get("flows/:id/uploads/:sha256/crypto-rows") { [self] _, context in
            let caller = try context.requireCaller()
            try caller.require("READ_RESULTS")
            let (upload, path) = try await locateUpload(context)
            try await audit(caller, "decrypt-upload", upload.flowId, try JSONEncoder().encode(["name": upload.name, "sha256": upload.sha256]))
            let (rows, messages) = try decryptStorage(path)
            var body = ByteBuffer()
            for row in rows {
                body.writeString(JSONWriter.string(row.materialized()))
                body.writeString("\n")
            }
            var headers: HTTPFields = [.contentType: "application/x-ndjson"]
            // What the reader had to say (a foreign segment, damage) goes back with the rows.
            if let name = HTTPField.Name("X-Quarry-Log"), !messages.isEmpty {
                headers[name] = messages.prefix(8).joined(separator: " | ").filter { $0.isASCII && !$0.isNewline }
            }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: body))
        }
    }

    /// The whole upload as an attachment, streamed in chunks.
    static func uploadResponse(_ upload: UploadRecord, _ handle: FileHandle) -> Response {
        var headers: HTTPFields = [.contentType: "application/octet-stream"]
        headers[.contentLength] = String(upload.size)
        headers[.contentDisposition] = "attachment; filename=\"\(Self.attachmentName(upload.name))\""
        if let name = HTTPField.Name("X-Quarry-SHA256") { headers[name] = upload.sha256 }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { try? handle.close() }
            while true {
                let chunk = try handle.read(upToCount: Self.downloadChunk) ?? Data()
                if chunk.isEmpty { break }
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        })
    }

    /// The console's download of an upload: the same file, for a signed-in analyst.
    func consoleUploadResponse(_ context: FleetRequestContext, caller: Caller) async throws -> Response {
        let (upload, path) = try await locateUpload(context)
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) } catch {
            throw APIFailure(status: 404, message: "the content of \(upload.name) is no longer on the server")
        }
        try await audit(caller, "download-upload", upload.flowId, try JSONEncoder().encode(["name": upload.name, "sha256": upload.sha256]))
        return Self.uploadResponse(upload, handle)
    }

    /// The upload named by the route's flow and SHA-256, and its blob's path; 404 when that flow
    /// has no such upload (an id alone never reaches another flow's file).
    private func locateUpload(_ context: FleetRequestContext) async throws -> (UploadRecord, String) {
        let id = try context.parameters.require("id")
        let sha256 = try context.parameters.require("sha256").lowercased()
        guard BlobStore.isSHA256(sha256) else { throw APIFailure(status: 400, message: "\(sha256): not a SHA-256") }
        guard try await store.flow(id) != nil else { throw APIFailure(status: 404, message: "no flow \(id)") }
        guard let upload = try await store.uploads(flowId: id).first(where: { $0.sha256 == sha256 }) else {
            throw APIFailure(status: 404, message: "flow \(id) has no upload with SHA-256 \(sha256)")
        }
        return (upload, blobs.path(sha256: sha256))
    }

    /// The rows of an encrypted storage file, opened with the server's key or the fleet CA's
    /// (agents write to the CA certificate their config carries), at most `maxRows`.
    func decryptStorage(_ path: String, maxRows: Int = 1_000_000) throws -> ([Value], [String]) {
        let registry = serverMonitors.makeRegistry(repository)
        guard registry.plugin("read_crypto_file") != nil else {
            throw APIFailure(status: 501, message: "this server was built without read_crypto_file")
        }
        var lastLog: [String] = []
        for key in [config.ca.privateKey, config.server.privateKey] {
            let logger = MemoryLogger()
            let session = Session(registry: registry, logger: logger, variables: ["F": .string(path), "K": .string(key)])
            let results = try session.run("SELECT * FROM read_crypto_file(filename=F, private_key=K) LIMIT \(maxRows)")
            let rows = (results.last ?? nil) ?? []
            lastLog = logger.messages
            if !rows.isEmpty || !lastLog.contains(where: { $0.contains("cannot be opened with this key") }) { return (rows, lastLog) }
        }
        return ([], lastLog)
    }

    /// A file name safe in a Content-Disposition header: the last path component, plain characters only.
    static func attachmentName(_ name: String) -> String {
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? "upload"
        let safe = last.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        return safe.isEmpty ? "upload" : String(safe.prefix(200))
    }
}

/// Says whether a key is new within a time window (bounded: the oldest keys are forgotten first).
final class RecentOnce: Sendable {
    private let seen = NIOLockedValueBox<[String: Date]>([:])
    let window: TimeInterval
    let capacity: Int

    init(window: TimeInterval, capacity: Int) {
        self.window = window
        self.capacity = capacity
    }

    /// True the first time `key` is seen in the window (and then records it).
    func first(_ key: String, now: Date = Date()) -> Bool {
        seen.withLockedValue { seen in
            if let last = seen[key], now.timeIntervalSince(last) < window { return false }
            if seen.count >= capacity {
                seen = seen.filter { now.timeIntervalSince($0.value) < window }
                if seen.count >= capacity, let oldest = seen.min(by: { $0.value < $1.value })?.key { seen[oldest] = nil }
            }
            seen[key] = now
            return true
        }
    }
}
