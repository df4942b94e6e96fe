// The agent's watchdog as a pure state machine: measurements in, verdicts out. A sampler thread in the
// agent reads the real numbers (resident memory, process and per-collection CPU time) and applies the
// verdicts (pace a collection, cancel it, refuse a request); no clock is read and nothing is done here.

/// One measurement of the agent: its resident memory, its whole-process CPU time and the CPU time of
/// each running collection's worker thread (seconds), at `time` (seconds since 1970).
public struct WatchdogSample: Sendable, Equatable {
    public var time: Double
    public var residentBytes: Int64
    public var processCPUSeconds: Double
    /// By collection ID; a collection missing here has no worker thread measured yet.
    public var collectionCPUSeconds: [String: Double]

    public init(time: Double, residentBytes: Int64, processCPUSeconds: Double, collectionCPUSeconds: [String: Double] = [:]) {
        self.time = time
        self.residentBytes = residentBytes
        self.processCPUSeconds = processCPUSeconds
        self.collectionCPUSeconds = collectionCPUSeconds
    }
}

/// What the watchdog says about one collection (or a request for one).
public enum WatchdogVerdict: Sendable, Equatable {
    case ok
    /// Pace the collection to this percent of one core (plugins that walk or read pace themselves).
    case throttle(percent: Double)
    /// Cancel the collection; the reason goes to the server as the flow's error.
    case cancel(reason: String)
    /// Do not start the collection; it may be asked for again from `until` (seconds since 1970).
    case refuse(until: Double, reason: String)
}

/// Decides, from samples, which collections to pace, cancel or refuse.
///
/// Rules:
/// - CPU, per collection: a collection whose worker used more than `maxCPUPercent` (of one core)
///   between two samples is throttled to 80% of it, once (a request's own, lower `cpu_limit` paces
///   it from the start and is never raised). If, over a full `cpuWindowSeconds`
///   counted from the throttle, it still averages over its budget (its work does not pace itself), it
///   is cancelled.
/// - CPU, overall: when the whole agent process averages over `maxCPUPercent` over a full window,
///   the collection that used the most CPU in that window is cancelled.
/// - Memory, per collection: a collection during which the agent's resident memory grew by more than
///   `maxCollectionMemoryBytes` is cancelled.
/// - Memory, overall: over `maxMemoryBytes`, the collection during which memory grew the most is
///   cancelled, if it grew by at least a tenth of the ceiling (a collection that barely grew is not
///   to blame; the excess is then only reported in `overCeilingWithoutCulprit`).
/// - One cancellation at a time for the overall limits: while a collection cancelled by them has not
///   ended, no other is cancelled for them (memory takes time to be given back).
/// - Strikes: a collection cancelled by these limits counts a strike against each of its artifacts
///   when it ends. An artifact with `strikes` strikes within `cooldownSeconds` is refused until its
///   last strike plus `cooldownSeconds`.
/// - Disabled limits: every verdict is `.ok`.
public struct AgentWatchdog: Sendable {
    public let limits: AgentLimits

    struct Point: Sendable {
        var time: Double
        var cpu: Double
    }

    struct Tracked: Sendable {
        var artifacts: [String]
        var budget: Double
        var startResident: Int64?
        var points: [Point] = []
        var throttledAt: Double?
        var cancelReason: String?
    }

    private var running: [String: Tracked] = [:]
    private var process: [Point] = []
    private var strikeTimes: [String: [Double]] = [:]
    private var lastStrikeReason: [String: String] = [:]
    private var lastResident: Int64?
    /// Set by `observe` when the agent is over its memory ceiling and no collection is to blame.
    public private(set) var overCeilingWithoutCulprit = false

    public init(limits: AgentLimits) {
        self.limits = limits
    }

    /// IDs of the collections being watched.
    public var collections: [String] { running.keys.sorted() }

    /// A collection asks to start: `.ok` (it is watched from now) or `.refuse` when one of its
    /// artifacts is cooling down.
    public mutating func admit(_ id: String, artifacts: [String], at now: Double) -> WatchdogVerdict {
        guard limits.enabled else { return .ok }
        for artifact in artifacts {
            let recent = (strikeTimes[artifact] ?? []).filter { $0 > now - limits.cooldownSeconds }
            strikeTimes[artifact] = recent
            if recent.count >= limits.strikes, let last = recent.last {
                let until = last + limits.cooldownSeconds
                let because = lastStrikeReason[artifact].map { " (last time: \($0))" } ?? ""
                return .refuse(until: until, reason: "refused: \(artifact) was cancelled by the agent's limits \(recent.count) times in the last \(Self.format(limits.cooldownSeconds)) s\(because); it is refused for \(Self.format(until - now)) s more")
            }
        }
        running[id] = Tracked(artifacts: artifacts, budget: limits.maxCPUPercent, startResident: lastResident)
        return .ok
    }

