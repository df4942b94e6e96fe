import Crypto
import FleetCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import PrivateFiles

/// A one-time upload token, as the analyst receives it.
public struct UploadTokenGrant: Codable, Sendable {
    public var token: String
    /// Seconds since 1970 after which the token is refused.
    public var expires: Double
}

/// How much of a collector's upload the server holds.
public struct UploadProgressReport: Codable, Sendable {
    public var received: Int64
}

/// What the server keeps of a token: only its SHA-256 (as the metadata key) and this.
struct UploadTokenRecord: Codable {
    var creator: String
    var created: Double
    var expires: Double
    /// The client the container belongs to, when the analyst who asked for the token named one
    /// (the uploader cannot choose: the token is its only credential).
    var clientId: String?
}

/// Offline collectors upload their container straight to the server: an investigator asks for a
/// one-time token (`POST /api/v1/collections/upload-tokens`), the collector carries it, and sends
/// the container in pieces to `/upload/collection` with the token in `X-Quarry-Upload-Token` —
/// no API key and no client certificate, so the token is checked from the headers before any body
/// is read, and everything else about the request is bounded: the total by `max_import_bytes`,
/// each piece by `uploadPieceBytes`, and a piece must start where the bytes received end (a
/// collector that lost its connection asks `GET /upload/collection` and resumes there). When the
/// last byte arrives the container is imported as a flow, exactly as `collections/import` does,
/// and the token is spent. Tokens are stored as SHA-256 digests in the datastore's metadata, so
/// every frontend honours them; the bytes of an upload in progress live on the frontend that
/// received them.
extension FleetServer {
    static let uploadTokenOwner = "collector-upload-tokens"
    /// Largest piece accepted in one request.
    static let uploadPieceBytes: Int64 = 64 << 20
    static let tokenHeader = HTTPField.Name("X-Quarry-Upload-Token")!

    func addUploadRoutes(api: RouterGroup<FleetRequestContext>, router: Router<FleetRequestContext>) {
        api.post("collections/upload-tokens") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_CLIENT")
            struct Body: Decodable { var hours: Double?; var client_id: String? }
            let (body, raw) = try await context.decode(Body.self, from: request, limit: config.limits.maxRequestBodyBytes)
            let hours = min(max(body.hours ?? 168, 0.01), 24 * 90)
            if let clientId = body.client_id, try await store.client(clientId) == nil {
                throw APIFailure(status: 404, message: "no client \(clientId)")
            }
            let token = "QU." + Identifiers.hex(24)
            let now = Date().timeIntervalSince1970
            let record = UploadTokenRecord(creator: caller.user.name, created: now, expires: now + hours * 3600, clientId: body.client_id)
            try await store.setMetadata(Self.uploadTokenOwner, [Self.digest(token): String(decoding: try JSONEncoder().encode(record), as: UTF8.self)])
            try await audit(caller, "upload-token", String(Self.digest(token).prefix(16)), raw)
            return try ok(UploadTokenGrant(token: token, expires: record.expires))
        }
        router.get("upload/collection") { [self] request, _ in
            let (digest, _) = try await uploadToken(request)
            return try ok(UploadProgressReport(received: Self.fileSize(uploadPath(digest))))
        }
        router.put("upload/collection") { [self] request, context in
            let (digest, record) = try await uploadToken(request)
            let query = request.uri.queryParameters
            guard let offset = query.string("offset").flatMap({ Int64($0) }), let total = query.string("total").flatMap({ Int64($0) }),
                  offset >= 0, total > 0, offset <= total else {
                throw APIFailure(status: 400, message: "give offset= and total= (bytes)")
            }
            guard total <= config.limits.maxImportBytes else {
                throw APIFailure(status: 413, message: "the container's \(total) bytes are over the import limit of \(config.limits.maxImportBytes)")
            }
            guard uploadsInProgress.withLockedValue({ $0.insert(digest).inserted }) else {
                throw APIFailure(status: 409, message: "another upload with this token is in progress")
            }
            defer { _ = uploadsInProgress.withLockedValue { $0.remove(digest) } }
            let path = uploadPath(digest)
            let held = Self.fileSize(path)
            guard offset == held else { throw APIFailure(status: 409, message: "the server holds \(held) bytes: resume at offset=\(held)") }
            let room = min(total - offset, Self.uploadPieceBytes)
            context.bodyRead.set()
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw APIFailure(status: 500, message: "cannot store the upload") }
            var received: Int64 = 0
            do {
                defer { close(fd) }
                for try await buffer in request.body {
                    received += Int64(buffer.readableBytes)
                    guard received <= room else {
                        _ = ftruncate(fd, off_t(held))
                        throw APIFailure(status: 413, message: "a piece may hold \(room) bytes here")
                    }
                    try PrivateFile.writeAll(fd, buffer.readableBytesView, path: path)
                }
                _ = fsync(fd)
            }
            guard held + received == total else { return try ok(UploadProgressReport(received: held + received)) }
            // Complete: spend the token first (no second import from it), then import.
            try await store.setMetadata(Self.uploadTokenOwner, [digest: nil])
            defer { unlink(path) }
            let outcome = try await importOnThread(path: path, hostname: query.string("hostname"), clientId: record.clientId, creator: record.creator)
            try await store.audit(AuditEntry(
                time: Date().timeIntervalSince1970, user: record.creator, action: "collector-upload", target: outcome.flowId,
                details: "{\"hostname\":\(Self.jsonString(outcome.hostname)),\"bytes\":\(total)}", remote: context.remote))
            return try ok(outcome)
        }
    }

    /// The token's digest and record, from the headers alone; anything else is refused before a body is read.
    func uploadToken(_ request: Request) async throws -> (String, UploadTokenRecord) {
        guard let token = request.headers[Self.tokenHeader], token.hasPrefix("QU."), token.utf8.count < 128 else {
            throw APIFailure(status: 401, message: "an upload needs its token in X-Quarry-Upload-Token")
        }
        let digest = Self.digest(token)
        guard let text = try await store.metadata(Self.uploadTokenOwner)[digest],
              let record = try? JSONDecoder().decode(UploadTokenRecord.self, from: Data(text.utf8)) else {
            throw APIFailure(status: 401, message: "unknown or spent upload token")
        }
        guard record.expires > Date().timeIntervalSince1970 else {
            try await store.setMetadata(Self.uploadTokenOwner, [digest: nil])
            throw APIFailure(status: 401, message: "the upload token has expired")
        }
        return (digest, record)
    }

    func uploadPath(_ digest: String) -> String {
        let folder = config.dataDir + "/imports"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return folder + "/upload-" + digest.prefix(32) + ".part"
    }

    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    static func jsonString(_ text: String) -> String {
        (try? String(decoding: JSONEncoder().encode(text), as: UTF8.self)) ?? "\"\""
    }
}
