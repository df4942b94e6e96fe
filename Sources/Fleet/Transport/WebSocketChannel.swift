import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// One end of an agent channel: JSON messages as WebSocket text frames. Incoming messages gather in
/// an inbox that one task drains in order (several at a time, so the server can store a run of
/// batches in one transaction); sending is safe from any thread.
public final class AgentSocket: Sendable {
    public let channel: Channel
    /// The verified client-certificate subject (the client ID), nil for a connection without one.
    public let certificateName: String?
    public let remote: String
    let isClient: Bool
    private let inbox = NIOLockedValueBox(Inbox())
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    private struct Inbox {
        var messages: [Data] = []
        var closed = false
    }

    init(channel: Channel, certificateName: String?, remote: String, isClient: Bool = false) {
        self.channel = channel
        self.certificateName = certificateName
        self.remote = remote
        self.isClient = isClient
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func deliver(_ message: Data) {
        inbox.withLockedValue { $0.messages.append(message) }
        ring.yield()
    }

    func closed() {
        inbox.withLockedValue { $0.closed = true }
        ring.yield()
    }

    /// Waits for messages and returns all that arrived (up to `max`), or nil once the channel closed
    /// and everything was taken.
    public func receive(max: Int = 512) async -> [Data]? {
        var iterator = doorbell.makeAsyncIterator()
        while true {
            let (batch, closed) = inbox.withLockedValue { box -> ([Data], Bool) in
                let n = min(max, box.messages.count)
                let taken = Array(box.messages.prefix(n))
                box.messages.removeFirst(n)
                return (taken, box.closed)
            }
            if !batch.isEmpty { return batch }
            if closed { return nil }
            if await iterator.next() == nil { return nil }
        }
    }

    /// Sends one message; the future completes when it is written to the socket.
    @discardableResult
    public func send<T: Encodable>(_ message: T) -> EventLoopFuture<Void> {
        guard let data = try? Wire.encode(message) else { return channel.eventLoop.makeFailedFuture(TransportError("cannot encode message")) }
        var buffer = channel.allocator.buffer(capacity: data.count)
        buffer.writeBytes(data)
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: isClient ? .random() : nil, data: buffer)
        return channel.writeAndFlush(frame)
    }

    public func close() {
        channel.close(promise: nil)
    }
}

/// Reassembles WebSocket frames into messages for an `AgentSocket`; answers pings; closes on close.
final class WebSocketMessageHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    let socket: AgentSocket
    private var partial: ByteBuffer?
    private static let maxMessage = 1 << 26

    init(socket: AgentSocket) { self.socket = socket }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            var payload = frame.unmaskedData
            if frame.fin {
                socket.deliver(Data(payload.readBytes(length: payload.readableBytes) ?? []))
            } else {
                partial = payload
            }
        case .continuation:
            guard var buffer = partial else { return }
            var payload = frame.unmaskedData
            buffer.writeBuffer(&payload)
            if buffer.readableBytes > Self.maxMessage {
                context.close(promise: nil)
                return
            }
            if frame.fin {
                partial = nil
                socket.deliver(Data(buffer.readBytes(length: buffer.readableBytes) ?? []))
            } else {
                partial = buffer
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: socket.isClient ? .random() : nil, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        socket.closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
