import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Opens client connections to the fleet server over TLS: the agent's WebSocket channel and single
/// HTTP requests for the API. Both check that the server presents a fleet server certificate.
public enum Connector {
    /// Connects and upgrades to the agent channel at /agent.
    public static func openAgentChannel(url: String, tls: NIOSSLContext, group: EventLoopGroup, timeout: TimeAmount = .seconds(15)) async throws -> AgentSocket {
        let address = try ServerAddress(url: url)
        let result = OnceBox<AgentSocket>(eventLoop: group.next())
        let channel = try await connect(address, tls: tls, group: group, timeout: timeout) { pipeline in
            let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 26) { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let socket = AgentSocket(channel: channel, certificateName: nil, remote: url, isClient: true)
                    try channel.pipeline.syncOperations.addHandler(WebSocketMessageHandler(socket: socket))
                    result.succeed(socket)
                }
            }
            // Frames the server sends right behind its 101 answer must not be dropped.
            try pipeline.addHTTPClientHandlers(
                leftOverBytesStrategy: .forwardBytes,
                withClientUpgrade: (upgraders: [upgrader], completionHandler: { context in
                    context.pipeline.removeHandler(name: "upgrade-request", promise: nil)
                }))
            try pipeline.addHandler(
                RequestSender(host: address.host, method: .GET, uri: "/agent", headers: [], body: nil, failure: { result.fail($0) }),
                name: "upgrade-request")
        }
        do {
            return try await outcome(of: result, on: channel, timeout: timeout, waitingFor: "the agent channel")
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// One HTTPS request; returns status and body.
    public static func request(
        url: String, tls: NIOSSLContext, group: EventLoopGroup, method: HTTPMethod, path: String, headers: [(String, String)], body: Data?,
        timeout: TimeAmount = .seconds(120)
    ) async throws -> (status: Int, body: Data) {
        let address = try ServerAddress(url: url)
        let result = OnceBox<(Int, Data)>(eventLoop: group.next())
        let channel = try await connect(address, tls: tls, group: group, timeout: .seconds(15)) { pipeline in
            try pipeline.addHTTPClientHandlers()
            try pipeline.addHandler(RequestSender(host: address.host, method: method, uri: path, headers: headers, body: body, failure: { result.fail($0) }))
            try pipeline.addHandler(ResponseCollector(result: result))
        }
        defer { channel.close(promise: nil) }
        let (status, data) = try await outcome(of: result, on: channel, timeout: timeout, waitingFor: "a complete response")
        return (status, data)
    }

    /// A TCP connection with TLS and the server-identity check, then the caller's handlers.
    private static func connect(
        _ address: ServerAddress, tls: NIOSSLContext, group: EventLoopGroup, timeout: TimeAmount,
        handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) async throws -> Channel {
        try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: address.isIPAddress ? nil : address.host))
                    try pipeline.addHandler(ServerIdentityCheck(host: address.host))
                    try handlers(pipeline)
                }
            }
            .connect(host: address.host, port: address.port).get()
    }

    /// Waits for what the handlers deliver, failing if the connection closes first or time runs out.
    private static func outcome<T: Sendable>(of result: OnceBox<T>, on channel: Channel, timeout: TimeAmount, waitingFor what: String) async throws -> T {
        channel.closeFuture.whenComplete { _ in result.fail(TransportError("the server closed the connection before \(what)")) }
        let timer = channel.eventLoop.scheduleTask(in: timeout) { result.fail(TransportError("timed out after \(timeout.nanoseconds / 1_000_000_000) s waiting for \(what)")) }
        defer { timer.cancel() }
        return try await result.future.get()
    }
}

/// A promise that may be completed from several places; the first completion wins.
final class OnceBox<T: Sendable>: Sendable {
    private let promise: EventLoopPromise<T>
    private let done = NIOLockedValueBox(false)
    init(eventLoop: EventLoop) { promise = eventLoop.makePromise(of: T.self) }
    /// A connection that failed before anyone completed the promise must not leak it.
    deinit { fail(TransportError("the connection attempt was abandoned")) }
    var future: EventLoopFuture<T> { promise.futureResult }

    func succeed(_ value: T) {
        if done.withLockedValue({ let was = $0; $0 = true; return !was }) { promise.succeed(value) }
    }

    func fail(_ error: Error) {
        if done.withLockedValue({ let was = $0; $0 = true; return !was }) { promise.fail(error) }
    }
}

/// Writes one HTTP request when the connection becomes active; reports errors on the way.
final class RequestSender: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let host: String, method: HTTPMethod, uri: String, headers: [(String, String)], body: Data?
    let failure: @Sendable (Error) -> Void

    init(host: String, method: HTTPMethod, uri: String, headers: [(String, String)], body: Data?, failure: @escaping @Sendable (Error) -> Void) {
        self.host = host
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.failure = failure
    }

    func channelActive(context: ChannelHandlerContext) {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "Host", value: host)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "Content-Length", value: String(body.count))
            head.headers.add(name: "Content-Type", value: "application/json")
        } else if method != .GET {
            head.headers.add(name: "Content-Length", value: "0")
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failure(error)
        context.close(promise: nil)
    }
}

/// Gathers one HTTP response.
final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let result: OnceBox<(Int, Data)>
    private var status = 0
    private var body = Data()
    init(result: OnceBox<(Int, Data)>) { self.result = result }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(var buffer): body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .end: result.succeed((status, body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.fail(error)
        context.close(promise: nil)
    }
}
