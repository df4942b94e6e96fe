import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import VQL

/// A file read through an accessor for sending elsewhere: streamed in 1 MiB chunks (never whole
/// in memory), hashed (SHA-256 and MD5) on the way, cancellable between chunks.
final class UploadSource: @unchecked Sendable {
    static let chunk = 1 << 20
    let file: any ReadableFile
    let size: Int64?
    let cancellation: CancellationFlag
    private let state = Mutex<(offset: Int64, sha256: SHA256, md5: Insecure.MD5)>((0, SHA256(), Insecure.MD5()))

    init(file: any ReadableFile, cancellation: CancellationFlag) throws {
        if file.mayNotEnd { throw HTTPFailure(message: "not a regular file (it may never end)") }
        self.file = file
        self.size = file.size
        self.cancellation = cancellation
    }

    /// The next chunk, or nil at the end.
    func next() throws -> [UInt8]? {
        try cancellation.check()
        var buffer = [UInt8](repeating: 0, count: Self.chunk)
        let offset = state.withLock { $0.offset }
        let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        guard n > 0 else { return nil }
        buffer.removeLast(buffer.count - n)
        state.withLock {
            $0.offset += Int64(n)
            $0.sha256.update(data: buffer)
            $0.md5.update(data: buffer)
        }
        return buffer
    }

    /// Bytes read so far and their digests (complete once `next()` returned nil).
    var summary: (size: Int64, sha256: String, md5: String) {
        state.withLock { s in
            (s.offset, s.sha256.finalize().map { String(format: "%02x", $0) }.joined(),
             s.md5.finalize().map { String(format: "%02x", $0) }.joined())
        }
    }

    /// The file as an HTTP body that reads as it is sent (length known when the size is).
    func body() -> HTTPClientRequest.Body {
        let stream = AsyncThrowingStream<ByteBuffer, any Error>(unfolding: { [self] in
            try next().map { ByteBuffer(bytes: $0) }
        })
        if let size { return .stream(stream, length: .known(size)) }
        return .stream(stream, length: .unknown)
    }
}

/// What the upload_* functions share: the file argument through an accessor, one HTTP request
/// whose body streams it, and a result dict like upload()'s (Path, Name, Size, Sha256, Md5, Url,
/// Error). A refused request or failed read is a logged error and a result carrying Error.
enum RemoteUpload {
    static let arguments: [ArgumentSpec] = [
        ArgumentSpec("file", .any, required: true, "The file to upload (a path for `accessor`)."),
        ArgumentSpec("name", .string, "The name to store it under (default: the file's path)."),
        ArgumentSpec("accessor", .string, "The accessor to read the file with (default auto)."),
    ]

    struct Target: Sendable {
        var url: String
        var method: HTTPMethod = .PUT
        var headers: [(String, String)] = []
        var insecure = false
        var roots: [String] = []
    }

    /// Opens the file; on failure the error result to return.
    static func open(_ ctx: CallContext) -> Result<(UploadSource, display: String, name: String), UploadFailure> {
        guard let accessor = ctx.accessor(), let path = ctx.path("file", for: accessor) else {
            return .failure(UploadFailure(result: error(ctx, path: "", name: "", "no file to upload")))
        }
        let display = accessor.name == "data" ? "data" : PathValues.display(path)
        let name = ctx.string("name").flatMap { $0.isEmpty ? nil : $0 } ?? display
        do {
            let file = try accessor.open(path, in: ctx.accessorScope)
            return .success((try UploadSource(file: file, cancellation: ctx.context.cancellation), display, name))
        } catch {
            return .failure(UploadFailure(result: self.error(ctx, path: display, name: name, "\(error)")))
        }
    }

    struct UploadFailure: Error {
        let result: Value
    }

    static func error(_ ctx: CallContext, path: String, name: String, _ message: String) -> Value {
        ctx.log(.warning, "\(ctx.name): \(path.isEmpty ? "" : path + ": ")\(message)")
        return .dict(Dict([("Path", .string(path)), ("Name", .string(name)), ("Error", .string(message))]))
    }

    /// Sends the file to `target`; the result dict (Url without its query string, which may hold a
    /// signature).
    static func send(_ ctx: CallContext, _ source: UploadSource, display: String, name: String, to target: Target, accept: Set<Int> = [200, 201, 204]) -> Value {
        defer { source.file.close() }
        var target = target
        target.roots += ClientTLS.roots(ctx)
        let result = Bridge.run(ctx) { [target] in try await perform(source, target) }
        let shownURL = target.url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target.url
        switch result {
        case .success(let (status, body)) where accept.contains(status):
            let summary = source.summary
            ctx.log(.info, "\(ctx.name): \(display): \(summary.size) bytes sent to \(shownURL)")
            return .dict(Dict([
                ("Path", .string(display)), ("Name", .string(name)), ("Size", .int(summary.size)),
                ("Sha256", .string(summary.sha256)), ("Md5", .string(summary.md5)), ("Url", .string(shownURL)), ("Response", .int(Int64(status))),
            ]).with("Content", body.isEmpty ? nil : .string(bytes: Array(body.prefix(4096)))))
        case .success(let (status, body)):
            let text = String(decoding: body.prefix(512), as: UTF8.self)
            return error(ctx, path: display, name: name, "\(shownURL) answered \(status)\(text.isEmpty ? "" : ": " + text)")
        case .failure(let failure):
            return error(ctx, path: display, name: name, "\(shownURL): \(failure)")
        }
    }

    static func perform(_ source: UploadSource, _ target: Target) async throws -> (Int, [UInt8]) {
        let tls = try ClientTLS.configuration(skipVerify: target.insecure, roots: target.roots)
        let configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10), read: .seconds(120)))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            var request = HTTPClientRequest(url: target.url)
            request.method = target.method
            for (name, value) in target.headers { request.headers.replaceOrAdd(name: name, value: value) }
            request.body = source.body()
            let response = try await client.execute(request, timeout: .hours(24))
            var body: [UInt8] = []
            for try await buffer in response.body where body.count < 65536 {
                body += buffer.readableBytesView.prefix(65536 - body.count)
            }
            try await client.shutdown()
            return (Int(response.status.code), body)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// A URL path segment per component, each percent-encoded (slashes kept between them).
    static func encodePath(_ name: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return name.split(separator: "/", omittingEmptySubsequences: true)
            .map { String($0).addingPercentEncoding(withAllowedCharacters: allowed) ?? String($0) }.joined(separator: "/")
    }
}

extension Dict {
    /// The dict with `key` set when `value` is not nil.
    func with(_ key: String, _ value: Value?) -> Dict {
        guard let value else { return self }
        var copy = self
        copy[key] = value
        return copy
    }
}
