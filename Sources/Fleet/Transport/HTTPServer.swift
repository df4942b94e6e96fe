import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// One HTTP request as the API sees it: the whole body read, the peer's address, and the verified
/// client-certificate name when the peer presented one.
public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: Data
    public var remote: String
    public var certificateName: String?

    public func header(_ name: String) -> String? { headers.first(name: name) }
}

/// An HTTP response: status, content type and body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: Data
    public init(status: Int, contentType: String = "application/json", body: Data) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// The server's one listening socket: TLS 1.3, then either an HTTP request for the analyst API and
/// /metrics, or a WebSocket upgrade at /agent for an agent's long-lived channel.
public final class FleetListener: Sendable {
    public let channel: Channel
    public let port: Int

    /// Binds and starts serving. `api` answers HTTP requests; `agent` is told of each new agent channel.
    public static func start(
        host: String, port: Int, tls: NIOSSLContext, group: EventLoopGroup,
        api: @escaping @Sendable (HTTPRequest) async -> HTTPResponse,
        agent: @escaping @Sendable (AgentSocket) -> Void
    ) async throws -> FleetListener {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let remote = channel.remoteAddress?.description ?? "?"
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 1 << 26,
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(head.uri == "/agent" ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                let certificate = try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
                                let socket = AgentSocket(channel: channel, certificateName: TLSSetup.peerCommonName(certificate), remote: remote)
                                try channel.pipeline.syncOperations.addHandler(WebSocketMessageHandler(socket: socket))
                                agent(socket)
                            }
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.removeHandler(name: "api", promise: nil)
                        }),
                        withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(remote: remote, api: api), name: "api")
                }
            }
            .bind(host: host, port: port).get()
        return FleetListener(channel: channel, port: channel.localAddress?.port ?? port)
    }

    init(channel: Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Reads one HTTP request at a time (body up to 256 MiB), answers it through the API closure.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    static let maxBody = 256 << 20
    let remote: String
    let api: @Sendable (HTTPRequest) async -> HTTPResponse
    private var head: HTTPRequestHead?
    private var body = Data()
    private var tooLarge = false

    init(remote: String, api: @escaping @Sendable (HTTPRequest) async -> HTTPResponse) {
        self.remote = remote
        self.api = api
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = Data()
            tooLarge = false
        case .body(var buffer):
            if body.count + buffer.readableBytes > Self.maxBody { tooLarge = true } else if let bytes = buffer.readBytes(length: buffer.readableBytes) { body.append(contentsOf: bytes) }
        case .end:
            guard let head else { return }
            self.head = nil
            let keepAlive = head.isKeepAlive
            if tooLarge {
                write(context: context, HTTPResponse(status: 413, body: Data(#"{"error":"request body too large"}"#.utf8)), keepAlive: false, version: head.version)
                return
            }
            let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
            let components = URLComponents(string: head.uri)
            var query: [String: String] = [:]
            for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
            let request = HTTPRequest(
                method: head.method.rawValue, path: components?.path ?? head.uri, query: query, headers: head.headers, body: body,
                remote: remote, certificateName: TLSSetup.peerCommonName(certificate))
            body = Data()
            let promise = context.eventLoop.makePromise(of: HTTPResponse.self)
            let api = self.api
            promise.completeWithTask { await api(request) }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let version = head.version
            promise.futureResult.whenSuccess { response in
                let (handler, context) = bound.value
                handler.write(context: context, response, keepAlive: keepAlive, version: version)
            }
        }
    }

    private func write(context: ChannelHandlerContext, _ response: HTTPResponse, keepAlive: Bool, version: HTTPVersion) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
