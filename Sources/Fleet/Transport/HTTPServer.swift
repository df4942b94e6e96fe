import FleetCore
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import ServiceLifecycle

/// A request context the fleet's listener can serve: made from the connection, it knows the peer
/// and carries a mark that body-reading handlers set, so that the listener knows whether what is
/// left of a refused request's body must be cut off.
protocol FleetListenerContext: RequestContext, WebSocketRequestContext where Source == ApplicationRequestContextSource {
    var bodyRead: BodyReadMark { get }
}

/// Set once a handler has read (or started reading) the request's body.
final class BodyReadMark: Sendable {
    private let value = NIOLockedValueBox(false)
    var isSet: Bool { value.withLockedValue { $0 } }
    func set() { value.withLockedValue { $0 = true } }
}

/// How the listener is configured: where, which TLS identity, and the limits that apply before a
/// request reaches the router.
struct ListenerSettings: Sendable {
    var host: String
    var port: Int
    var tls: TLSConfiguration
    var limits: ServerLimits
    /// Told of every connection refused by a ceiling (for the log and metrics).
    var refused: @Sendable (String) -> Void
    var log: @Sendable (String) -> Void
}

/// The server's one listening socket, on Hummingbird: TLS 1.3 (HummingbirdTLS over swift-nio-ssl,
/// the fleet's CA as the only trust root, client certificates optional), then HTTP/1.1 for the
/// analyst API and /metrics, or a WebSocket upgrade at /agent for an agent's channel
/// (hummingbird-websocket). Before any of that, `GuardedChannel` enforces the connection ceilings and
/// the handshake deadline.
final class FleetListener: Sendable {
    let port: Int
    private let services: ServiceGroup
    private let running: Task<Void, Never>
    let guarding: ConnectionGuard

    private init(port: Int, services: ServiceGroup, running: Task<Void, Never>, guarding: ConnectionGuard) {
        self.port = port
        self.services = services
        self.running = running
        self.guarding = guarding
    }

    /// Binds and starts serving `router` (HTTP) and `webSocketRouter` (upgrade requests); returns
    /// once the socket is bound (or throws if it cannot be).
    static func start<Context: FleetListenerContext>(
        _ settings: ListenerSettings, group: EventLoopGroup, router: Router<Context>, webSocketRouter: Router<Context>
    ) async throws -> FleetListener {
        let limits = settings.limits
        let logger = Logger(label: "quarry.http") { _ in FleetLogHandler(log: settings.log) }
        let http = HTTP1WebSocketUpgradeChannel(
            responder: Self.responder(router.buildResponder(), logger: logger),
            webSocketResponder: webSocketRouter.buildResponder(),
            configuration: .init(
                http1: .init(idleTimeout: Self.seconds(limits.idleTimeoutSeconds), httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 100)),
                ws: .init(
                    maxFrameSize: Wire.maxFrameBytes, autoPing: limits.pingSeconds > 0 ? .enabled(timePeriod: .milliseconds(Int64(limits.pingSeconds * 1000))) : .disabled,
                    closeTimeout: .seconds(5))))
        let guarding = ConnectionGuard(
            limits: .init(maxConnections: limits.maxConnections, maxUnverifiedPerAddress: limits.maxUnverifiedConnectionsPerAddress),
            headDeadline: Self.seconds(limits.handshakeTimeoutSeconds), refused: settings.refused)
        let channel = GuardedChannel(base: try TLSChannel(http, tlsConfiguration: settings.tls), guarding: guarding)
        let bound = OnceBox<Int>(eventLoop: group.next())
        let server = channel.server(
            configuration: ServerConfiguration(address: .hostname(settings.host, port: settings.port), backlog: 4096, reuseAddress: true),
            onServerRunning: { bound.succeed($0.localAddress?.port ?? settings.port) }, eventLoopGroup: group, logger: logger)
        let services = ServiceGroup(configuration: .init(services: [server], logger: logger))
        let running = Task {
            do {
                try await services.run()
                bound.fail(TransportError("the listener stopped before it was bound"))
            } catch {
                bound.fail(TransportError("cannot listen on \(settings.host):\(settings.port): \(error)"))
            }
        }
        do {
            let port = try await bound.future.get()
            return FleetListener(port: port, services: services, running: running, guarding: guarding)
        } catch {
            running.cancel()
            throw error
        }
    }

    /// Stops accepting, lets open requests finish for a few seconds, then cuts what is left.
    func close() async {
        await services.triggerGracefulShutdown()
        let running = self.running
        let deadline = Task {
            try? await Task.sleep(for: .seconds(5))
            running.cancel()
        }
        await running.value
        deadline.cancel()
    }

    static func seconds(_ value: Double) -> TimeAmount? {
        value > 0 ? .nanoseconds(Int64(value * 1e9)) : nil
    }

    /// Answers one HTTP request through the router. A refusal (a status of 400 or more) to a request
    /// whose body the handler never read (or stopped reading at its cap) is sent with
    /// `Connection: close`, and the connection is closed a second later without reading that body:
    /// the peer gets its answer, and the server neither buffers nor reads the rest of a body it has
    /// no use for.
    static func responder<Context: FleetListenerContext>(_ router: RouterResponder<Context>, logger: Logger) -> HTTPChannelHandler.Responder {
        { (request, writer: consuming ResponseWriter, channel) in
            let context = Context(source: ApplicationRequestContextSource(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await router.respond(to: request, context: context)
            } catch {
                response = Response(status: .internalServerError)
            }
            // 413: the handler stopped reading at its cap, so the rest of the body is unread too.
            let cutOff = response.status.code >= 400 && hasBody(request) && (!context.bodyRead.isSet || response.status == .contentTooLarge)
            if cutOff { response.headers[.connection] = "close" }
            try await writer.write(response: response.head, body: response.body)
            guard cutOff else { return }
            // The handler's task stays here meanwhile, so nothing reads the connection: its buffers
            // fill and the peer stops sending. The wait lets the answer reach the peer before the
            // close (which resets a connection with unread data).
            try? await Task.sleep(for: .seconds(1))
            try? await channel.close()
        }
    }

    /// Whether a request carries a body (a length above zero, or chunks).
    static func hasBody(_ request: Request) -> Bool {
        if request.headers[.transferEncoding] != nil { return true }
        return request.headers[.contentLength].flatMap { Int($0) }.map { $0 > 0 } ?? false
    }
}

/// Hummingbird's and swift-nio's log messages of level warning and above, in the server's log.
struct FleetLogHandler: LogHandler {
    let log: @Sendable (String) -> Void
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log("http: \(event.level): \(event.message)")
    }
}