    /// The collection ended. Returns the reason it was cancelled by these limits, if it was (and then
    /// counts a strike against each of its artifacts).
    @discardableResult
    public mutating func finish(_ id: String, at now: Double) -> String? {
        guard let tracked = running.removeValue(forKey: id), let reason = tracked.cancelReason else { return nil }
        for artifact in tracked.artifacts {
            strikeTimes[artifact, default: []].append(now)
            lastStrikeReason[artifact] = reason
        }
        return reason
    }

    /// Takes a sample; returns a verdict for every watched collection.
    public mutating func observe(_ sample: WatchdogSample) -> [String: WatchdogVerdict] {
        lastResident = sample.residentBytes
        var verdicts = Dictionary(uniqueKeysWithValues: running.keys.map { ($0, WatchdogVerdict.ok) })
        guard limits.enabled else { return verdicts }
        let window = limits.cpuWindowSeconds
        process.append(Point(time: sample.time, cpu: sample.processCPUSeconds))
        Self.prune(&process, before: sample.time - window)
        for id in running.keys.sorted() {
            guard var tracked = running[id], let cpu = sample.collectionCPUSeconds[id] else { continue }
            if tracked.startResident == nil { tracked.startResident = sample.residentBytes }
            let previous = tracked.points.last
            tracked.points.append(Point(time: sample.time, cpu: cpu))
            Self.prune(&tracked.points, before: sample.time - window)
            defer { running[id] = tracked }
            guard tracked.cancelReason == nil else { continue }
            if let growth = tracked.startResident.map({ sample.residentBytes - $0 }), growth > limits.maxCollectionMemoryBytes {
                tracked.cancelReason = "cancelled: collection memory limit \(Self.megabytes(limits.maxCollectionMemoryBytes)) MB exceeded (the agent's resident memory grew by \(Self.megabytes(growth)) MB during this collection, to \(Self.megabytes(sample.residentBytes)) MB)"
                verdicts[id] = .cancel(reason: tracked.cancelReason ?? "")
                continue
            }
            if let throttledAt = tracked.throttledAt {
                if let average = Self.average(tracked.points, now: sample.time, window: window), let first = tracked.points.first, first.time >= throttledAt, average > tracked.budget {
                    tracked.cancelReason = "cancelled: CPU budget \(Self.format(tracked.budget))% over \(Self.format(window)) s exceeded (the collection used \(Self.format(average))% of one core while throttled)"
                    verdicts[id] = .cancel(reason: tracked.cancelReason ?? "")
                }
            } else if let previous, sample.time > previous.time, (cpu - previous.cpu) / (sample.time - previous.time) * 100 > tracked.budget {
                // The window starts now: the burst that caused the throttle does not count against it.
                tracked.throttledAt = sample.time
                tracked.points = [Point(time: sample.time, cpu: cpu)]
                verdicts[id] = .throttle(percent: tracked.budget * 0.8)
            }
        }
        overCeilingWithoutCulprit = false
        guard !running.values.contains(where: { $0.cancelReason != nil }) else { return verdicts }
        if sample.residentBytes > limits.maxMemoryBytes {
            let growth = running.compactMapValues { t in t.startResident.map { sample.residentBytes - $0 } }
            if let (id, grew) = growth.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }), grew >= limits.maxMemoryBytes / 10 {
                let reason = "cancelled: memory ceiling \(Self.megabytes(limits.maxMemoryBytes)) MB exceeded (the agent's resident memory reached \(Self.megabytes(sample.residentBytes)) MB, \(Self.megabytes(grew)) MB of it during this collection)"
                running[id]?.cancelReason = reason
                verdicts[id] = .cancel(reason: reason)
                return verdicts
            }
            overCeilingWithoutCulprit = true
        }
        if let average = Self.average(process, now: sample.time, window: window), average > limits.maxCPUPercent {
            let used = running.compactMapValues { t -> Double? in
                guard let first = t.points.first, let last = t.points.last, first.time <= sample.time - window else { return nil }
                return last.cpu - first.cpu
            }
            if let (id, seconds) = used.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }), seconds > 0 {
                let reason = "cancelled: the agent's CPU budget \(Self.format(limits.maxCPUPercent))% over \(Self.format(window)) s exceeded (the agent used \(Self.format(average))% of one core, this collection \(Self.format(seconds / window * 100))%)"
                running[id]?.cancelReason = reason
                verdicts[id] = .cancel(reason: reason)
            }
        }
        return verdicts
    }

    /// Drops points older than needed: the newest point at or before `start` is kept (the window's base).
    static func prune(_ points: inout [Point], before start: Double) {
        while points.count >= 2 && points[1].time <= start { points.removeFirst() }
    }

    /// Percent of one core over the points, if they span a full window.
    static func average(_ points: [Point], now: Double, window: Double) -> Double? {
        guard let first = points.first, let last = points.last, first.time <= now - window, last.time > first.time else { return nil }
        return (last.cpu - first.cpu) / (last.time - first.time) * 100
    }

    static func megabytes(_ bytes: Int64) -> Int64 { bytes / 1_000_000 }

    /// A number without a useless fraction: 10, 2.5.
    static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
    }
}
