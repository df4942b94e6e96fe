import Artifacts
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import VQL

/// The server monitoring table as this frontend runs it: one thread per SERVER_EVENT artifact,
/// started when the artifact is listed (or at server start) and cancelled when it is removed (or
/// at shutdown). Every frontend on a shared datastore runs the table; `watch_monitoring()` sees
/// the events this frontend stores, so each client event is examined once.
final class ServerMonitors: Sendable {
    /// Most artifacts run at once (the table holds no more).
    static let maxRunning = ServerMonitoringTable.maxEntries
    /// Rows a query's buffer holds before the query thread itself writes them.
    static let batchRows = 500

    let makeRegistry: @Sendable (ArtifactRepository) -> Registry
    let running = NIOLockedValueBox<[String: RunningMonitor]>([:])
    /// The table as last applied (so an unchanged table is not applied again).
    let applied = NIOLockedValueBox<[MonitoringEntry]?>(nil)
    let stopped = NIOLockedValueBox(false)
    let statuses = ServerMonitorStatuses()
    /// One refresh at a time: a refresh asked for while one runs makes it read the table again,
    /// so an older read never overrides a newer one.
    let refreshing = NIOLockedValueBox((running: false, again: false))
    private let lastSeq = NIOLockedValueBox(0)

    init(makeRegistry: @escaping @Sendable (ArtifactRepository) -> Registry) { self.makeRegistry = makeRegistry }

    /// Batch numbers of the server's event streams: microseconds since 1970, strictly increasing
    /// here, so batches never collide across restarts.
    func nextSeq(now: Double) -> Int {
        lastSeq.withLockedValue { last in
            last = max(last + 1, Int(now * 1e6))
            return last
        }
    }

    /// Cancels every query; none starts after this.
    func stopAll() {
        stopped.withLockedValue { $0 = true }
        for monitor in running.withLockedValue({ Array($0.values) }) { monitor.cancellation.cancel() }
    }
}

extension FleetServer {
    /// Reads the table and runs exactly its artifacts, when it changed since it was last applied.
    func refreshServerMonitoring() async {
        let first = serverMonitors.refreshing.withLockedValue { state -> Bool in
            if state.running {
                state.again = true
                return false
            }
            state.running = true
            return true
        }
        guard first else { return }
        repeat {
            do {
                let table = try await store.serverMonitoringTable()
                let changed = serverMonitors.applied.withLockedValue { applied -> Bool in
                    defer { applied = table }
                    return applied != table
                }
                if changed { applyServerMonitoring(table) }
            } catch {
                log("server monitoring: cannot read the table: \(error)")
            }
        } while serverMonitors.refreshing.withLockedValue { state -> Bool in
            if state.again {
                state.again = false
                return true
            }
            state.running = false
            return false
        }
    }

    /// Runs exactly the table's artifacts: those no longer in it, or with other parameters, are
    /// cancelled; new ones start. An entry naming no SERVER_EVENT artifact known here is logged.
    func applyServerMonitoring(_ table: [MonitoringEntry]) {
        guard !serverMonitors.stopped.withLockedValue({ $0 }) else { return }
        var wanted: [String: MonitoringEntry] = [:]
        for entry in table.prefix(ServerMonitors.maxRunning) where entry.problem == nil {
            guard repository.artifact(named: entry.artifact)?.type == .serverEvent else {
                log("server monitoring: \(entry.artifact) is not a SERVER_EVENT artifact on this server: not run")
                continue
            }
            wanted[entry.artifact] = entry
        }
        let (stopped, started) = serverMonitors.running.withLockedValue { running -> ([(String, CancellationFlag)], [RunningMonitor]) in
            let plan = MonitorPlan.plan(running: running.mapValues(\.entry.parameters), wanted: wanted)
            let stopped = plan.stop.compactMap { name in running.removeValue(forKey: name).map { (name, $0.cancellation) } }
            let started = plan.start.map { entry in
                let monitor = RunningMonitor(entry: entry, cancellation: CancellationFlag())
                running[entry.artifact] = monitor
                return monitor
            }
            return (stopped, started)
        }
        for (name, flag) in stopped {
            log("server monitoring: stopping \(name)")
            flag.cancel()
        }
        for monitor in started { startServerMonitor(monitor) }
    }

