import Artifacts
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import PrivateFiles
import VQL

/// The endpoint agent. Enrols once (key pair + CSR + secret), then keeps one mutually
/// authenticated WebSocket to the server, reconnecting with exponential backoff and jitter. It runs
/// collection requests with the same collector as `quarry artifacts collect`, and sends the results
/// back as numbered batches through an on-disk queue, deleting each only when the server
/// acknowledges it. A watchdog holds it to its own memory ceiling and CPU budget: a collection over
/// them is cancelled with the reason, and an artifact cancelled repeatedly is refused for a while.
///
/// State directory (0700): client.key, client.crt, client_id (0600); queue/ (unacknowledged
/// batches); flows/ (one file per flow it accepted: its request, state and next sequence number);
/// work/ (the containers of running collections); tmp/ (every temporary file the agent's plugins
/// make, private, emptied at start). Nothing the agent collects is written outside this folder.
public final class FleetAgent: Sendable {
    let config: ClientConfig
    let stateDir: String
    let group: EventLoopGroup
    let queue: ResultQueue
    let makeRegistry: @Sendable (ArtifactRepository) -> Registry
    let log: @Sendable (String) -> Void
    /// Called on connecting, on every message from the server and every 5 s while connected: the
    /// heartbeat of the isolation dead man's switch (isolation lifts itself when it stops).
    let serverContact: @Sendable () -> Void
    /// Whether network isolation is in force on this host, told to the server at each connection.
    let isolationState: @Sendable () -> Bool?
    let socket = NIOLockedValueBox<AgentSocket?>(nil)
    let sender = NIOLockedValueBox(SenderState())
    let running = NIOLockedValueBox<[String: CancellationFlag]>([:])
    let flowLock = NIOLock()
    /// Flows whose numbering was checked against the queue since this process started.
    let reconciledFlows = NIOLockedValueBox<Set<String>>([])
    /// The event artifacts of the monitoring table running now, by name (`AgentMonitoring.swift`).
    let monitors = NIOLockedValueBox<[String: RunningMonitor]>([:])
    /// Event rows on their way to batches.
    let eventRows: EventRowBuffer
    /// Holds the agent to its memory ceiling and CPU budget (`limits:` in client.yaml).
    let watchdog: WatchdogSampler
    /// Which of the configured frontends the agent uses now; it moves on after a failed connection.
    let urlIndex = NIOLockedValueBox(0)
    var serverURL: String {
        let urls = config.serverURLs
        return urls[urlIndex.withLockedValue { $0 } % urls.count]
    }
    /// Batches sent but not yet acknowledged, at most, and their bytes at most (upload parts are
    /// 2 MiB each: the count alone would let 170 MB wait in the send buffers).
    static let window = 64
    static let windowBytes = 16 << 20

    struct SenderState {
        var lastSent: UInt64 = 0
        /// Sizes of the batches sent and not acknowledged, by flow and seq.
        var unacknowledged: [String: Int] = [:]
        var inFlightBytes = 0

        static func key(_ flowId: String, _ seq: Int) -> String { flowId + "#\(seq)" }
    }

