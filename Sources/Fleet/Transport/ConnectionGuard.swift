import FleetCore
import Foundation
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS

/// What the listener enforces on every connection before any request is read: the connection
/// ceilings (`ConnectionLimiter`) and a deadline for the TLS handshake plus the first request head.
/// Shared by all connections of one listener.
final class ConnectionGuard: Sendable {
    let limiter: NIOLockedValueBox<ConnectionLimiter>
    /// From accepting a connection to its first complete request head; nil for none.
    let headDeadline: TimeAmount?
    let refused: @Sendable (String) -> Void

    init(limits: ConnectionLimiter.Limits, headDeadline: TimeAmount?, refused: @escaping @Sendable (String) -> Void) {
        limiter = NIOLockedValueBox(ConnectionLimiter(limits))
        self.headDeadline = headDeadline
        self.refused = refused
    }

    /// Connections open now, and unverified ones per address (for tests and metrics).
    var openConnections: Int { limiter.withLockedValue { $0.open } }
}

/// Wraps the server's child channel (TLS, then HTTP with the WebSocket upgrade): counts each
/// connection in the guard's limiter and closes it at once when over a ceiling; puts a
/// `ClosingReadGate` and a `HeadDeadlineHandler` right behind the TLS handler.
struct GuardedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let guarding: ConnectionGuard

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let address = PeerAddress.of(channel)
        let decision = guarding.limiter.withLockedValue { $0.opened(address: address) }
        if case .refuse(let reason) = decision {
            guarding.refused(reason)
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(TransportError("connection refused: \(reason)"))
        }
        let ticket = ConnectionTicket()
        let limiter = guarding.limiter
        channel.closeFuture.whenComplete { _ in
            let verified = ticket.verified.withLockedValue { $0 }
            limiter.withLockedValue { $0.closed(address: address, verified: verified) }
        }
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let tls = try pipeline.handler(type: NIOSSLServerHandler.self)
            let deadline = HeadDeadlineHandler(deadline: guarding.headDeadline) {
                ticket.verified.withLockedValue { $0 = true }
                limiter.withLockedValue { $0.verified(address: address) }
            }
            let gate = ClosingReadGate()
            try pipeline.addHandler(gate, position: .after(tls))
            try pipeline.addHandler(deadline, position: .after(gate))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Whether a connection's peer presented a certificate that chains to the fleet's CA.
final class ConnectionTicket: Sendable {
    let verified = NIOLockedValueBox(false)
}

/// The peer's IP address as the limits count it (without the port).
enum PeerAddress {
    static func of(_ channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// Closes the connection unless the TLS handshake and a first complete request head (up to the
/// blank line) arrive before the deadline: an idle TCP or TLS connection, or a request head sent a
/// byte a minute, holds a connection only that long. Tells `onVerified` when the handshake ends
/// with a client certificate (the TLS handler has checked it chains to the CA). Removes itself once
/// the head has arrived; from then on the HTTP idle timeout or the WebSocket's pings take over.
final class HeadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let deadline: TimeAmount?
    private let onVerified: () -> Void
    private var timer: Scheduled<Void>?
    /// How much of "\r\n\r\n" (the end of a request head) the last bytes matched, across reads.
    private var matched = 0
    init(deadline: TimeAmount?, onVerified: @escaping () -> Void) {
        self.deadline = deadline
        self.onVerified = onVerified
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let deadline else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, (try? context.pipeline.syncOperations.nioSSL_peerCertificate()) != nil {
            onVerified()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let complete = buffer.withUnsafeReadableBytes { bytes -> Bool in
            for byte in bytes {
                if byte == (matched % 2 == 0 ? 13 : 10) {
                    matched += 1
                    if matched == 4 { return true }
                } else {
                    matched = byte == 13 ? 1 : 0
                }
            }
            return false
        }
        context.fireChannelRead(data)
        if complete {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// Drops whatever arrives once the server has decided to close the connection (the head deadline,
/// the HTTP idle timeout, anything above). Closing TLS first sends close_notify and waits a while
/// for the peer's; a browser that meanwhile sends a request on its pooled idle socket must not have
/// it carried out, because it will see the connection close unanswered and send the request again
/// on a new one — a sign-out was done twice that way, the second refused for want of a session.
final class ClosingReadGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var closing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !closing { context.fireChannelRead(data) }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all || mode == .input { closing = true }
        context.close(mode: mode, promise: promise)
    }
}