    /// The artifact's query on its own thread, restarted with `RestartBackoff` whenever it ends,
    /// until cancelled. Rows become server events of the artifact; `alert()` records alerts.
    private func startServerMonitor(_ monitor: RunningMonitor) {
        let artifact = monitor.entry.artifact
        log("server monitoring: starting \(artifact)")
        let thread = Thread { [self] in
            let registry = serverMonitors.makeRegistry(repository)
            registry.add(plugins: ServerPlugins.plugins, functions: ServerPlugins.functions)
            let local = LocalFleet(server: self, rule: artifact)
            let buffer = ServerEventBuffer { [self] source, rows in
                do {
                    try runBlocking { try await self.storeServerEvents(artifact: artifact, source: source, rows: rows) }
                } catch {
                    log("server monitoring \(artifact): \(rows.count) rows not stored: \(error)")
                }
            }
            let statuses = serverMonitors.statuses
            statuses.update(artifact) { $0 = ServerMonitorStatus(artifact: artifact, startedAt: Date().timeIntervalSince1970) }
            let lastError = NIOLockedValueBox<String?>(nil)
            let logger = ServerQueryLogger(prefix: "server monitoring \(artifact)", log: log) { [self] level, message in
                if level == .error { lastError.withLockedValue { $0 = message } }
                guard let alert = AlertLine.alert(fromMessage: message, clientId: "", flowId: "", artifact: artifact, clientIdFromDetails: true) else { return }
                _ = try? runBlocking { await self.record(alert) }
                statuses.update(artifact) { $0.alerts += 1 }
            }
            let events = EventMonitor(
                repository: repository, registry: registry, parameters: monitor.entry.parameters, cancellation: monitor.cancellation,
                prepare: { $0.context.setService(LocalFleet.serviceKey, local) })
            let flusher = Thread {
                while !monitor.cancellation.isCancelled {
                    Thread.sleep(forTimeInterval: 0.2)
                    buffer.flush()
                }
            }
            flusher.start()
            var backoff = RestartBackoff(firstPause: 1, lastPause: 300, healthyRun: 60)
            while !monitor.cancellation.isCancelled {
                let started = Date().timeIntervalSince1970
                statuses.update(artifact) {
                    $0.state = "running"
                    $0.startedAt = started
                    $0.nextStart = nil
                }
                var outcome: String
                lastError.withLockedValue { $0 = nil }
                do {
                    let problems = try events.run([artifact], logger: logger) { label, row in
                        var line: [UInt8] = []
                        JSONWriter.write(row, into: &line)
                        let source = label.hasPrefix(artifact + "/") ? String(label.dropFirst(artifact.count + 1)) : ""
                        buffer.add(source: source, row: String(decoding: line, as: UTF8.self))
                        statuses.update(artifact) { $0.rows += 1 }
                    }
                    if monitor.cancellation.isCancelled { break }
                    // A query may log an error and end without one (an unknown plugin yields no rows).
                    let logged = lastError.withLockedValue { $0 }.map { " after an error: " + $0 } ?? ""
                    outcome = problems.isEmpty ? "ended by itself" + logged : "failed: " + problems.joined(separator: "; ")
                } catch {
                    outcome = "cannot run: \(error)"
                }
                buffer.flush()
                let now = Date().timeIntervalSince1970
                let again = backoff.ended(startedAt: started, now: now)
                statuses.update(artifact) {
                    $0.state = "waiting"
                    $0.restarts += 1
                    $0.lastProblem = AuditEntry.clip(outcome, 2000)
                    $0.nextStart = again
                }
                log("server monitoring: \(artifact) \(AuditEntry.clip(outcome, 2000)); restart \(backoff.failures) in \(Int((again - now).rounded(.up))) s")
                while Date().timeIntervalSince1970 < again && !monitor.cancellation.isCancelled { Thread.sleep(forTimeInterval: 0.1) }
            }
            buffer.flush()
            serverMonitors.running.withLockedValue { running in
                if running[artifact]?.cancellation === monitor.cancellation { running[artifact] = nil }
                // A run of the same artifact with other parameters may have started already.
                if running[artifact] == nil { statuses.remove(artifact) }
            }
            log("server monitoring: \(artifact) stopped")
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Stores rows of a server event artifact as one batch of the `server` client and hands them
    /// to live readers (so `watch_monitoring()` of one server artifact can follow another).
    func storeServerEvents(artifact: String, source: String, rows: [String]) async throws {
        let now = Date().timeIntervalSince1970
        let batch = EventBatch(
            clientId: EventStream.serverClientId, artifact: artifact, source: source, seq: serverMonitors.nextSeq(now: now), rows: rows, receivedAt: now)
        let outcome = try await store.ingestEvents([batch]).first
        guard case .stored? = outcome else { throw StoreError("batch \(batch.seq): \(String(describing: outcome))") }
        metrics.rowsIngested.increment(by: Int64(rows.count))
        eventReaders.publish(rows.enumerated().map { index, row in
            EventRow(clientId: batch.clientId, artifact: artifact, source: source, time: now, seq: batch.seq, index: index, json: row)
        })
    }
}

/// Rows of one server query waiting to be stored: written together every 0.2 s by a flusher, or
/// at once by the query thread when `ServerMonitors.batchRows` are waiting (so memory stays
/// bounded and a fast query waits for the datastore). Writes happen one at a time, in order.
final class ServerEventBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private let writing = NSLock()
    private var pending: [String: [String]] = [:]
    private var count = 0
    private let write: @Sendable (_ source: String, _ rows: [String]) -> Void

    init(write: @escaping @Sendable (_ source: String, _ rows: [String]) -> Void) { self.write = write }

    func add(source: String, row: String) {
        let full = lock.withLock { () -> Bool in
            pending[source, default: []].append(row)
            count += 1
            return count >= ServerMonitors.batchRows
        }
        if full { flush() }
    }

    func flush() {
        writing.withLock {
            let all = lock.withLock { () -> [String: [String]] in
                defer {
                    pending = [:]
                    count = 0
                }
                return pending
            }
            for (source, rows) in all.sorted(by: { $0.key < $1.key }) where !rows.isEmpty { write(source, rows) }
        }
    }
}

/// The log of a server query: warnings and errors go to the server's log under the artifact's
/// name; `onMessage` sees every message with its level (alerts are recorded, errors remembered).
struct ServerQueryLogger: QueryLogger {
    let prefix: String
    let log: @Sendable (String) -> Void
    let onMessage: @Sendable (LogLevel, String) -> Void

    func log(_ level: LogLevel, _ message: String) {
        onMessage(level, message)
        if level >= .warning { log("\(prefix): \(level.rawValue): \(message)") }
    }
}
