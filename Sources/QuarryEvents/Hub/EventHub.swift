import CLibBPF
import Foundation
import Synchronization
import VQL

/// The one event service of a process: every `watch_ebpf()` query and the process tracker
/// subscribe here, and share ONE loaded BPF object (or, when the kernel refuses BPF, one process
/// connector socket and one file watcher). Each subscription owns a kernel filter slot; the
/// union of their filters is what the kernel sends. Sources start with the first subscription
/// that needs them and stop (BPF programs detached and freed) when the last one leaves.
public final class EventHub: @unchecked Sendable {
    /// How the hub may get its events.
    public struct Configuration: Sendable {
        /// False forces the fallbacks (tests; `QUARRY_EBPF=off`).
        public var allowBPF = true
        /// Ring buffer size (a power of two of at least one page; `QUARRY_EBPF_RINGBUF`).
        public var ringBufferBytes = 8 << 20
        /// Rows a query may fall behind before the newest are dropped (and counted).
        public var queueCapacity = 65_536
        /// Seconds before a refused BPF load is tried again.
        public var retryAfter: Double = 60

        public init() {}

        /// From the environment: QUARRY_EBPF=off disables BPF, QUARRY_EBPF_RINGBUF=BYTES sizes it.
        public static func fromEnvironment() -> Configuration {
            var configuration = Configuration()
            let environment = ProcessInfo.processInfo.environment
            if let mode = environment["QUARRY_EBPF"]?.lowercased(), ["off", "0", "false", "no"].contains(mode) {
                configuration.allowBPF = false
            }
            if let size = environment["QUARRY_EBPF_RINGBUF"].flatMap(Int.init), size >= 4096 {
                configuration.ringBufferBytes = 1 << (Int.bitWidth - (size - 1).leadingZeroBitCount)
            }
            return configuration
        }
    }

    /// The process-wide hub.
    public static let shared = EventHub(configuration: .fromEnvironment())

    let configuration: Configuration
    private let lock = NSLock()
    private var subscriptions: [Int: Subscription] = [:] {
        didSet { routes.withLock { $0 = Array(subscriptions.values) } }
    }
    /// What `deliver` reads: its own lock, never held while waiting, so a source thread in
    /// `deliver` can always finish while `lock` is held to stop that source.
    private let routes = Mutex<[Subscription]>([])
    private var nextID = 1
    private var runtime: BPFRuntime?
    private var refusal: (message: String, at: Date)?
    private var procConnector: ProcConnectorSource?
    private var fileNotifier: FileNotifySource?
    private var fileNotifierPrefixes: [String] = []
    /// Event type → what serves it now ("ebpf", a fallback) or why nothing does.
    private var sources: [UInt32: SourceState] = [:]
    private var lossMonitor: DispatchSourceTimer?
    private var lastLost: UInt64 = 0

    enum SourceState: Equatable {
        case ebpf
        case fallback(String)
        case unavailable(String)

        var name: String {
            switch self {
            case .ebpf: return "ebpf"
            case .fallback(let name): return name
            case .unavailable: return "unavailable"
            }
        }
    }

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    // MARK: Subscriptions

    /// Starts receiving events matching `filter`; rows arrive in the subscription's queue.
    func subscribe(_ filter: EventFilter, name: String, logger: QueryLogger, lossRows: Bool = false) -> Subscription {
        lock.lock()
        defer { lock.unlock() }
        let used = Set(subscriptions.values.map(\.slot))
        let slot = (0..<(KernelFilter.slotCount - 1)).first { !used.contains($0) } ?? KernelFilter.slotCount - 1
        let subscription = Subscription(id: nextID, slot: slot, filter: filter, name: name, logger: logger,
                                        queue: EventQueue(capacity: configuration.queueCapacity), hub: self, lossRows: lossRows)
        nextID += 1
        subscriptions[subscription.id] = subscription
        reconcile()
        for type in filter.types.sorted() {
            guard let kind = EventCatalog.kind(type: type) else { continue }
            switch sources[type] ?? .unavailable("not started") {
            case .ebpf: logger.log(.info, "\(name): \(kind.name) from eBPF")
            case .fallback(let source):
                let why = refusal.map { " (eBPF refused: \($0.message))" }
                    ?? (configuration.allowBPF ? "" : " (eBPF disabled: QUARRY_EBPF=off)")
                logger.log(.warning, "\(name): \(kind.name) from \(source)\(why)")
            case .unavailable(let reason):
                logger.log(.error, "\(name): cannot provide \(kind.name): \(reason)")
            }
        }
        return subscription
    }

