import FleetCore
import Foundation
import Synchronization
import VQL

/// Velociraptor's `fs` accessor for server VQL: the files agents uploaded, by the paths uploads()
/// gives (`/clients/C…/collections/F…/uploads/<name>`, with or without an `fs:` prefix). Reads go
/// to the server's API in bounded slices with the analyst's key, so the server checks the role
/// and audits the download; nothing is copied to the analyst's disk.
public struct FileStoreAccessor: Accessor {
    public init() {}
    public var name: String { "fs" }
    public var summary: String {
        "Files agents uploaded to the fleet server, by the vfs_path of uploads(): /clients/ID/collections/FLOW/uploads/NAME (server VQL only)."
    }

    /// The upload a path names, looked up in its flow.
    static func upload(_ text: String, api: APIClient) throws -> UploadRecord {
        var path = Substring(text)
        if path.hasPrefix("fs:") { path = path.dropFirst(3) }
        let parts = path.split(separator: "/", maxSplits: 5, omittingEmptySubsequences: true)
        guard parts.count == 6, parts[0] == "clients", parts[2] == "collections", parts[4] == "uploads" else {
            throw AccessorError.unsupported("fs: \(text) is not /clients/ID/collections/FLOW/uploads/NAME")
        }
        let flowId = String(parts[3]), name = String(parts[5])
        let view = try runBlocking { try await api.get("/flows/\(APIClient.pathSegment(flowId))", as: FlowView.self) }
        guard view.flow.clientId == String(parts[1]) else { throw AccessorError.unsupported("fs: flow \(flowId) is not a flow of \(parts[1])") }
        // Names compare by their components: paths are normalised on the way (file//tmp/x is file/tmp/x).
        let components = { (text: String) in text.split(separator: "/", omittingEmptySubsequences: true) }
        guard let upload = view.uploads.first(where: { components($0.name) == components(name) }) else {
            throw AccessorError.unsupported("fs: flow \(flowId) has no upload named \(name)")
        }
        return upload
    }

    /// The fs path of an upload (what uploads() reports as vfs_path).
    static func path(of upload: UploadRecord, clientId: String) -> String {
        "/clients/\(clientId)/collections/\(upload.flowId)/uploads/" + upload.name.drop { $0 == "/" }
    }

    static func api(_ scope: AccessorScope) throws -> APIClient {
        guard let api = scope.context.service(ServerPlugins.serviceKey, as: APIClient.self) else {
            throw AccessorError.unsupported("the fs accessor needs the fleet server: run the query with --server")
        }
        return api
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let upload = try Self.upload(String(decoding: path.text, as: UTF8.self), api: try Self.api(scope))
        return FileInfo(path: path, size: upload.size, mode: FileInfo.regularMode)
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let api = try Self.api(scope)
        return RemoteUpload(upload: try Self.upload(String(decoding: path.text, as: UTF8.self), api: api), api: api)
    }
}

/// An upload read through the API, one cached slice at a time.
final class RemoteUpload: ReadableFile {
    static let slice = 4 << 20
    let upload: UploadRecord
    let api: APIClient
    private var cached: (offset: Int64, bytes: [UInt8])?

    init(upload: UploadRecord, api: APIClient) {
        self.upload = upload
        self.api = api
    }

    var size: Int64? { upload.size }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset < upload.size, buffer.count > 0 else { return 0 }
        var current = cached
        if let slice = current, offset >= slice.offset, offset < slice.offset + Int64(slice.bytes.count) {
            // Served from the slice already here.
        } else {
            let start = offset - offset % Int64(Self.slice)
            let data = try runBlocking { [api, upload] in
                try await api.uploadSlice(flowId: upload.flowId, sha256: upload.sha256, offset: start, length: Self.slice)
            }
            current = (start, [UInt8](data))
            cached = current
        }
        guard let (start, bytes) = current else { return 0 }
        let from = Int(offset - start)
        let count = min(buffer.count, bytes.count - from)
        guard count > 0, let target = buffer.baseAddress else { return 0 }
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { target.copyMemory(from: base + from, byteCount: count) }
        }
        return count
    }
}

extension ServerPlugins {
    /// The accessors server VQL adds: `fs`.
    public static var accessors: [any Accessor] { [FileStoreAccessor()] }

    /// Makes a query context a server one: the API client for the server plugins and the `fs`
    /// accessor, and the server-side decryption of uploaded storage files for read_crypto_file().
    public static func install(api: APIClient, into context: QueryContext) {
        context.setService(serviceKey, api)
        context.setService(RemoteServices.storageDecryptor, RemoteServices.StorageDecryptor { path in
            let upload = try FileStoreAccessor.upload(path, api: api)
            let lines = try runBlocking { try await api.decryptedUploadRows(flowId: upload.flowId, sha256: upload.sha256) }
            return try lines.map { try JSONParser.parse($0) }
        })
    }
}
