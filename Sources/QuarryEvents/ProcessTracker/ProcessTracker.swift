import CLibBPF
import Foundation
import QuarryHost
import Synchronization
import VQL

/// The process tracker service: a table of processes kept current by exec/fork/exit events
/// from the event hub (eBPF, or the process connector), falling back to polling /proc, with a
/// full /proc sync now and then to repair anything missed. Answers `process_tracker_*` for
/// processes alive and exited (an LRU bounds the exited). `process_tracker(sync_query=,
/// update_query=)` replaces the built-in feed with VQL queries, as Velociraptor's does.
public final class ProcessTracker: @unchecked Sendable {
    /// The process-wide tracker.
    public static let shared = ProcessTracker(hub: .shared)
    /// Where a session's tracker comes from (tests inject their own).
    public static let serviceKey = "events.process_tracker"

    static func tracker(_ context: QueryContext) -> ProcessTracker {
        context.service(serviceKey, as: ProcessTracker.self) ?? shared
    }

    /// How the table is fed now.
    public enum FeedKind: String, Sendable { case idle, events, polling, vql }

    /// Where events come from; nil polls /proc only.
    private let hub: EventHub?
    private let lock = NSLock()
    private var table: ProcessTable
    private var feed: FeedKind = .idle
    private var generation = 0
    private var listeners: [Int: EventQueue] = [:]
    private var nextListener = 1
    /// Seconds between full /proc syncs while events feed the table, and between polls without.
    public var syncPeriod: Double = 60
    public var pollPeriod: Double = 2

    public init(hub: EventHub?, maxExited: Int = 10_000) {
        self.hub = hub
        self.table = ProcessTable(maxExited: maxExited)
    }

    // MARK: Reading

    /// Starts the built-in feed on first use (a /proc sync now, events from then on).
    public func ensureStarted(logger: QueryLogger) {
        let start: Int? = lock.withLock {
            guard feed == .idle else { return nil }
            feed = .events
            generation += 1
            return generation
        }
        guard let start else { return }
        syncFromProc()
        let thread = Thread { [self] in runBuiltInFeed(generation: start, logger: logger) }
        thread.name = "quarry-process-tracker"
        thread.start()
    }

    public var feedKind: FeedKind { lock.withLock { feed } }

    public func read<T>(_ body: (ProcessTable) -> T) -> T { lock.withLock { body(table) } }

    // MARK: Updates

    func apply(_ updates: [TrackerUpdate]) {
        guard !updates.isEmpty else { return }
        let targets = lock.withLock { Array(listeners.values) }
        for queue in targets { for update in updates { queue.offer(update.row) } }
    }

    func listen(capacity: Int = 65_536) -> (Int, EventQueue) {
        lock.withLock {
            let queue = EventQueue(capacity: capacity)
            let id = nextListener
            nextListener += 1
            listeners[id] = queue
            return (id, queue)
        }
    }

    func stopListening(_ id: Int) {
        let queue = lock.withLock { listeners.removeValue(forKey: id) }
        queue?.finish()
    }

    /// A "stats" update: the table's size, for process_tracker_updates() consumers.
    func statsUpdate() -> TrackerUpdate {
        let (live, exited, feed) = lock.withLock { (table.live.count, table.exitedCount, self.feed) }
        let data = Dict([("live", .from(live)), ("exited", .from(exited)), ("feed", .string(feed.rawValue))])
        return TrackerUpdate(kind: .stats, process: TrackedProcess(pid: 0, ppid: 0, startTime: now(), data: data))
    }

    func now() -> Timestamp { Timestamp(seconds: Date().timeIntervalSince1970) }

    // MARK: The built-in feed

    /// One full listing from /proc applied to the table.
    func syncFromProc() {
        let listedAt = now()
        let processes = Processes.livePids().compactMap { pid -> TrackedProcess? in
            guard let row = ProcessRow.live(pid: pid) else { return nil }
            return TrackerRows.process(from: row)
        }
        let updates = lock.withLock { table.sync(processes, listedAt: listedAt, at: now()) }
        apply(updates)
        apply([statsUpdate()])
    }

