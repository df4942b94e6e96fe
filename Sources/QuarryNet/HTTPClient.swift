import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import VQL

/// http_client(): one HTTP(S) request per call (or the first of several URLs that answers 200),
/// with Velociraptor's arguments. The response is bounded (in memory and on disk), redirects are
/// limited, connects and reads time out, and a cancelled query cancels the request. A URL of
/// the form `/path/to.sock:unix/request/path` talks HTTP over a Unix socket (Docker, snapd).
public enum HTTPClientPlugin {
    static let memoryLimit = 256 << 20
    static let fileLimit: Int64 = 4 << 30

    public static let plugin = PluginDeclaration(
        name: "http_client",
        summary: "Makes an HTTP request: rows of Url, Content (the body, in chunk_size pieces; or with tempfile_extension the path of a 0600 temporary file removed when the query ends), Response (the status code; 500 with the error as Content when the request fails) and Headers.",
        arguments: [
            ArgumentSpec("url", .any, required: true, "The URL, or a list tried in turn until one answers 200. PATH:unix/URLPATH uses a Unix socket."),
            ArgumentSpec("params", .dict, "Query parameters (GET) or a form body (other methods without data)."),
            ArgumentSpec("headers", .dict, "Request headers."),
            ArgumentSpec("method", .string, "GET (default), POST, PUT, PATCH, DELETE, HEAD."),
            ArgumentSpec("data", .string, "The request body."),
            ArgumentSpec("chunk_size", .int, "Split the body into rows of this many bytes (default: one row)."),
            ArgumentSpec("disable_ssl_security", .bool, "Do not verify the server's certificate."),
            ArgumentSpec("skip_verify", .bool, "Do not verify the server's certificate."),
            ArgumentSpec("tempfile_extension", .string, "Write the body to a temporary file with this extension; Content is its path."),
            ArgumentSpec("remove_last", .bool, "Accepted: temporary files are always removed when the query ends."),
            ArgumentSpec("root_ca", .string, "PEM certificates trusted in addition to the system's."),
            ArgumentSpec("cookie_jar", .dict, "Not supported (ignored, logged)."),
            ArgumentSpec("user_agent", .string, "The User-Agent header (default Quarry)."),
            ArgumentSpec("secret", .string, "Not supported."),
            ArgumentSpec("files", .any, "Not supported (multipart upload)."),
            ArgumentSpec("timeout", .int, "Seconds for the whole request (default 300; connecting gets at most 30)."),
        ],
        columns: [ColumnSpec("Url", .string), ColumnSpec("Content", .string), ColumnSpec("Response", .int), ColumnSpec("Headers", .dict)],
        examples: ["SELECT Response FROM http_client(url='http://127.0.0.1:9/', timeout=2)"],
        permissions: [.network]
    ) { ctx in
        guard ctx.context.require(.network, for: "http_client") else { return ArrayCursor([]) }
        for unsupported in ["cookie_jar", "secret", "files"] where ctx.has(unsupported) {
            ctx.context.logOnce(.warning, "http_client: \(unsupported)= is not supported and was ignored")
        }
        let urls = (ctx.strings("url") ?? []).filter { !$0.isEmpty }
        guard !urls.isEmpty else { return ArrayCursor([]) }
        let request = RequestSpec(ctx)
        var last: Fetched?
        for url in urls {
            let fetched = Bridge.run(ctx) { try await request.fetch(url) }
            switch fetched {
            case .success(let result):
                last = result
            case .failure(let error):
                last = Fetched(url: url, status: 500, headers: Dict(), body: Array("\(error)".utf8), file: nil)
                ctx.context.logOnce(.warning, "http_client: \(url): \(error)")
            }
            if last?.status == 200 { break }
        }
        guard let last else { return ArrayCursor([]) }
        return ArrayCursor(last.rows(chunk: Int(ctx.int("chunk_size") ?? 0), temporaryFiles: TemporaryFiles.of(ctx.context)))
    }

    /// What a request produced: status, headers and the body (in memory or in a temporary file).
    struct Fetched: Sendable {
        let url: String
        let status: Int
        let headers: Dict
        let body: [UInt8]
        let file: String?

        static let schema = Schema(["Url", "Content", "Response", "Headers"])