    func unsubscribe(_ subscription: Subscription) {
        lock.lock()
        defer { lock.unlock() }
        guard subscriptions.removeValue(forKey: subscription.id) != nil else { return }
        subscription.queue.finish()
        reconcile()
    }

    /// What serves each event kind, for `ebpf_events()` and the tests.
    func state(of type: UInt32) -> SourceState? { lock.withLock { sources[type] } }

    public var subscriberCount: Int { lock.withLock { subscriptions.count } }
    /// True while a BPF object is loaded.
    public var isBPFLoaded: Bool { lock.withLock { runtime != nil } }
    /// Names of the BPF programs attached now.
    public var attachedPrograms: Set<String> { lock.withLock { runtime?.attached ?? [] } }
    /// Why BPF was refused, if it was.
    public var bpfRefusal: String? { lock.withLock { refusal?.message } }
    /// Kernel counters while loaded.
    public var kernelCounters: (sent: UInt64, lost: UInt64, filtered: UInt64)? { lock.withLock { runtime?.counters } }

    /// Holds (or releases) the ring buffer poller: tests use it to overflow the ring buffer.
    public func pausePolling(_ paused: Bool) {
        lock.withLock { runtime?.paused.store(paused, ordering: .relaxed) }
    }

    // MARK: Delivery

    /// Hands an event to every subscription whose slot matched and whose exact filter accepts it.
    func deliver(_ event: DecodedEvent) {
        let targets = routes.withLock { $0 }
        for subscription in targets {
            let bit = UInt64(1) << UInt64(subscription.slot)
            guard event.matched & bit != 0, subscription.filter.accepts(event) else { continue }
            subscription.queue.offer(event.row)
        }
    }

    private func checkLosses() {
        guard let counters = lock.withLock({ runtime?.counters }) else { return }
        let lost = counters.lost
        let delta = lock.withLock { () -> UInt64 in
            defer { lastLost = lost }
            return lost > lastLost ? lost - lastLost : 0
        }
        guard delta > 0 else { return }
        let targets = routes.withLock { $0 }
        for subscription in targets {
            subscription.logger.log(.warning, "\(subscription.name): \(delta) events lost (the kernel ring buffer was full); \(lost) lost since the programs loaded")
            if subscription.lossRows { subscription.queue.offer(LossRow.make(lost: delta, total: lost)) }
        }
    }

    // MARK: Sources

    /// Starts, reconfigures or stops sources so that they serve exactly the current
    /// subscriptions. Called with the lock held.
    private func reconcile() {
        let needed = subscriptions.values.reduce(into: Set<UInt32>()) { $0.formUnion($1.filter.types) }
        var states: [UInt32: SourceState] = [:]
        if needed.isEmpty {
            stopAll()
            sources = [:]
            return
        }
        var bpfServed: Set<UInt32> = []
        if configuration.allowBPF {
            if runtime == nil, refusal.map({ Date().timeIntervalSince($0.at) > configuration.retryAfter }) ?? true {
                do {
                    runtime = try BPFRuntime(ringBufferBytes: configuration.ringBufferBytes) { [weak self] event in self?.deliver(event) }
                    refusal = nil
                    lastLost = 0
                    startLossMonitor()
                } catch {
                    refusal = (String(describing: error), Date())
                }
            }
            if let runtime {
                let kinds = needed.compactMap(EventCatalog.kind(type:))
                let programs = Set(kinds.flatMap(\.programs))
                let failed = runtime.configure(kernelConfig(), programs: programs)
                for kind in kinds {
                    let missing = kind.programs.filter { failed[$0] != nil }
                    // commit_creds is still served (by set*id syscalls) without the exec hook.
                    let essential = kind.type == UInt32(QE_COMMIT_CREDS.rawValue) ? missing.filter { $0 != "on_exec" } : missing
                    if essential.isEmpty {
                        bpfServed.insert(kind.type)
                        states[kind.type] = .ebpf
                    } else {
                        states[kind.type] = .unavailable("eBPF program \(essential[0]): \(failed[essential[0]] ?? "")")
                    }
                }
            }
        }
        if runtime != nil && bpfServed.isEmpty { stopRuntime() }
        let rest = needed.subtracting(bpfServed)
        startFallbacks(for: rest, states: &states)
        sources = states
    }

