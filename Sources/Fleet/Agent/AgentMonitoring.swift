import Artifacts
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import PrivateFiles
import VQL

/// The agent's side of client event monitoring: the table the server sent (kept in
/// `monitoring.json`, so the agent monitors from its start even while the server is unreachable),
/// one `EventMonitor` per artifact on its own thread, and the rows sent as numbered batches of the
/// artifact's event stream (`EventStream`), through the same on-disk queue as collections.
struct MonitoringFile: Codable, Equatable {
    var entries: [MonitoringEntry]
    var definitions: [String]

    static func path(stateDir: String) -> String { stateDir + "/monitoring.json" }

    static func load(stateDir: String) -> MonitoringFile? {
        guard let data = FileManager.default.contents(atPath: path(stateDir: stateDir)) else { return nil }
        return try? JSONDecoder().decode(MonitoringFile.self, from: data)
    }

    func save(stateDir: String) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        try? PrivateFile.write(data, to: Self.path(stateDir: stateDir))
    }
}

/// An event artifact the agent runs now. `cancellation` ends it for good (the table dropped it);
/// `currentRun` ends only the run in progress (the watchdog's verdict), after which it starts again
/// once the watchdog admits it.
struct RunningMonitor {
    var entry: MonitoringEntry
    var cancellation: CancellationFlag
    let currentRun = NIOLockedValueBox<CancellationFlag?>(nil)
}

extension FleetAgent {
    /// Most event artifacts the agent runs at once (the rest of a larger table is logged and skipped).
    static let maxMonitors = 64
    /// Pauses before an event artifact that ended is run again (doubling up to the last).
    static let firstRestartPause = 10.0
    static let lastRestartPause = 300.0

    /// Runs exactly the table's artifacts: those no longer in it, or with other parameters, are
    /// cancelled; new ones start. The table is saved first.
    func applyMonitoring(_ table: MonitoringFile) {
        table.save(stateDir: stateDir)
        var wanted: [String: MonitoringEntry] = [:]
        for entry in table.entries.prefix(Self.maxMonitors) where entry.problem == nil { wanted[entry.artifact] = entry }
        if table.entries.count > Self.maxMonitors { log("monitoring: the table holds \(table.entries.count) artifacts; running the first \(Self.maxMonitors)") }
        let (stopped, started) = monitors.withLockedValue { running -> ([(String, RunningMonitor)], [RunningMonitor]) in
            let plan = MonitorPlan.plan(running: running.mapValues(\.entry.parameters), wanted: wanted)
            let stopped = plan.stop.compactMap { name in running.removeValue(forKey: name).map { (name, $0) } }
            let started = plan.start.map { entry in
                let monitor = RunningMonitor(entry: entry, cancellation: CancellationFlag())
                running[entry.artifact] = monitor
                return monitor
            }
            return (stopped, started)
        }
        for (name, monitor) in stopped {
            log("monitoring: stopping \(name)")
            monitor.cancellation.cancel()
            monitor.currentRun.withLockedValue { $0 }?.cancel()
        }
        for monitor in started { startMonitor(monitor, definitions: table.definitions) }
    }

    /// The agent's table from its last run, started before the first connection.
    func resumeMonitoring() {
        if let table = MonitoringFile.load(stateDir: stateDir), !table.entries.isEmpty { applyMonitoring(table) }
    }

