import Foundation
import HummingbirdWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// One end of an agent channel: JSON messages over a WebSocket. Incoming messages gather in an
/// inbox that one task drains in order (several at a time, so the server can store a run of batches
/// in one transaction); sending is safe from any thread and keeps the order of the calls.
///
/// The agent's end sits on a raw swift-nio pipeline (`WebSocketMessageHandler`); the server's end is
/// served by hummingbird-websocket (`serve(inbound:outbound:…)`), whose frames it reads with a cap
/// on the message size and into an inbox of bounded size (reading stops while it is full).
public final class AgentSocket: Sendable {
    public let channel: Channel
    /// The verified client-certificate subject (the client ID), nil for a connection without one.
    public let certificateName: String?
    public let remote: String
    let isClient: Bool
    private let inbox = NIOLockedValueBox(Inbox())
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    /// The server's outgoing messages, written in order by the connection's task.
    private let outbox: AsyncStream<Outgoing>.Continuation?

    /// Most bytes of received messages waiting to be taken before the server stops reading.
    static let inboxBytes = 32 << 20

    private struct Inbox {
        var messages: [Data] = []
        var bytes = 0
        var closed = false
        /// A reader waiting for room in the inbox.
        var waiting: CheckedContinuation<Void, Never>?
    }

    struct Outgoing: Sendable {
        var data: Data
        var written: EventLoopPromise<Void>
    }

    init(channel: Channel, certificateName: String?, remote: String, isClient: Bool = false, outbox: AsyncStream<Outgoing>.Continuation? = nil) {
        self.channel = channel
        self.certificateName = certificateName
        self.remote = remote
        self.isClient = isClient
        self.outbox = outbox
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func deliver(_ message: Data) {
        inbox.withLockedValue {
            $0.messages.append(message)
            $0.bytes += message.count
        }
        ring.yield()
    }

    /// Delivers a message, then waits while the inbox holds more than `inboxBytes`.
    func deliverWaitingForRoom(_ message: Data) async {
        deliver(message)
        await withCheckedContinuation { continuation in
            let full = inbox.withLockedValue { box -> Bool in
                guard box.bytes > Self.inboxBytes, !box.closed else { return false }
                box.waiting = continuation
                return true
            }
            if !full { continuation.resume() }
        }
    }

    func closed() {
        let waiting = inbox.withLockedValue { box -> CheckedContinuation<Void, Never>? in
            box.closed = true
            defer { box.waiting = nil }
            return box.waiting
        }
        waiting?.resume()
        ring.yield()
    }

    /// Waits for messages and returns all that arrived (up to `max`), or nil once the channel closed
    /// and everything was taken.
    public func receive(max: Int = 512) async -> [Data]? {
        var iterator = doorbell.makeAsyncIterator()
        while true {
            let (batch, closed, waiting) = inbox.withLockedValue { box -> ([Data], Bool, CheckedContinuation<Void, Never>?) in
                let n = min(max, box.messages.count)
                let taken = Array(box.messages.prefix(n))
                box.messages.removeFirst(n)
                box.bytes -= taken.reduce(0) { $0 + $1.count }
                var waiting: CheckedContinuation<Void, Never>?
                if box.bytes <= Self.inboxBytes {
                    waiting = box.waiting
                    box.waiting = nil
                }
                return (taken, box.closed, waiting)
            }
            waiting?.resume()
            if !batch.isEmpty { return batch }
            if closed { return nil }
            if await iterator.next() == nil { return nil }
        }
    }

    /// Sends one message; the future completes when it is written to the socket.
    @discardableResult
    public func send<T: Encodable>(_ message: T) -> EventLoopFuture<Void> {
        guard let data = try? Wire.encode(message) else { return channel.eventLoop.makeFailedFuture(TransportError("cannot encode message")) }
        if let outbox {
            let written = channel.eventLoop.makePromise(of: Void.self)
            if case .terminated = outbox.yield(Outgoing(data: data, written: written)) {
                written.fail(TransportError("the agent channel is closed"))
            }
            return written.futureResult
        }
        // The frames of one message go out together, in the order of the calls, from any thread.
        let written = channel.eventLoop.makePromise(of: Void.self)
        let frames = Self.frames(data, masked: isClient)
        let channel = self.channel
        channel.eventLoop.execute {
            for frame in frames.dropLast() { channel.write(frame, promise: nil) }
            channel.writeAndFlush(frames[frames.count - 1], promise: written)
        }
        return written.futureResult
    }

    /// A message as frames of at most `Wire.maxFrameBytes`: a first frame, then continuations.
    static func frames(_ data: Data, masked: Bool) -> [WebSocketFrame] {
        var frames: [WebSocketFrame] = []
        var start = data.startIndex
        repeat {
            let end = min(data.endIndex, start + Wire.maxFrameBytes)
            var buffer = ByteBufferAllocator().buffer(capacity: end - start)
            buffer.writeBytes(data[start..<end])
            frames.append(
                WebSocketFrame(fin: end == data.endIndex, opcode: frames.isEmpty ? .text : .continuation, maskKey: masked ? .random() : nil, data: buffer))
            start = end
        } while start < data.endIndex
        return frames
    }

    /// Closes the channel. On the server, messages already sent go out first, then the WebSocket
    /// closing handshake.
    public func close() {
        if let outbox {
            outbox.finish()
        } else {
            channel.close(promise: nil)
        }
    }
}

extension AgentSocket {
    /// Serves the server's end of one agent channel until either side closes it: messages (at most
    /// `maxMessage` bytes each; a longer one closes the channel with "message too big") go to the
    /// inbox, and what the server sends is written in order. `opened` is told of the socket first.
    static func serve(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: Channel, certificateName: String?, remote: String,
        maxMessage: Int, opened: @Sendable (AgentSocket) -> Void
    ) async throws {
        let (outgoing, outbox) = AsyncStream.makeStream(of: Outgoing.self)
        let socket = AgentSocket(channel: channel, certificateName: certificateName, remote: remote, outbox: outbox)
        opened(socket)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // The peer is gone (or broke the protocol): nothing more goes out, then the server hears of it.
                defer {
                    socket.close()
                    socket.closed()
                }
                for try await message in inbound.messages(maxSize: maxMessage) {
                    switch message {
                    case .text(let text): await socket.deliverWaitingForRoom(Data(text.utf8))
                    case .binary(let bytes): await socket.deliverWaitingForRoom(Data(bytes.readableBytesView))
                    }
                }
            }
            for await item in outgoing {
                do {
                    var buffer = channel.allocator.buffer(capacity: item.data.count)
                    buffer.writeBytes(item.data)
                    try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: buffer)))
                    item.written.succeed()
                } catch {
                    item.written.fail(error)
                    socket.close()
                }
            }
            // The server is done with the channel (or the peer left): stop reading too.
            group.cancelAll()
            socket.closed()
            try await group.waitForAll()
        }
    }
}

/// Reassembles WebSocket frames into messages for the agent's `AgentSocket`; answers pings; closes on close.
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