    private func kernelConfig() -> qe_config {
        KernelFilter.encode(subscriptions.values.map { ($0.slot, $0.filter) }, selfPid: UInt32(getpid()))
    }

    private func startFallbacks(for types: Set<UInt32>, states: inout [UInt32: SourceState]) {
        let why = refusal?.message ?? (configuration.allowBPF ? "" : "eBPF disabled (QUARRY_EBPF=off)")
        var processTypes: Set<UInt32> = []
        var fileTypes: Set<UInt32> = []
        for type in types {
            guard let kind = EventCatalog.kind(type: type) else { continue }
            switch kind.fallback {
            case .procConnector: processTypes.insert(type)
            case .fileNotify: fileTypes.insert(type)
            case nil:
                if states[type] == nil {
                    states[type] = .unavailable(why.isEmpty ? "eBPF is needed" : "needs eBPF, which is unavailable: \(why)")
                }
            }
        }
        if processTypes.isEmpty {
            procConnector?.stop()
            procConnector = nil
        } else {
            if procConnector == nil {
                do {
                    procConnector = try ProcConnectorSource { [weak self] event in self?.deliver(event) }
                } catch {
                    for type in processTypes { states[type] = .unavailable("the process connector failed: \(error)") }
                }
            }
            if procConnector != nil { for type in processTypes { states[type] = .fallback("proc_connector") } }
        }
        let prefixes = fileTypes.isEmpty ? [] : fileWatchPrefixes()
        if fileTypes.isEmpty || prefixes != fileNotifierPrefixes {
            fileNotifier?.stop()
            fileNotifier = nil
            fileNotifierPrefixes = []
        }
        if !fileTypes.isEmpty {
            if fileNotifier == nil {
                do {
                    fileNotifier = try FileNotifySource(prefixes: prefixes) { [weak self] event in self?.deliver(event) }
                    fileNotifierPrefixes = prefixes
                } catch {
                    for type in fileTypes { states[type] = .unavailable("file notification failed: \(error)") }
                }
            }
            if let fileNotifier { for type in fileTypes { states[type] = .fallback(fileNotifier.kind) } }
        }
    }

    /// Where file events are watched without BPF: the subscriptions' path prefixes, or "/"
    /// when some subscription has none.
    private func fileWatchPrefixes() -> [String] {
        let type = UInt32(QE_FILE_OPEN.rawValue)
        var prefixes: Set<String> = []
        for subscription in subscriptions.values where subscription.filter.types.contains(type) {
            if subscription.filter.pathPrefixes.isEmpty { return ["/"] }
            prefixes.formUnion(subscription.filter.pathPrefixes)
        }
        return prefixes.sorted()
    }

    private func startLossMonitor() {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 1, repeating: 1)
        timer.setEventHandler { [weak self] in self?.checkLosses() }
        timer.resume()
        lossMonitor = timer
    }

    private func stopRuntime() {
        lossMonitor?.cancel()
        lossMonitor = nil
        runtime?.stop()
        runtime = nil
    }

    private func stopAll() {
        stopRuntime()
        procConnector?.stop()
        procConnector = nil
        fileNotifier?.stop()
        fileNotifier = nil
        fileNotifierPrefixes = []
    }
}

/// The row a subscription that asked for `lost_events` receives when the kernel drops records.
enum LossRow {
    static func make(lost: UInt64, total: UInt64) -> Value {
        let now = Timestamp(seconds: Date().timeIntervalSince1970)
        let system = Dict([("Timestamp", .timestamp(now)), ("EventName", .string("lost_events")), ("HostName", .string(SystemFields.hostName))])
        let data = Dict([("lost", .int(Int64(clamping: lost))), ("total_lost", .int(Int64(clamping: total)))])
        return .dict(Dict(schema: SystemFields.rowSchema, values: [.dict(system), .dict(data)]))
    }
}