    private func startMonitor(_ monitor: RunningMonitor, definitions: [String]) {
        let artifact = monitor.entry.artifact
        let stream = EventStream.id(artifact: artifact)
        flowLock.withLock {
            // The artifact's stream, and the one its alerts travel in (numbered once for all).
            for (id, name) in [(stream, artifact), (EventStream.id(artifact: AlertEvents.artifact), AlertEvents.artifact)]
            where FlowFile.load(stateDir: stateDir, flowId: id) == nil {
                FlowFile(flowId: id, request: CollectionRequest(artifacts: [name]), state: "event", nextSeq: 1, received: Date().timeIntervalSince1970)
                    .save(stateDir: stateDir)
            }
        }
        log("monitoring: starting \(artifact)")
        let thread = Thread { [self] in
            let repository = ArtifactRepository.builtin()
            for (index, text) in definitions.enumerated() { _ = repository.add(text: text, file: "server:monitoring/\(index)") }
            let registry = makeRegistry(repository)
            let events = self.eventRows
            let logger = AgentLogger(prefix: "monitoring \(artifact)", log: log) { message in
                // alert() in an event artifact: the alert travels as an event row of its own
                // stream (exactly once, like any event), and the server records it.
                if let row = AlertEvents.row(fromLog: message, artifact: artifact) {
                    events.add(artifact: AlertEvents.artifact, source: "", row: row)
                }
            }
            // An event query that ends (an error, a source that gave up) runs again after a pause
            // that doubles from 10 s to 5 minutes, until the table drops it. Each run is held to
            // the agent's limits like a collection (its thread's CPU, the process's memory): over
            // them it is cancelled, logged, and started again when the watchdog admits it.
            var pause = Self.firstRestartPause
            let request = CollectionRequest(artifacts: [artifact])
            while !monitor.cancellation.isCancelled {
                if case .refuse(let until, let reason) = watchdog.admit(flowId: stream, request: request) {
                    log("monitoring: \(artifact) held back: \(reason)")
                    while Date().timeIntervalSince1970 < until && !monitor.cancellation.isCancelled { Thread.sleep(forTimeInterval: 0.2) }
                    continue
                }
                let run = CancellationFlag()
                monitor.currentRun.withLockedValue { $0 = run }
                if monitor.cancellation.isCancelled { run.cancel() }
                let throttle = watchdog.attach(flowId: stream, cancellation: run, cpuLimit: nil)
                let watchdog = self.watchdog
                let monitorRun = EventMonitor(
                    repository: repository, registry: registry, parameters: monitor.entry.parameters, cancellation: run,
                    prepare: { session in if let throttle { session.context.throttle = throttle } },
                    onSourceThread: { watchdog.attachThread(flowId: stream) },
                    variables: [ClientScope.variable: ClientScope.config(serverURLs: config.serverURLs, labels: config.labels, caCertificate: config.caCertificate, localStorage: ClientScope.localStorage(stateDir + "/local"))])
                defer { _ = watchdog.finish(flowId: stream) }
                do {
                    let problems = try monitorRun.run([artifact], logger: logger) { label, row in
                        var line: [UInt8] = []
                        JSONWriter.write(row, into: &line)
                        let source = label.hasPrefix(artifact + "/") ? String(label.dropFirst(artifact.count + 1)) : ""
                        events.add(artifact: artifact, source: source, row: String(decoding: line, as: UTF8.self))
                    }
                    if monitor.cancellation.isCancelled { break }
                    if let reason = watchdog.finish(flowId: stream) {
                        log("monitoring: \(artifact) stopped by the agent's limits: \(reason); it starts again when they allow")
                        events.flush()
                        continue
                    }
                    log("monitoring: \(artifact) ended by itself\(problems.isEmpty ? "" : ": " + problems.joined(separator: "; ")); again in \(Int(pause)) s")
                } catch {
                    log("monitoring: \(artifact) cannot run: \(error); again in \(Int(pause)) s")
                }
                events.flush()
                let deadline = Date().addingTimeInterval(pause)
                while Date() < deadline && !monitor.cancellation.isCancelled { Thread.sleep(forTimeInterval: 0.2) }
                pause = min(pause * 2, Self.lastRestartPause)
            }
            events.flush()
            self.monitors.withLockedValue { running in
                if running[artifact]?.cancellation === monitor.cancellation { running[artifact] = nil }
            }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Queues one batch of an event stream's rows.
    func sendEvents(artifact: String, source: String, rows: [String]) {
        enqueue(flowId: EventStream.id(artifact: artifact), .rows(artifact: artifact, source: source, rows: rows))
    }
}

/// Lets the event buffer reach the agent that owns it without keeping it alive.
final class AgentReference: @unchecked Sendable {
    private let lock = NIOLock()
    private weak var held: FleetAgent?
    var agent: FleetAgent? {
        get { lock.withLock { held } }
        set { lock.withLock { held = newValue } }
    }
}

/// A query log that goes to the agent's log; `onMessage` sees every message (alerts are forwarded).
struct AgentLogger: QueryLogger {
    let prefix: String
    let log: @Sendable (String) -> Void
    var onMessage: (@Sendable (String) -> Void)?

    init(prefix: String, log: @escaping @Sendable (String) -> Void, onMessage: (@Sendable (String) -> Void)? = nil) {
        self.prefix = prefix
        self.log = log
        self.onMessage = onMessage
    }

    func log(_ level: LogLevel, _ message: String) {
        onMessage?(message)
        if level >= .warning { log("\(prefix): \(level.rawValue): \(message)") }
    }
}

/// Event rows waiting to become batches: a source's rows go as one batch when they reach
/// `FleetAgent.rowsPerBatch` rows or `maxBytes`, and at the latest `interval` after the first.
final class EventRowBuffer: Sendable {
    static let interval = Duration.milliseconds(200)
    static let maxBytes = 1 << 20
    private let pending = NIOLockedValueBox<[String: (rows: [String], bytes: Int)]>([:])
    private let send: @Sendable (String, String, [String]) -> Void

    init(send: @escaping @Sendable (_ artifact: String, _ source: String, _ rows: [String]) -> Void) {
        self.send = send
    }

    private static func key(_ artifact: String, _ source: String) -> String { artifact + "\u{0}" + source }

    func add(artifact: String, source: String, row: String) {
        let full = pending.withLockedValue { pending -> [String]? in
            let key = Self.key(artifact, source)
            var entry = pending[key] ?? ([], 0)
            entry.rows.append(row)
            entry.bytes += row.utf8.count
            if entry.rows.count >= FleetAgent.rowsPerBatch || entry.bytes >= Self.maxBytes {
                pending[key] = nil
                return entry.rows
            }
            pending[key] = entry
            return nil
        }
        if let full { send(artifact, source, full) }
    }

    /// Sends every waiting source's rows.
    func flush() {
        let all = pending.withLockedValue { pending -> [String: (rows: [String], bytes: Int)] in
            defer { pending = [:] }
            return pending
        }
        for (key, entry) in all.sorted(by: { $0.key < $1.key }) where !entry.rows.isEmpty {
            let parts = key.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
            send(String(parts[0]), parts.count > 1 ? String(parts[1]) : "", entry.rows)
        }
    }

    /// Flushes every `interval` until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.interval)
            flush()
        }
    }
}