        func rows(chunk: Int, temporaryFiles: TemporaryFiles) -> [Value] {
            if let file {
                temporaryFiles.add(file)
                return [.dict(Dict(schema: Fetched.schema, values: [.string(url), .string(file), .int(Int64(status)), .dict(headers)]))]
            }
            let size = chunk > 0 ? chunk : max(1, body.count)
            var rows: [Value] = []
            var start = 0
            repeat {
                let piece = Array(body[start..<min(body.count, start + size)])
                rows.append(.dict(Dict(schema: Fetched.schema, values: [.string(url), .string(bytes: piece), .int(Int64(status)), .dict(headers)])))
                start += size
            } while start < body.count
            return rows
        }
    }

    /// The request, read from the call's arguments once.
    struct RequestSpec: Sendable {
        let method: HTTPMethod
        let headers: [(String, String)]
        let params: [(String, String)]
        let body: [UInt8]?
        let insecure: Bool
        let roots: [String]
        let extensionName: String?
        let timeout: Int64
        /// Seconds to get a connection (AsyncHTTPClient keeps retrying a refused one until then).
        let connectTimeout: Int64

        /// A request made by code rather than by http_client's arguments (the SIEM uploads).
        init(
            method: HTTPMethod, headers: [(String, String)], insecure: Bool, roots: [String], body: [UInt8]? = nil, timeout: Int64 = 120,
            connectTimeout: Int64 = 5
        ) {
            self.method = method
            self.connectTimeout = connectTimeout
            self.headers = headers
            params = []
            self.body = body
            self.insecure = insecure
            self.roots = roots
            extensionName = nil
            self.timeout = timeout
        }

        /// The same request with `body`, sent to `url`.
        func fetch(_ url: String, body: [UInt8]) async throws -> Fetched {
            try await RequestSpec(method: method, headers: headers, insecure: insecure, roots: roots, body: body, timeout: timeout, connectTimeout: connectTimeout).fetch(url)
        }

        init(_ ctx: CallContext) {
            method = HTTPMethod(rawValue: (ctx.string("method") ?? "GET").uppercased())
            var headers: [(String, String)] = [("User-Agent", ctx.string("user_agent") ?? "Quarry")]
            if case .dict(let d)? = ctx.value("headers") { headers += d.pairs.map { ($0.0, $0.1.stringValue ?? JSONWriter.string($0.1)) } }
            self.headers = headers
            if case .dict(let d)? = ctx.value("params") { params = d.pairs.map { ($0.0, $0.1.stringValue ?? JSONWriter.string($0.1)) } } else { params = [] }
            body = ctx.has("data") ? (ctx.bytes("data") ?? []) : nil
            insecure = (ctx.bool("disable_ssl_security") ?? false) || (ctx.bool("skip_verify") ?? false)
            roots = ClientTLS.roots(ctx)
            extensionName = ctx.string("tempfile_extension")
            timeout = max(1, ctx.int("timeout") ?? 300)
            connectTimeout = min(timeout, 30)
        }

        /// `PATH:unix/URLPATH` becomes AsyncHTTPClient's http+unix URL.
        static func target(_ url: String) -> String {
            guard let marker = url.range(of: ":unix") , !url.contains("://") else { return url }
            let socket = String(url[..<marker.lowerBound])
            var path = String(url[marker.upperBound...])
            if !path.hasPrefix("/") { path = "/" + path }
            let encoded = socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket
            return "http+unix://\(encoded)\(path)"
        }

        static func encode(_ pairs: [(String, String)]) -> String {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return pairs.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }
                .joined(separator: "&")
        }