    public init(
        config: ClientConfig, stateDir: String, group: EventLoopGroup, makeRegistry: @escaping @Sendable (ArtifactRepository) -> Registry,
        log: @escaping @Sendable (String) -> Void, serverContact: @escaping @Sendable () -> Void = {},
        isolationState: @escaping @Sendable () -> Bool? = { nil }
    ) throws {
        self.serverContact = serverContact
        self.isolationState = isolationState
        self.config = config
        self.stateDir = stateDir
        self.group = group
        self.makeRegistry = makeRegistry
        self.log = log
        watchdog = WatchdogSampler(limits: config.limits, log: log)
        let reference = AgentReference()
        eventRows = EventRowBuffer { artifact, source, rows in reference.agent?.sendEvents(artifact: artifact, source: source, rows: rows) }
        for sub in ["", "/flows", "/work", "/tmp"] {
            try FileManager.default.createDirectory(atPath: stateDir + sub, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // A folder that existed before keeps its mode: make it private too.
            chmod(stateDir + sub, 0o700)
        }
        try? FileManager.default.removeItem(atPath: stateDir + "/tmp")
        try FileManager.default.createDirectory(atPath: stateDir + "/tmp", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        PrivateFile.temporaryRoot = stateDir + "/tmp"
        queue = try ResultQueue(directory: stateDir + "/queue", maxBytes: config.maxQueueBytes)
        reportDamagedBatches()
        recoverInterruptedFlows()
        watchdog.start()
        reference.agent = self
        Task { [eventRows] in await eventRows.run() }
        resumeMonitoring()
    }

    /// The client ID once enrolled.
    public var clientId: String? {
        (try? String(contentsOfFile: stateDir + "/client_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs until the task is cancelled: enrol if needed, connect, serve, back off, repeat.
    public func run() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let identity = try await enrolledIdentity()
                let tls = try TLSSetup.clientContext(caCertificate: config.caCertificate, identity: identity)
                let socket = try await Connector.openAgentChannel(url: serverURL, tls: tls, group: group)
                failures = 0
                await serve(socket)
            } catch {
                log("agent: \(serverURL): \(error)")
            }
            failures += 1
            urlIndex.withLockedValue { $0 += 1 }
            // Exponential backoff with full jitter: 0.5 s doubling to 60 s.
            let ceiling = min(60.0, 0.5 * pow(2.0, Double(min(failures, 8))))
            let delay = Double.random(in: ceiling / 2...ceiling)
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
        }
    }

    private func enrolledIdentity() async throws -> PEMIdentity {
        let keyPath = stateDir + "/client.key", certificatePath = stateDir + "/client.crt"
        if let key = try? String(contentsOfFile: keyPath, encoding: .utf8), let certificate = try? String(contentsOfFile: certificatePath, encoding: .utf8) {
            return PEMIdentity(certificate: certificate, privateKey: key)
        }
        let hostname = ProcessInfo.processInfo.hostName
        let (key, request) = try CertificateTools.makeKeyAndRequest(commonName: hostname)
        let tls = try TLSSetup.clientContext(caCertificate: config.caCertificate, identity: nil)
        let socket = try await Connector.openAgentChannel(url: serverURL, tls: tls, group: group)
        defer { socket.close() }
        try await socket.send(AgentMessage.enroll(secret: config.enrollmentSecret, csr: request, hostname: hostname, labels: config.labels)).get()
        guard let reply = await socket.receive(max: 1)?.first, let message = try? Wire.decode(ServerMessage.self, from: reply) else {
            throw TransportError("enrolment: the server closed the connection without an answer")
        }
        switch message {
        case .enrolled(let clientId, let certificate):
            try ConfigFile.writeSecret(Data(key.utf8), to: keyPath)
            try ConfigFile.writeSecret(Data(certificate.utf8), to: certificatePath)
            try ConfigFile.writeSecret(Data((clientId + "\n").utf8), to: stateDir + "/client_id")
            log("enrolled as \(clientId)")
            return PEMIdentity(certificate: certificate, privateKey: key)
        case .refused(let reason):
            throw TransportError("enrolment refused: \(reason)")
        default:
            throw TransportError("enrolment: unexpected answer")
        }
    }

    private func serve(_ socket: AgentSocket) async {
        self.socket.withLockedValue { $0 = socket }
        sender.withLockedValue { $0 = SenderState() }
        // Every batch lost so far, the unattributed ones (damaged files whose flow is unknown) included.
        socket.send(AgentMessage.hello(version: Wire.version, queuedBatches: queue.count, droppedBatches: queue.totalDropped, isolated: isolationState()))
        log("connected to \(serverURL) as \(clientId ?? "?")")
        pump()
        serverContact()
        let contact = serverContact
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                contact()
            }
        }
        defer { ticker.cancel() }
        while let messages = await socket.receive() {
            serverContact()
            for data in messages {
                guard let message = try? Wire.decode(ServerMessage.self, from: data) else {
                    log("undecodable message from the server (\(data.count) bytes)")
                    continue
                }
                handle(message)
            }
        }
        self.socket.withLockedValue { if $0 === socket { $0 = nil } }
        log("disconnected from \(serverURL)")
    }

    private func handle(_ message: ServerMessage) {
        switch message {
        case .collect(let flowId, let request, let definitions):
            accept(flowId: flowId, request: request, definitions: definitions)
        case .cancel(let flowId):
            if let flag = running.withLockedValue({ $0[flowId] }) {
                log("flow \(flowId): cancel requested by the server")
                flag.cancel()
            }
        case .ack(let flowId, let seq, let rejected):
            if let rejected { log("batch \(flowId)#\(seq) rejected by the server: \(rejected)") }
            queue.acknowledge(flowId: flowId, seq: seq)
            sender.withLockedValue { state in
                if let size = state.unacknowledged.removeValue(forKey: SenderState.key(flowId, seq)) { state.inFlightBytes -= size }
            }
            pump()
        case .monitoring(let entries, let definitions):
            applyMonitoring(MonitoringFile(entries: entries, definitions: definitions))
        case .refused(let reason):
            log("server refused the connection: \(reason)")
        case .enrolled:
            break
        }
    }

    /// Sends queued batches in order while fewer than `window` batches and `windowBytes` bytes are
    /// unacknowledged (one batch always goes, whatever its size).
    func pump() {
        sender.withLockedValue { state in
            guard let socket = self.socket.withLockedValue({ $0 }) else { return }
            let room = Self.window - state.unacknowledged.count
            guard room > 0 else { return }
            for entry in queue.entries(after: state.lastSent, limit: room) {
                if !state.unacknowledged.isEmpty && state.inFlightBytes + entry.size > Self.windowBytes { break }
                state.lastSent = entry.number
                guard let batch = queue.load(entry) else { continue }
                let key = SenderState.key(batch.flowId, batch.seq)
                if state.unacknowledged[key] == nil {
                    state.unacknowledged[key] = entry.size
                    state.inFlightBytes += entry.size
                }
                socket.send(AgentMessage.batch(batch))
            }
        }
    }

