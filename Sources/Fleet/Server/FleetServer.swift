import Artifacts
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import QuarryConsole
import VQL

/// The fleet server: one TLS listener for agents (WebSocket at /agent) and analysts (JSON API),
/// the datastore, the upload store, the hunt scheduler and the metrics. The server keeps no state
/// that matters in memory: flows, hunts and results are in the datastore, so a restart (or, later,
/// another frontend on the same PostgreSQL) picks up where it was.
public final class FleetServer: Sendable {
    public let config: ServerConfig
    public let store: any FleetStore
    public let repository: ArtifactRepository
    let ca: CertificateAuthority
    let blobs: BlobStore
    public let metrics = FleetMetrics()
    let webhook: AlertWebhook
    let links = NIOLockedValueBox<[String: AgentSocket]>([:])
    /// The client monitoring table's artifacts as last read, and when entries left it.
    let monitoredCache = NIOLockedValueBox<MonitoredArtifacts>(MonitoredArtifacts())
    /// Collector uploads being received (token digests), one request at a time per token.
    let uploadsInProgress = NIOLockedValueBox<Set<String>>([])
    /// API keys looked up recently (short TTL; forgotten at once on removal or rotation here).
    let keys: APIKeyCache
    /// Which user read which upload lately, so slice-by-slice downloads are audited once each.
    let downloadAudits = RecentOnce(window: 600, capacity: 10_000)
    /// HTTP requests and anonymous upgrades per address.
    let requestLimiter: SharedRateLimiter
    /// Refused enrolments per address that are logged and audited.
    let refusalLimiter: SharedRateLimiter
    /// Refused connections that are logged (the metric counts them all).
    let refusalLog = SharedRateLimiter(.perMinute(10))
    let wake: AsyncStream<Void>.Continuation
    let wakeEvents: AsyncStream<Void>
    let listener = NIOLockedValueBox<FleetListener?>(nil)
    let log: @Sendable (String) -> Void
    let pipeline: IngestPipeline
    /// Scheduler passes so far (some work runs only every few passes).
    let schedulerPasses = NIOLockedValueBox(0)
    /// Signed-in browsers of the web console (in memory: a restart signs them out).
    let consoleSessions = ConsoleSessions()
    let consoleRenderer = ConsoleRenderer()
    /// Flows sent to an agent recently (so the delivery poll does not send them again and again).
    let delivered = NIOLockedValueBox<[String: Double]>([:])
    /// Held while a custom artifact is written and added, so that two writes of one name do not interleave.
    let artifactWrites = NIOLockedValueBox(0)
    /// Live readers of client event rows (`watch_monitoring`).
    public let eventReaders: EventBroadcaster
    /// The monitoring table as last pushed to agents (a change made anywhere is pushed by the scheduler).
    let pushedMonitoring = NIOLockedValueBox<[MonitoringEntry]?>(nil)
    /// The SERVER_EVENT artifacts of the server monitoring table running here.
    let serverMonitors: ServerMonitors

    func recentlyDelivered(_ flowId: String, now: Double) -> Bool {
        delivered.withLockedValue { sent in
            if sent.count > 50_000 { sent = sent.filter { now - $0.value < 30 } }
            guard let at = sent[flowId] else { return false }
            return now - at < 30
        }
    }

