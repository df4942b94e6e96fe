import Fleet
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import Testing

/// What an unauthenticated peer can make the server do: each test plays the attack against a real
/// `quarry server` process over real TLS, and checks the server's answer, timing and memory.
extension FleetTests {
    static func anonymousTLS(_ fleet: FleetHarness) throws -> NIOSSLContextBox {
        NIOSSLContextBox(try TLSSetup.clientContext(caCertificate: serverCA(fleet), identity: nil))
    }

    /// Eight anonymous POSTs announcing 250 MiB each: every one is answered 401 at once, the body
    /// is never read (the connection is closed about a second later), and the server's memory stays
    /// where it was. Before, each body was read into memory first (8 × 250 MiB).
    @Test func anonymousLargePostsAreRefusedBeforeTheirBodiesAreRead() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        _ = try await fleet.get("/whoami", as: [String: String].self)
        let before = fleet.serverRSS()
        let tls = try Self.anonymousTLS(fleet)
        let total = 250 << 20
        let started = Date()
        let sampler = RSSSampler(fleet)
        let outcomes = try await withThrowingTaskGroup(of: (answered: Double, closed: Double, sent: Int, head: String).self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let peer = try await RawPeer.connect(port: fleet.port, tls: tls.context)
                    let opened = Date()
                    try await peer.send("POST /api/v1/hunts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(total)\r\n\r\n")
                    async let sent = peer.sendBody(total: total)
                    let answered = await peer.waitReceived("\r\n\r\n", within: 10) ? Date().timeIntervalSince(opened) : -1
                    let closed = await peer.waitClosed(within: 10) ? (peer.closedAt ?? Date()).timeIntervalSince(opened) : -1
                    let bytes = await sent
                    peer.close()
                    return (answered, closed, bytes, String(peer.received.prefix(while: { $0 != "\r" })))
                }
            }
            var all: [(answered: Double, closed: Double, sent: Int, head: String)] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        let peak = sampler.stop()
        let elapsed = Date().timeIntervalSince(started)
        print("8 anonymous 250 MiB POSTs: server RSS \(before / 1024) MiB before, \(peak / 1024) MiB after; answered in \(outcomes.map { String(format: "%.3f", $0.answered) }) s, closed after \(outcomes.map { String(format: "%.2f", $0.closed) }) s, client wrote \(outcomes.map { $0.sent >> 20 }) MiB before the close; all done in \(String(format: "%.2f", elapsed)) s")
        for outcome in outcomes {
            #expect(outcome.head.hasPrefix("HTTP/1.1 401"), "\(outcome.head)")
            #expect(outcome.answered >= 0 && outcome.answered < 2)
            #expect(outcome.closed >= 0 && outcome.closed < 5)
            #expect(outcome.sent < total)
        }
        #expect(peak - before < 48 << 10, "server RSS grew from \(before) KiB to \(peak) KiB")
        // The server is still fine.
        #expect(try await fleet.get("/whoami", as: [String: String].self)["user"] == "admin")
    }

    /// An authenticated POST over its route's cap is refused with 413 from its declared length, and
    /// a body without a declared length is refused once it passes the cap.
    @Test func bodiesOverTheirRoutesCapAreRefused() async throws {
        let fleet = try FleetHarness(limits: { $0.maxRequestBodyBytes = 1 << 10 })
        try await fleet.startServer()
        let key = try ConfigFile.load(APIConfig.self, from: fleet.apiConfig).apiKey
        let tls = try Self.anonymousTLS(fleet)
        let declared = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        try await declared.send("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: \(10 << 20)\r\n\r\n")
        #expect(await declared.waitReceived("\r\n\r\n", within: 5))
        #expect(declared.received.hasPrefix("HTTP/1.1 413"))
        let chunked = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        try await chunked.send("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + String(repeating: "x", count: 2048) + "\r\n")
        #expect(await chunked.waitReceived("\r\n\r\n", within: 5))
        #expect(chunked.received.hasPrefix("HTTP/1.1 413"), "\(chunked.received.prefix(200))")
        // The collect and hunts routes take more (artifact parameters can be long), the others not.
        #expect(try await fleet.get("/whoami", as: [String: String].self)["role"] == "administrator")
    }

    /// Idle raw TCP, idle TLS, an idle keep-alive HTTP connection and an idle anonymous WebSocket
    /// are all closed within their timeouts (before, they stayed open for as long as the peer liked).
    @Test func idleConnectionsAreClosed() async throws {
        let fleet = try FleetHarness(limits: {
            $0.handshakeTimeoutSeconds = 2
            $0.idleTimeoutSeconds = 2
            $0.enrolmentTimeoutSeconds = 2
        })
        try await fleet.startServer()
        let tls = try Self.anonymousTLS(fleet)
        let tcp = try await RawPeer.connect(port: fleet.port, tls: nil)
        let handshaken = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        let halfHead = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        try await halfHead.send("GET /metrics HTTP/1.1\r\nHost: x\r\n")
        let keptAlive = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        try await keptAlive.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await keptAlive.waitReceived("quarry_", within: 5))
        let socket = try await Connector.openAgentChannel(url: Self.url(fleet), tls: tls.context, group: MultiThreadedEventLoopGroup.singleton)
        let webSocketClosed = NIOLockedValueBox<Date?>(nil)
        socket.channel.closeFuture.whenComplete { _ in webSocketClosed.withLockedValue { $0 = Date() } }
        let opened = Date()
        for (name, peer) in [("raw TCP", tcp), ("TLS", handshaken), ("half a request head", halfHead), ("keep-alive HTTP", keptAlive)] {
            #expect(await peer.waitClosed(within: 8), "\(name) connection still open after 8 s")
            if let closed = peer.closedAt { print("idle \(name) connection closed after \(String(format: "%.2f", closed.timeIntervalSince(opened))) s") }
        }
        try await fleet.waitUntil(timeout: 8, "idle WebSocket closed") { webSocketClosed.withLockedValue { $0 } != nil }
        print("idle anonymous WebSocket closed after \(String(format: "%.2f", (webSocketClosed.withLockedValue { $0 } ?? Date()).timeIntervalSince(opened))) s")
    }

    /// A request that arrives after the first-request deadline or the idle timeout is not carried
    /// out, even while the closing TLS connection waits for the peer's close_notify. Browsers keep
    /// pre-opened sockets in a pool and send on them late; before, the server ran such a request,
    /// closed without answering, the browser sent it again on a new connection, and a sign-out ran
    /// twice (the second refused for want of a session).
    @Test func aRequestOnAClosingConnectionIsNotCarriedOut() async throws {
        let fleet = try FleetHarness(limits: {
            $0.handshakeTimeoutSeconds = 1
            $0.idleTimeoutSeconds = 1
        })
        try await fleet.startServer()
        let tls = try Self.anonymousTLS(fleet)
        let key = try ConfigFile.load(APIConfig.self, from: fleet.apiConfig).apiKey
        func addUser(_ name: String) -> String {
            let body = #"{"name":"\#(name)","role":"reader"}"#
            return "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        // Like a pooled browser socket: handshaken (and, the second, used once), then not read
        // from, so the server's close_notify at its deadline stays unseen and unanswered.
        let unused = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        let used = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        try await used.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await used.waitReceived("quarry_", within: 5))
        for peer in [unused, used] { try await peer.channel.setOption(ChannelOptions.autoRead, value: false).get() }
        try await Task.sleep(for: .milliseconds(2000))
        for (peer, name) in [(unused, "late-unused"), (used, "late-idle")] {
            try? await peer.send(addUser(name))
            try? await peer.channel.setOption(ChannelOptions.autoRead, value: true).get()
        }
        for peer in [unused, used] { #expect(await peer.waitClosed(within: 8)) }
        let users = try await fleet.get("/users", as: [UserView].self).map(\.name)
        #expect(!users.contains { $0.hasPrefix("late") }, "a request sent after a deadline was carried out: \(users)")
        // In time, the same request is answered.
        let prompt = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        try await prompt.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await prompt.waitReceived("quarry_", within: 5))
    }

    /// Past the per-address limit of connections without a certificate, and past max_connections,
    /// new connections are closed as they arrive; the ones already open are not disturbed. (Other
    /// programs on the machine may connect to the test's port too: the per-address part connects
    /// from 127.0.0.2, and the total part allows for strangers holding a slot for a moment.)
    @Test func connectionsOverTheLimitsAreRefused() async throws {
        let perAddress = try FleetHarness(limits: { $0.maxUnverifiedConnectionsPerAddress = 5 })
        try await perAddress.startServer()
        // Six at once: the server may take them in any order, so any one of them is the sixth.
        var peers: [RawPeer] = []
        for _ in 0..<6 { peers.append(try await RawPeer.connect(port: perAddress.port, tls: nil, from: "127.0.0.2")) }
        try await Task.sleep(for: .seconds(1))
        let held = peers.filter { $0.closedAt == nil }
        #expect(held.count == 5, "\(6 - held.count) of 6 connections from one address refused, expected 1")
        // Other addresses are not affected.
        #expect(try await perAddress.get("/whoami", as: [String: String].self)["user"] == "admin")
        held.forEach { $0.close() }
        // Once those are gone, the address may connect again.
        try await perAddress.waitUntil(timeout: 10, "127.0.0.2 accepted again") {
            let peer = try await RawPeer.connect(port: perAddress.port, tls: nil, from: "127.0.0.2")
            defer { peer.close() }
            return await !peer.waitClosed(within: 0.5)
        }
        let metrics = try await perAddress.api().metrics()
        let refused = metrics.split(separator: "\n").first { $0.hasPrefix("quarry_connections_refused_total ") }
        #expect((refused?.split(separator: " ").last.flatMap { Double($0) } ?? 0) >= 1, "\(metrics)")

        let total = try FleetHarness(limits: {
            $0.maxConnections = 4
            $0.maxUnverifiedConnectionsPerAddress = 0
        })
        try await total.startServer()
        var attempts: [RawPeer] = []
        for _ in 0..<6 { attempts.append(try await RawPeer.connect(port: total.port, tls: nil)) }
        try await Task.sleep(for: .seconds(1))
        let open = attempts.filter { $0.closedAt == nil }
        #expect(open.count == 4, "\(open.count) of 6 connections open with max_connections 4")
        // Those stay open, and a slot comes back when one closes.
        try await Task.sleep(for: .seconds(1))
        #expect(open.allSatisfy { $0.closedAt == nil })
        open.forEach { $0.close() }
        try await total.waitUntil(timeout: 10, "a connection accepted again") {
            let peer = try await RawPeer.connect(port: total.port, tls: nil)
            defer { peer.close() }
            return await !peer.waitClosed(within: 0.5)
        }
    }

    /// An anonymous peer announcing a 64 MiB WebSocket frame is cut off at the frame's header, and
    /// an enrolment message over the enrolment cap is refused; the server's memory does not move.
    @Test func largeAnonymousWebSocketFramesAreRefused() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        _ = try await fleet.get("/whoami", as: [String: String].self)
        let before = fleet.serverRSS()
        let tls = try Self.anonymousTLS(fleet)
        let group = MultiThreadedEventLoopGroup.singleton
        // The upgrade by hand, then a frame header announcing 64 MiB, then the bytes as fast as they go.
        let peer = try await RawPeer.connect(port: fleet.port, tls: tls.context)
        try await peer.send(
            "GET /agent HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        #expect(await peer.waitReceived("\r\n\r\n", within: 5) && peer.received.hasPrefix("HTTP/1.1 101"))
        var header = ByteBuffer()
        header.writeInteger(UInt8(0x81))
        header.writeInteger(UInt8(0x80 | 127))
        header.writeInteger(UInt64(64 << 20))
        header.writeInteger(UInt32(0x1234_5678))
        let start = Date()
        try await peer.send(header)
        let sent = await peer.sendBody(total: 64 << 20)
        #expect(await peer.waitClosed(within: 5))
        let closedAfter = (peer.closedAt ?? Date()).timeIntervalSince(start)
        print("anonymous 64 MiB WebSocket frame: closed after \(String(format: "%.3f", closedAfter)) s, \(sent >> 20) MiB of it written by then; server RSS \(before / 1024) → \(fleet.serverRSS() / 1024) MiB")
        #expect(closedAfter < 2)
        #expect(sent < 64 << 20)
        // A fragmented message over the enrolment cap (64 KiB) ends the same way.
        let (_, csr) = try CertificateTools.makeKeyAndRequest(commonName: "test")
        let big = try await Connector.openAgentChannel(url: Self.url(fleet), tls: tls.context, group: group)
        big.send(AgentMessage.enroll(secret: "x", csr: csr, hostname: String(repeating: "h", count: 1 << 20), labels: []))
        #expect(await Self.nextMessage(big) == nil)
        #expect(fleet.serverRSS() - before < 32 << 10)
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(!audit.contains { $0.action == "enrol-refused" })
    }

    /// Twenty refused enrolments with long host names: each audited entry is cut to a few hundred
    /// bytes, and past the per-address rate of refusals no more are written at all.
    @Test func refusedEnrolmentsAddOnlyBoundedAuditEntries() async throws {
        let fleet = try FleetHarness(limits: { $0.enrolmentRefusalsPerMinutePerAddress = 5 })
        try await fleet.startServer()
        let tls = try Self.anonymousTLS(fleet)
        let (_, csr) = try CertificateTools.makeKeyAndRequest(commonName: "test")
        let hostname = String(repeating: "evil.example.", count: 4_000)
        for _ in 0..<20 {
            let socket = try await Connector.openAgentChannel(url: Self.url(fleet), tls: tls.context, group: MultiThreadedEventLoopGroup.singleton)
            socket.send(AgentMessage.enroll(secret: "wrong", csr: csr, hostname: hostname, labels: []))
            guard case .refused? = await Self.nextMessage(socket) else {
                Issue.record("a wrong secret was not refused")
                return
            }
        }
        let refused = try await fleet.get("/audit", as: [AuditEntry].self).filter { $0.action == "enrol-refused" }
        let bytes = refused.reduce(0) { $0 + $1.target.utf8.count + $1.details.utf8.count + $1.remote.utf8.count + $1.user.utf8.count }
        print("20 refused enrolments with \(hostname.utf8.count)-byte host names: \(refused.count) audited, \(bytes) bytes of audit fields")
        #expect(refused.count == 5)
        #expect(refused.allSatisfy { $0.target.utf8.count <= AuditEntry.maxFieldBytes && $0.target.hasPrefix("evil.example.") })
        #expect(try await fleet.api().metrics().contains("quarry_enrolments_refused_total 20"))
        #expect(fleet.log("server").utf8.count < 64 << 10)
    }
}

/// The highest resident memory of the server process seen every 20 ms while it runs.
final class RSSSampler: Sendable {
    private let peak = NIOLockedValueBox(0)
    private let task: Task<Void, Never>

    init(_ fleet: FleetHarness, index: Int = 0) {
        let peak = self.peak
        task = Task {
            while !Task.isCancelled {
                let now = fleet.serverRSS(index)
                peak.withLockedValue { $0 = max($0, now) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Stops sampling; the peak in KiB.
    func stop() -> Int {
        task.cancel()
        return peak.withLockedValue { $0 }
    }
}

/// An `NIOSSLContext` to hand to concurrent tasks (it is thread-safe; the box says so).
struct NIOSSLContextBox: @unchecked Sendable {
    let context: NIOSSLContext
    init(_ context: NIOSSLContext) { self.context = context }
}