    private func isCurrent(_ generation: Int) -> Bool { lock.withLock { self.generation == generation } }

    private func runBuiltInFeed(generation: Int, logger: QueryLogger) {
        let types: Set<UInt32> = [UInt32(QE_EXEC.rawValue), UInt32(QE_EXIT.rawValue), UInt32(QE_FORK.rawValue)]
        let subscription = hub?.subscribe(EventFilter(types: types), name: "process tracker", logger: logger)
        defer { subscription?.cancel() }
        let usable = hub.map { hub in
            [QE_EXEC, QE_EXIT].allSatisfy { type in
                if case .unavailable = hub.state(of: UInt32(type.rawValue)) ?? .unavailable("") { return false }
                return true
            }
        } ?? false
        if !usable {
            subscription?.cancel()
            lock.withLock { if self.generation == generation { feed = .polling } }
            logger.log(.warning, "process tracker: no exec/exit events here; polling /proc every \(pollPeriod) s")
        }
        // Loading and attaching BPF takes a moment after the first listing: a process started in
        // between would be unknown until the next sync, so list /proc again once events flow.
        if usable { syncFromProc() }
        var lastSync = Date()
        while isCurrent(generation) {
            if usable, let row = subscription?.queue.take(timeout: 0.5) {
                let updates = lock.withLock { TrackerRows.apply(event: row, to: &table, now: now()) }
                apply(updates)
            } else if !usable {
                Thread.sleep(forTimeInterval: min(pollPeriod, 0.5))
            }
            if Date().timeIntervalSince(lastSync) >= (usable ? syncPeriod : pollPeriod) {
                syncFromProc()
                lastSync = Date()
            }
        }
    }

    // MARK: The VQL feed (process_tracker())

    /// Replaces the feed by VQL: `sync` runs every `syncPeriod` seconds (rows: id, parent_id,
    /// start_time, end_time, data) and `update` runs continuously (rows add update_type
    /// "start" or "exit"). Both stop when `cancellation` is set or another feed replaces them.
    func installVQL(sync: StoredQuery?, update: StoredQuery?, syncPeriod: Double, maxSize: Int?, cancellation: CancellationFlag, logger: QueryLogger) {
        let current: Int = lock.withLock {
            generation += 1
            feed = .vql
            if let maxSize, maxSize > 0 { table.maxExited = maxSize }
            return generation
        }
        let alive: @Sendable () -> Bool = { [weak self] in
            guard let self, !cancellation.isCancelled else { return false }
            return self.isCurrent(current)
        }
        if let sync {
            let box = UncheckedSendable(sync)
            let thread = Thread { [self] in
                while alive() {
                    let listedAt = now()
                    let rows = box.value.materialize()
                    let processes = rows.compactMap(TrackerRows.process(fromUpdate:))
                    let updates = lock.withLock { table.sync(processes, listedAt: listedAt, at: now()) }
                    apply(updates)
                    apply([statsUpdate()])
                    var waited = 0.0
                    while waited < syncPeriod, alive() {
                        Thread.sleep(forTimeInterval: 0.25)
                        waited += 0.25
                    }
                }
            }
            thread.name = "quarry-tracker-sync"
            thread.start()
        }
        if let update {
            let box = UncheckedSendable(update)
            let thread = Thread { [self] in
                do {
                    let cursor = try box.value.cursor()
                    defer { cursor.close() }
                    while alive(), let row = try cursor.next() {
                        let updates = lock.withLock { TrackerRows.apply(update: row.materialized(), to: &table, now: now()) }
                        apply(updates)
                    }
                } catch is QueryCancelled {
                } catch {
                    logger.log(.error, "process_tracker: update_query failed: \(error)")
                }
                // The feed ended: the next use starts the built-in one.
                lock.withLock { if generation == current { feed = .idle } }
            }
            thread.name = "quarry-tracker-update"
            thread.start()
        }
    }

    /// Stops any feed (the table stays); the next use starts the built-in feed again.
    public func stop() {
        lock.withLock {
            generation += 1
            feed = .idle
        }
    }
}

/// A value handed to one other thread.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