        func fetch(_ url: String) async throws -> Fetched {
            let tls = try ClientTLS.configuration(skipVerify: insecure, roots: roots)
            var configuration = HTTPClient.Configuration(
                tlsConfiguration: tls, redirectConfiguration: .follow(max: 5, allowCycles: false),
                timeout: .init(connect: .seconds(connectTimeout), read: .seconds(timeout)))
            configuration.decompression = .enabled(limit: .size(HTTPClientPlugin.memoryLimit))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                let result = try await perform(url, client: client)
                try await client.shutdown()
                return result
            } catch {
                try? await client.shutdown()
                throw error
            }
        }

        private func perform(_ url: String, client: HTTPClient) async throws -> Fetched {
            var target = RequestSpec.target(url)
            var request = HTTPClientRequest(url: target)
            request.method = method
            for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
            if let body {
                request.body = .bytes(ByteBuffer(bytes: body))
            } else if !params.isEmpty && method != .GET && method != .HEAD {
                request.headers.replaceOrAdd(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(string: RequestSpec.encode(params)))
            }
            if !params.isEmpty && (method == .GET || method == .HEAD || body != nil) {
                target += (target.contains("?") ? "&" : "?") + RequestSpec.encode(params)
                request.url = target
            }
            let response = try await client.execute(request, timeout: .seconds(timeout))
            var headers = Dict()
            for (name, value) in response.headers {
                if let existing = headers[name]?.stringValue { headers[name] = .string(existing + ", " + value) } else { headers[name] = .string(value) }
            }
            if let extensionName {
                let file = try TemporaryFiles.create(extension: extensionName)
                do {
                    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
                    defer { try? handle.close() }
                    var written: Int64 = 0
                    for try await buffer in response.body {
                        written += Int64(buffer.readableBytes)
                        guard written <= HTTPClientPlugin.fileLimit else { throw HTTPFailure(message: "response larger than \(HTTPClientPlugin.fileLimit) bytes") }
                        try handle.write(contentsOf: Data(buffer.readableBytesView))
                    }
                } catch {
                    unlink(file)
                    throw error
                }
                return Fetched(url: url, status: Int(response.status.code), headers: headers, body: [], file: file)
            }
            var body: [UInt8] = []
            for try await buffer in response.body {
                guard body.count + buffer.readableBytes <= HTTPClientPlugin.memoryLimit else {
                    throw HTTPFailure(message: "response larger than \(HTTPClientPlugin.memoryLimit) bytes (use tempfile_extension)")
                }
                body += buffer.readableBytesView
            }
            return Fetched(url: url, status: Int(response.status.code), headers: headers, body: body, file: nil)
        }
    }
}

struct HTTPFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Temporary files a query created; removed when the query's context goes away.
public final class TemporaryFiles: Sendable {
    private let paths = Mutex<[String]>([])

    func add(_ path: String) { paths.withLock { $0.append(path) } }

    deinit {
        for path in paths.withLock({ $0 }) { unlink(path) }
    }

    static func of(_ context: QueryContext) -> TemporaryFiles {
        if let existing = context.service("http_client.tempfiles", as: TemporaryFiles.self) { return existing }
        let files = TemporaryFiles()
        context.setService("http_client.tempfiles", files)
        return files
    }

    /// A new empty file, mode 0600 from its creation.
    static func create(extension suffix: String) throws -> String {
        let clean = String(suffix.filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" }.prefix(32))
        let directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array((directory + "/quarry-http-XXXXXX" + clean).utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemps(base, Int32(clean.utf8.count))
        }
        guard fd >= 0 else { throw HTTPFailure(message: "cannot create a temporary file: \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        close(fd)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Runs async work from a synchronous plugin on the bridge's own threads (see BridgeExecutor):
/// waits in short steps so a cancelled query cancels the work.
enum Bridge {
    final class Box<T: Sendable>: Sendable {
        let result = Mutex<Result<T, any Error>?>(nil)
    }

    static func run<T: Sendable>(_ ctx: CallContext, _ work: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        let task = Task(executorPreference: BridgeExecutor.shared) {
            let result: Result<T, any Error>
            do { result = .success(try await work()) } catch { result = .failure(error) }
            box.result.withLock { $0 = result }
            done.signal()
        }
        while done.wait(timeout: .now() + .milliseconds(200)) == .timedOut {
            if ctx.context.cancellation.isCancelled { task.cancel() }
        }
        return box.result.withLock { $0 } ?? .failure(HTTPFailure(message: "no result"))
    }
}

/// The network module's registry list.
public enum NetLibrary {
    public static var plugins: [PluginDeclaration] {
        [HTTPClientPlugin.plugin, NetcatPlugin.plugin, SIEMUpload.elastic, SIEMUpload.splunk, LogScaleUpload.plugin] + serverPlugins
    }
    public static var functions: [FunctionDeclaration] { [MailFunction.function] + UploadFunctions.functions }
    /// Plugins Velociraptor files under its server's names (also callable on endpoints here).
    public static var serverPlugins: [PluginDeclaration] { [MailFunction.plugin] }
}