    /// Appends a batch for a flow, advancing the flow's persisted sequence number first.
    /// The batch is written to the queue before the flow's next number is saved: a kill between
    /// the two leaves a queued batch whose number the saved record does not cover yet, so the first
    /// batch of a flow after a start numbers on from the highest queued one too. (Saving first, as
    /// before, lost the batch being written and left a gap in the numbers.)
    func enqueue(flowId: String, _ payload: WirePayload) {
        flowLock.withLock {
            guard var record = FlowFile.load(stateDir: stateDir, flowId: flowId) else { return }
            var seq = record.nextSeq
            if reconciledFlows.withLockedValue({ $0.insert(flowId).inserted }), let queued = queue.highestSeq(flowId: flowId) {
                seq = max(seq, queued + 1)
            }
            do {
                try queue.append(WireBatch(flowId: flowId, seq: seq, payload: payload))
            } catch {
                log("flow \(flowId): \(error)")
                return
            }
            record.nextSeq = seq + 1
            record.save(stateDir: stateDir)
        }
        pump()
    }

    /// Batch files found damaged when the queue opened are already counted as dropped; a flow that
    /// had ended hears of its loss through one more final status (a running flow's comes with the
    /// error status below). Those whose flow is unknown are reported in every hello.
    private func reportDamagedBatches() {
        guard !queue.damaged.isEmpty else { return }
        let unattributed = queue.damaged.filter { $0.flowId == nil }.count
        log("queue: \(queue.damaged.count) damaged batch files found at start (\(unattributed) of unknown flows) counted as dropped: \(queue.damaged.map(\.file).joined(separator: ", "))")
        let byFlow = Dictionary(grouping: queue.damaged.compactMap(\.flowId), by: { $0 }).mapValues(\.count)
        for (flowId, count) in byFlow.sorted(by: { $0.key < $1.key }) {
            guard let record = FlowFile.load(stateDir: stateDir, flowId: flowId), record.state == "done" else { continue }
            let state = record.finalState.flatMap(FlowState.init(rawValue:)) ?? .error
            enqueue(flowId: flowId, .status(FlowStatus(state: state, droppedBatches: count, time: Date().timeIntervalSince1970)))
        }
    }

    /// A flow the agent restarted in the middle of ends as an error; what it had queued before (its
    /// chunks so far) is kept and sent.
    private func recoverInterruptedFlows() {
        for record in FlowFile.all(stateDir: stateDir) where record.state == "running" {
            log("flow \(record.flowId): interrupted by an agent restart, reporting an error")
            enqueue(flowId: record.flowId, .status(FlowStatus(
                state: .error, errors: ["the agent restarted during the collection; rows queued before were kept, the rest is lost"],
                batches: record.nextSeq - 1, droppedBatches: queue.dropped(flowId: record.flowId), time: Date().timeIntervalSince1970)))
            if var done = FlowFile.load(stateDir: stateDir, flowId: record.flowId) {
                done.state = "done"
                done.finalState = FlowState.error.rawValue
                done.save(stateDir: stateDir)
            }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/work")) ?? [] { unlink(stateDir + "/work/" + name) }
    }
}

/// What the agent remembers of a flow: enough to ignore a repeated request and to number batches.
struct FlowFile: Codable {
    var flowId: String
    var request: CollectionRequest
    /// "running" or "done".
    var state: String
    var nextSeq: Int
    var received: Double
    /// The state the flow's final status reported (for a later correction of its totals).
    var finalState: String?

    static func path(stateDir: String, flowId: String) -> String {
        stateDir + "/flows/" + flowId.filter { $0.isLetter || $0.isNumber || $0 == "." } + ".json"
    }

    static func load(stateDir: String, flowId: String) -> FlowFile? {
        guard let data = FileManager.default.contents(atPath: path(stateDir: stateDir, flowId: flowId)) else { return nil }
        return try? JSONDecoder().decode(FlowFile.self, from: data)
    }

    static func all(stateDir: String) -> [FlowFile] {
        ((try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/flows")) ?? []).compactMap { name in
            guard name.hasSuffix(".json"), let data = FileManager.default.contents(atPath: stateDir + "/flows/" + name) else { return nil }
            return try? JSONDecoder().decode(FlowFile.self, from: data)
        }
    }

    /// Durable before the sequence numbers it hands out are used: a number must never be reused
    /// after a power loss (the server would take the new batch for a duplicate of the old).
    func save(stateDir: String) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        try? PrivateFile.write(data, to: FlowFile.path(stateDir: stateDir, flowId: flowId))
    }
}
