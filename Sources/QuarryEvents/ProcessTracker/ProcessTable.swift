import VQL

/// A process as the tracker knows it: identity, lifetime and the facts captured while it ran
/// (`Data`: Name, Exe, CommandLine, Username, …), which outlive the process.
public struct TrackedProcess: Sendable {
    public var pid: Int32
    public var ppid: Int32
    public var startTime: Timestamp?
    public var endTime: Timestamp?
    public var data: Dict

    public init(pid: Int32, ppid: Int32, startTime: Timestamp?, endTime: Timestamp? = nil, data: Dict) {
        self.pid = pid
        self.ppid = ppid
        self.startTime = startTime
        self.endTime = endTime
        self.data = data
    }
}

/// One change to the table, as `process_tracker_updates()` reports it.
public struct TrackerUpdate: Sendable {
    public enum Kind: String, Sendable { case start, exit, stats }
    public var kind: Kind
    public var process: TrackedProcess

    static let schema = Schema(["id", "parent_id", "update_type", "start_time", "end_time", "data"])

    var row: Value {
        .dict(Dict(schema: Self.schema, values: [
            .int(Int64(process.pid)), .int(Int64(process.ppid)), .string(kind.rawValue),
            process.startTime.map { .timestamp($0) } ?? .null, process.endTime.map { .timestamp($0) } ?? .null,
            .dict(process.data),
        ]))
    }
}

/// The tracker's state, without threads or I/O: processes alive now, and those that exited,
/// kept in an LRU of `maxExited` entries (oldest exit forgotten first). A pid can have been
/// used by several processes: lookups prefer the live one, then the latest that exited.
public struct ProcessTable: Sendable {
    public private(set) var live: [Int32: TrackedProcess] = [:]
    /// Exited processes, oldest exit first; `exitedBase` is the sequence number of element 0.
    private var exited: [TrackedProcess] = []
    private var exitedHead = 0
    private var exitedBase = 0
    /// pid → sequence numbers of its exited entries, in exit order.
    private var exitedByPid: [Int32: [Int]] = [:]
    public var maxExited: Int

    public init(maxExited: Int = 10_000) { self.maxExited = max(1, maxExited) }

    public var exitedCount: Int { exited.count - exitedHead }

    /// Start times from /proc (whole-second boot time, clock ticks) and from the kernel
    /// (nanoseconds) differ by up to a second for the same process: closer than this is one
    /// process. An unknown start matches anything.
    static func sameStart(_ a: Timestamp?, _ b: Timestamp?) -> Bool {
        guard let a, let b else { return true }
        return abs(a.nanoseconds - b.nanoseconds) < 2_000_000_000
    }

    /// A process started (fork, exec, sync). An exec of a live pid with the same start time
    /// updates its data; a different start time means the pid was reused: the old one exited.
    @discardableResult
    public mutating func start(_ process: TrackedProcess, at now: Timestamp) -> [TrackerUpdate] {
        var updates: [TrackerUpdate] = []
        if var current = live[process.pid] {
            let sameProcess = Self.sameStart(current.startTime, process.startTime)
            if sameProcess {
                for (key, value) in process.data.pairs where !value.isNull { current.data[key] = value }
                if process.ppid > 0 { current.ppid = process.ppid }
                if current.startTime == nil { current.startTime = process.startTime }
                live[process.pid] = current
                updates.append(TrackerUpdate(kind: .start, process: current))
                return updates
            }
            if let update = exit(pid: process.pid, at: process.startTime ?? now) { updates.append(update) }
        }
        live[process.pid] = process
        updates.append(TrackerUpdate(kind: .start, process: process))
        return updates
    }

    /// A process exited: it moves to the LRU of exited processes.
    @discardableResult
    public mutating func exit(pid: Int32, at time: Timestamp, data: Dict? = nil) -> TrackerUpdate? {
        guard var process = live.removeValue(forKey: pid) else { return nil }
        process.endTime = time
        if let data { for (key, value) in data.pairs { process.data[key] = value } }
        exitedByPid[pid, default: []].append(exitedBase + exited.count)
        exited.append(process)
        while exitedCount > maxExited { forgetOldest() }
        return TrackerUpdate(kind: .exit, process: process)
    }

    private mutating func forgetOldest() {
        let pid = exited[exitedHead].pid
        exitedHead += 1
        if var sequences = exitedByPid[pid], !sequences.isEmpty {
            sequences.removeFirst()
            exitedByPid[pid] = sequences.isEmpty ? nil : sequences
        }
        if exitedHead > 4096 && exitedHead * 2 > exited.count {
            exited.removeFirst(exitedHead)
            exitedBase += exitedHead
            exitedHead = 0
        }
    }

    /// A full listing (from /proc or a sync query) taken at `listedAt`: new processes start,
    /// and live ones missing from it have exited by `now`. Events applied while the listing was
    /// read win: a process started after `listedAt` is not ended for being absent, and one
    /// that already exited is not brought back.
    @discardableResult
    public mutating func sync(_ processes: [TrackedProcess], listedAt: Timestamp, at now: Timestamp) -> [TrackerUpdate] {
        var updates: [TrackerUpdate] = []
        let seen = Set(processes.map(\.pid))
        for pid in live.keys.sorted() where !seen.contains(pid) {
            if let start = live[pid]?.startTime, start > listedAt { continue }
            if let update = exit(pid: pid, at: now) { updates.append(update) }
        }
        for process in processes {
            if let current = live[process.pid], Self.sameStart(current.startTime, process.startTime) { continue }
            if live[process.pid] == nil, process.startTime != nil, let gone = get(process.pid), Self.sameStart(gone.startTime, process.startTime) { continue }
            updates += start(process, at: now)
        }
        return updates
    }

    /// The live process with this pid, else the latest that exited.
    public func get(_ pid: Int32) -> TrackedProcess? {
        if let process = live[pid] { return process }
        guard let sequence = exitedByPid[pid]?.last else { return nil }
        return exited[sequence - exitedBase]
    }

    /// Every tracked process, live first (by pid), then exited (oldest exit first).
    public var all: [TrackedProcess] {
        live.keys.sorted().compactMap { live[$0] } + exited[exitedHead...]
    }

    /// Children: processes whose parent is `pid` and that started after it (a reused pid's
    /// children are not its predecessor's).
    public func children(of pid: Int32) -> [TrackedProcess] {
        let parentStart = get(pid)?.startTime
        return (Array(live.values) + exited[exitedHead...]).sorted { $0.pid < $1.pid }.filter { child in
            guard child.ppid == pid, child.pid != pid else { return false }
            guard let parentStart, let childStart = child.startTime else { return true }
            return childStart >= parentStart
        }
    }

    /// The process and its ancestors up to pid 1 (or `limit` entries).
    public func callchain(_ pid: Int32, limit: Int) -> [TrackedProcess] {
        var chain: [TrackedProcess] = []
        var seen: Set<Int32> = []
        var current = pid
        while chain.count < limit, current > 0, seen.insert(current).inserted, let process = get(current) {
            chain.append(process)
            current = process.ppid
        }
        return chain
    }
}
