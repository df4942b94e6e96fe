import Fleet
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A hostile peer for the hardening tests: a plain TCP or TLS connection to a real server that
/// sends what the test says, keeps what comes back, and notes when the server closes it.
final class RawPeer: Sendable {
    let channel: Channel
    private let inbox: NIOLockedValueBox<[UInt8]>
    private let closed: NIOLockedValueBox<Date?>

    /// Raw peers have their own event loop, so that what they receive does not delay the test's
    /// API client (on the shared one).
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Bytes received in all, and how many times "}\n" (the end of a JSON line) came.
    var totals: (bytes: Int, jsonLines: Int) { counts.withLockedValue { ($0.bytes, $0.lines) } }
    private var counts: NIOLockedValueBox<Counts> { keeper.counts }
    private let keeper: KeeperState

    private init(channel: Channel, inbox: NIOLockedValueBox<[UInt8]>, closed: NIOLockedValueBox<Date?>, keeper: KeeperState) {
        self.keeper = keeper
        self.channel = channel
        self.inbox = inbox
        self.closed = closed
    }

    /// Connects to 127.0.0.1:`port`, through TLS when `tls` is given (with or without a client
    /// certificate), from the loopback address `from` if given (another address of 127/8 keeps a
    /// test's per-address counts apart from other programs on the machine).
    static func connect(port: Int, tls: NIOSSLContext?, from: String? = nil) async throws -> RawPeer {
        let inbox = NIOLockedValueBox<[UInt8]>([])
        let closed = NIOLockedValueBox<Date?>(nil)
        let state = KeeperState()
        var bootstrap = ClientBootstrap(group: group)
        if let from { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: from, port: 0)) }
        let channel = try await bootstrap
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try channel.pipeline.syncOperations.addHandler(Keeper(inbox: inbox, state: state))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        channel.closeFuture.whenComplete { _ in closed.withLockedValue { $0 = Date() } }
        return RawPeer(channel: channel, inbox: inbox, closed: closed, keeper: state)
    }

    /// Sends text as it is.
    func send(_ text: String) async throws {
        try await send(ByteBuffer(string: text))
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    /// Sends `total` bytes of body in chunks while the server lets it; returns how many went out.
    func sendBody(total: Int, chunk: Int = 1 << 20) async -> Int {
        let block = ByteBuffer(repeating: UInt8(ascii: "x"), count: chunk)
        var sent = 0
        while sent < total {
            do {
                try await channel.writeAndFlush(block).get()
            } catch {
                break
            }
            sent += chunk
        }
        return sent
    }

    /// Everything received so far, as text.
    var received: String { String(decoding: inbox.withLockedValue { $0 }, as: UTF8.self) }

    /// When the connection closed, nil while open.
    var closedAt: Date? { closed.withLockedValue { $0 } }

    /// Waits until the server closes the connection (true) or `seconds` pass (false).
    func waitClosed(within seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while closedAt == nil, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return closedAt != nil
    }

    /// Waits until what was received contains `text` (true) or `seconds` pass (false).
    func waitReceived(_ text: String, within seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !received.contains(text), Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return received.contains(text)
    }

    func close() {
        channel.close(promise: nil)
    }

    struct Counts {
        var bytes = 0
        var lines = 0
        var lastByte: UInt8 = 0
    }

    final class KeeperState: Sendable {
        let counts = NIOLockedValueBox(Counts())
    }

    /// Keeps the first MiB the server sends, and counts all of it.
    private final class Keeper: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let inbox: NIOLockedValueBox<[UInt8]>
        let state: KeeperState
        init(inbox: NIOLockedValueBox<[UInt8]>, state: KeeperState) {
            self.inbox = inbox
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            inbox.withLockedValue { if $0.count < 1 << 20 { $0.append(contentsOf: buffer.readableBytesView) } }
            // memchr, not a Swift loop: this runs for every byte of large answers in a debug build.
            let (lines, last) = buffer.withUnsafeReadableBytes { bytes -> (Int, UInt8?) in
                guard let base = bytes.baseAddress, !bytes.isEmpty else { return (0, nil) }
                var lines = 0
                var offset = 0
                while offset < bytes.count, let found = memchr(base + offset, 10, bytes.count - offset) {
                    let index = base.distance(to: UnsafeRawPointer(found))
                    let before = index > 0 ? bytes[index - 1] : nil
                    if before == UInt8(ascii: "}") || (before == nil && state.counts.withLockedValue { $0.lastByte } == UInt8(ascii: "}")) { lines += 1 }
                    offset = index + 1
                }
                return (lines, bytes[bytes.count - 1])
            }
            state.counts.withLockedValue { counts in
                counts.bytes += buffer.readableBytes
                counts.lines += lines
                if let last { counts.lastByte = last }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}