    /// `makeRegistry` gives the VQL names server event artifacts run with (the server's own
    /// plugins are added to them); by default the core library and the artifacts.
    public init(
        config: ServerConfig, store: any FleetStore, repository: ArtifactRepository,
        makeRegistry: (@Sendable (ArtifactRepository) -> Registry)? = nil, log: @escaping @Sendable (String) -> Void
    ) throws {
        self.config = config
        serverMonitors = ServerMonitors(makeRegistry: makeRegistry ?? { repository in
            let registry = CoreLibrary.registry()
            repository.install(into: registry)
            return registry
        })
        self.store = store
        self.repository = repository
        // Custom artifacts set through the API earlier.
        if FileManager.default.fileExists(atPath: config.dataDir + "/artifacts") { repository.load(directory: config.dataDir + "/artifacts") }
        self.ca = try CertificateAuthority(config.ca)
        self.blobs = try BlobStore(root: config.dataDir + "/uploads")
        self.log = log
        webhook = AlertWebhook(log: log)
        eventReaders = EventBroadcaster(log: log)
        keys = APIKeyCache(store: store, ttl: config.limits.apiKeyCacheSeconds)
        requestLimiter = SharedRateLimiter(.init(ratePerSecond: config.limits.requestsPerSecondPerAddress, burst: config.limits.requestBurstPerAddress))
        refusalLimiter = SharedRateLimiter(.perMinute(config.limits.enrolmentRefusalsPerMinutePerAddress))
        // SQLite has one writer; a server engine takes several transactions at once.
        self.pipeline = IngestPipeline(store: store, writers: config.datastore.hasPrefix("sqlite:") ? 1 : 4)
        (wakeEvents, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Binds the listener and starts the scheduler; returns the port bound (useful with port 0).
    public func start(group: EventLoopGroup) async throws -> Int {
        try await store.migrate()
        // Upload parts staged for flows that are over (or unknown) go; other frontends' stay.
        let swept = await blobs.sweep { flowId in (try? await self.store.flow(flowId)).flatMap { $0 }.map { !$0.state.isFinal } ?? false }
        if swept > 0 { log("removed \(swept) staged upload files of ended flows") }
        if let name = config.initialAdmin, let hash = config.initialAdminKeySHA256, try await store.users().isEmpty {
            try await store.addUser(UserRecord(name: name, role: .administrator, apiKeySHA256: hash, createdAt: Date().timeIntervalSince1970))
            log("added the first administrator, \(name)")
        }
        let settings = ListenerSettings(
            host: config.bindAddress, port: config.port,
            tls: try TLSSetup.serverConfiguration(identity: config.server, caCertificate: config.ca.certificate), limits: config.limits,
            refused: { [metrics, refusalLog, log] reason in
                metrics.refusedConnections.increment()
                // A flood of refusals must not flood the log: a few a minute are enough to say why.
                if case .allow = refusalLog.take("connection") { log("refused a connection: \(reason)") }
            }, log: log)
        let listener = try await FleetListener.start(settings, group: group, router: makeRouter(), webSocketRouter: makeAgentRouter())
        self.listener.withLockedValue { $0 = listener }
        Task { await self.schedulerLoop() }
        Task { await self.deliveryLoop() }
        await refreshServerMonitoring()
        log("listening on \(config.bindAddress):\(listener.port) (datastore \(config.datastore))")
        return listener.port
    }

    public func stop() async {
        let listener = self.listener.withLockedValue { $0 }
        serverMonitors.stopAll()
        await listener?.close()
        for socket in links.withLockedValue({ Array($0.values) }) { socket.close() }
        wake.finish()
    }

    /// Asks the scheduler to run now (a hunt was created, a client connected, …).
    func poke() { wake.yield() }

    var connectedClientIds: Set<String> { links.withLockedValue { Set($0.keys) } }

    // MARK: agent channel

    func serve(_ socket: AgentSocket) async {
        guard let clientId = socket.certificateName else {
            await enrol(socket)
            return
        }
        do {
            guard let client = try await store.client(clientId) else {
                socket.send(ServerMessage.refused(reason: "unknown client \(clientId)"))
                socket.close()
                return
            }
            if client.revoked {
                log("refused revoked client \(clientId) from \(socket.remote)")
                socket.send(ServerMessage.refused(reason: "client \(clientId) is revoked"))
                socket.close()
                return
            }
            try await store.touchClient(clientId, lastSeen: Date().timeIntervalSince1970)
        } catch {
            log("agent \(clientId): \(error)")
            socket.close()
            return
        }
        let previous = links.withLockedValue { links -> AgentSocket? in
            let old = links[clientId]
            links[clientId] = socket
            return old
        }
        previous?.close()
        metrics.connectedClients.set(Double(links.withLockedValue { $0.count }))
        log("agent \(clientId) connected from \(socket.remote)")
        poke()
        while let messages = await socket.receive() {
            var batches: [WireBatch] = []
            for data in messages {
                guard let (message, invalidText) = Self.decodeAgentMessage(data) else {
                    log("agent \(clientId): undecodable message (\(data.count) bytes)")
                    continue
                }
                if invalidText, case .batch(let batch) = message {
                    await reject(batch.flowId, seq: batch.seq, reason: "the batch is not valid UTF-8", clientId: clientId, socket: socket)
                    continue
                }
                switch message {
                case .batch(let batch): batches.append(batch)
                case .hello(let version, let queued, let dropped, let isolated):
                    log("agent \(clientId): \(version), \(queued) batches queued\(dropped > 0 ? ", \(dropped) lost before acknowledgement (queue bound or damaged queue files)" : "")")
                    if let isolated { await noteIsolation(clientId: clientId, isolated: isolated, source: "agent") }
                    await deliverScheduled(to: clientId, socket: socket)
                    await pushMonitoring(to: clientId, socket: socket)
                case .enroll:
                    socket.send(ServerMessage.refused(reason: "already enrolled as \(clientId)"))
                }
            }
            if !batches.isEmpty { await ingest(batches, from: clientId, socket: socket) }
        }
        let removed = links.withLockedValue { links -> Bool in
            guard links[clientId] === socket else { return false }
            links[clientId] = nil
            return true
        }
        if removed {
            try? await store.touchClient(clientId, lastSeen: Date().timeIntervalSince1970)
            log("agent \(clientId) disconnected")
        }
        metrics.connectedClients.set(Double(links.withLockedValue { $0.count }))
    }

    /// A connection without a certificate may only enrol: check the secret, sign the CSR with a new
    /// client ID, record the client and schedule Generic.Client.Info for its first connection. The
    /// enrolment must come within `enrolment_timeout_seconds`; what the peer sends is cut to bounds
    /// before it is logged or stored, and refusals are logged and audited only up to a rate per address.
    private func enrol(_ socket: AgentSocket) async {
        defer { socket.close() }
        let first = await withTimeout(seconds: config.limits.enrolmentTimeoutSeconds) { await socket.receive(max: 1)?.first }
        guard let first, let message = try? Wire.decode(AgentMessage.self, from: first),
            case .enroll(let secret, let csr, let sentHostname, let sentLabels) = message
        else {
            _ = try? await socket.send(ServerMessage.refused(reason: "a connection without a client certificate may only enrol")).get()
            return
        }
        let hostname = AuditEntry.clip(sentHostname, Self.maxHostnameBytes)
        guard constantTimeEqual(secret, config.enrollmentSecret) else {
            metrics.refusedEnrolments.increment()
            if case .allow = refusalLimiter.take(PeerAddress.of(socket.channel)) {
                log("enrolment refused from \(socket.remote): wrong secret (host name \(hostname))")
                try? await store.audit(AuditEntry(time: Date().timeIntervalSince1970, user: "-", action: "enrol-refused", target: hostname, details: "{}", remote: socket.remote))
            }
            _ = try? await socket.send(ServerMessage.refused(reason: "wrong enrolment secret")).get()
            return
        }
        let labels = sentLabels.prefix(Self.maxEnrolmentLabels).map { AuditEntry.clip($0, Self.maxHostnameBytes) }
        do {
            let clientId = Identifiers.client()
            let certificate = try ca.signClientRequest(csr, clientId: clientId)
            let now = Date().timeIntervalSince1970
            var record = ClientRecord(clientId: clientId, enrolledAt: now, certificateSerial: try CertificateTools.serial(pem: certificate))
            record.hostname = hostname
            try await store.addClient(record)
            if !labels.isEmpty { try await store.labelClient(clientId, add: labels, remove: []) }
            let flow = FlowRecord(
                flowId: Identifiers.flow(), clientId: clientId, request: CollectionRequest(artifacts: ["Generic.Client.Info"], timeout: 120),
                creator: "server", createdAt: now)
            try await store.addFlow(flow)
            metrics.enrolments.increment()
            log("enrolled \(clientId) (\(hostname)) from \(socket.remote)")
            _ = try? await socket.send(ServerMessage.enrolled(clientId: clientId, certificate: certificate)).get()
        } catch {
            log("enrolment from \(socket.remote) failed: \(AuditEntry.clip(String(describing: error), AuditEntry.maxFieldBytes))")
            _ = try? await socket.send(ServerMessage.refused(reason: "enrolment failed: \(AuditEntry.clip(String(describing: error), AuditEntry.maxFieldBytes))")).get()
        }
    }

    /// Most bytes of a host name or label an enrolling agent may set; longer ones are cut.
    static let maxHostnameBytes = 255
    /// Most labels an enrolling agent may ask for.
    static let maxEnrolmentLabels = 32

    /// Sends every flow still waiting for this client (again, after a reconnect; the agent ignores
    /// flows it already has).
    func deliverScheduled(to clientId: String, socket: AgentSocket) async {
        guard let flows = try? await store.scheduledFlows(clientId: clientId) else { return }
        for flow in flows where !flow.cancelRequested { deliver(flow, to: socket) }
    }

    /// Sends a collection request. A fan-out passes the request's `definitions` once for all its flows.
    func deliver(_ flow: FlowRecord, to socket: AgentSocket? = nil, definitions known: [String]? = nil) {
        guard let socket = socket ?? links.withLockedValue({ $0[flow.clientId] }) else { return }
        delivered.withLockedValue { $0[flow.flowId] = Date().timeIntervalSince1970 }
        var request = flow.request
        if request.timeout == nil { request.timeout = config.defaultTimeoutSeconds }
        socket.send(ServerMessage.collect(flowId: flow.flowId, request: request, definitions: known ?? definitions(for: request.artifacts)))
    }

    /// YAML of requested artifacts (and what they call) that agents may not have built in.
    func definitions(for names: [String]) -> [String] {
        var texts: [String] = []
        var seen = Set<String>()
        var pending = names
        while let name = pending.popLast() {
            guard seen.insert(name).inserted, let artifact = repository.artifact(named: name) else { continue }
            if !artifact.origin.hasPrefix("builtin") { texts.append(artifact.text) }
            pending.append(contentsOf: ArtifactRepository.dependencies(of: artifact))
        }
        return texts
    }

    func sendCancel(_ flow: FlowRecord) {
        links.withLockedValue { $0[flow.clientId] }?.send(ServerMessage.cancel(flowId: flow.flowId))
    }
}

/// New identifiers in Velociraptor's style: C.<16 hex> for clients, F.<16 hex> for flows, H.<8 hex> for hunts.
public enum Identifiers {
    static func hex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
    public static func client() -> String { "C." + hex(8) }
    public static func flow() -> String { "F." + hex(8) }
    public static func hunt() -> String { "H." + hex(4) }
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<x.count { difference |= x[i] ^ y[i] }
    return difference == 0
}

/// What event streams agents may send: the monitoring table's artifacts, with a grace for removed ones.
struct MonitoredArtifacts {
    var listed = Set<String>()
    var removed: [String: Double] = [:]
    /// When the table was read (0: never, read it at the next batch).
    var read = 0.0
}
