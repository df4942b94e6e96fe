import Foundation
import NIOConcurrencyHelpers
import PrivateFiles

/// The agent's on-disk queue of batches not yet acknowledged by the server. One file per batch,
/// named by a growing number and its flow (`00000000000000000042-F.0123456789abcdef.batch`), made durable before it counts as queued (a private temporary file,
/// fsync, rename, fsync of the folder), removed on acknowledgement. A restart reloads it, so a
/// crash, a server restart or a network cut loses nothing. Past `maxBytes` the oldest batches are
/// dropped, counted per flow and reported. A batch file found damaged at start (torn by a power
/// loss, empty, undecodable) is counted as dropped too — for its flow when its name can still be
/// read, otherwise as unattributed — logged and reported, never silently removed.
public final class ResultQueue: Sendable {
    /// A queued batch: its file and what it is about.
    public struct Entry: Sendable {
        public var number: UInt64
        public var flowId: String
        public var seq: Int
        public var size: Int
        /// The file's name in the queue folder.
        var file: String
    }

    let directory: String
    let maxBytes: Int64
    private let state: NIOLockedValueBox<State>
    /// Signalled whenever batches leave the queue (so a producer waiting for room can go on).
    private let room = NSCondition()

    private struct State {
        var entries: [Entry] = []
        var bytes: Int64 = 0
        var next: UInt64 = 1
        var dropped = DropCounts()
    }

    /// Batches lost before the server acknowledged them: per flow, and those whose flow could not be
    /// told (a batch file damaged beyond reading).
    struct DropCounts: Codable, Equatable {
        var flows: [String: Int] = [:]
        var unattributed = 0

        init() {}

        init(from decoder: any Decoder) throws {
            // The first format was a bare {flow: count} object.
            if let flows = try? decoder.singleValueContainer().decode([String: Int].self) {
                self.flows = flows
                return
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            flows = try c.decodeIfPresent([String: Int].self, forKey: .flows) ?? [:]
            unattributed = try c.decodeIfPresent(Int.self, forKey: .unattributed) ?? 0
        }
    }

    /// Damaged batch files found when the queue was opened: (flow, if known; file name).
    public let damaged: [(flowId: String?, file: String)]

    public init(directory: String, maxBytes: Int64) throws {
        self.directory = directory
        self.maxBytes = maxBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var state = State()
        if let data = FileManager.default.contents(atPath: directory + "/dropped.json"), let dropped = try? JSONDecoder().decode(DropCounts.self, from: data) {
            state.dropped = dropped
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        // A temporary name was never renamed into the queue: its batch was never queued.
        for name in names where name.contains(".tmp") { unlink(directory + "/" + name) }
        var damaged: [(String?, String)] = []
        for name in names.filter({ $0.hasSuffix(".batch") }).sorted() {
            let data = FileManager.default.contents(atPath: directory + "/" + name) ?? Data()
            let stem = name.dropLast(".batch".count)
            let number = UInt64(stem.prefix { $0 != "-" })
            guard let number, let batch = try? Wire.decode(WireBatch.self, from: data) else {
                let named = stem.firstIndex(of: "-").map { String(stem[stem.index(after: $0)...]) }.flatMap { $0.isEmpty ? nil : $0 }
                let flowId = named ?? Self.flowId(inDamaged: data)
                if let flowId { state.dropped.flows[flowId, default: 0] += 1 } else { state.dropped.unattributed += 1 }
                damaged.append((flowId, name))
                continue
            }
            state.entries.append(Entry(number: number, flowId: batch.flowId, seq: batch.seq, size: data.count, file: name))
            state.bytes += Int64(data.count)
            state.next = max(state.next, number + 1)
        }
        self.damaged = damaged
        self.state = NIOLockedValueBox(state)
        if !damaged.isEmpty {
            // Counted durably first, then removed.
            try saveDropped()
            for (_, name) in damaged { unlink(directory + "/" + name) }
        }
    }

    /// The flow named in a torn batch file (`"flowId":"F.…"`), when that part survived (for files
    /// written before names carried the flow).
    static func flowId(inDamaged data: Data) -> String? {
        let text = String(decoding: data.prefix(512), as: UTF8.self)
        guard let key = text.range(of: #""flowId":""#) else { return nil }
        let rest = text[key.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        let flowId = String(rest[..<end])
        return flowId.isEmpty || flowId.count > 64 ? nil : flowId
    }

    /// Appends a batch (durably) and returns its entry; drops the oldest past the bound.
    @discardableResult
    public func append(_ batch: WireBatch) throws -> Entry {
        let data = try Wire.encode(batch)
        let number = state.withLockedValue { state -> UInt64 in
            defer { state.next += 1 }
            return state.next
        }
        let name = String(format: "%020llu", number) + "-" + batch.flowId.filter { $0.isLetter || $0.isNumber || $0 == "." }.prefix(64) + ".batch"
        do {
            try PrivateFile.write(data, to: directory + "/" + name)
        } catch {
            throw TransportError("cannot write the result queue: \(error)")
        }
        let entry = Entry(number: number, flowId: batch.flowId, seq: batch.seq, size: data.count, file: name)
        let evicted = state.withLockedValue { state -> [Entry] in
            // Appends may finish out of order: keep the entries sorted by number.
            let position = state.entries.lastIndex { $0.number < number }.map { $0 + 1 } ?? 0
            state.entries.insert(entry, at: position)
            state.bytes += Int64(data.count)
            var evicted: [Entry] = []
            while state.bytes > maxBytes, state.entries.count > 1 {
                let oldest = state.entries.removeFirst()
                state.bytes -= Int64(oldest.size)
                state.dropped.flows[oldest.flowId, default: 0] += 1
                evicted.append(oldest)
            }
            return evicted
        }
        for old in evicted { unlink(directory + "/" + old.file) }
        if !evicted.isEmpty { try? saveDropped() }
        return entry
    }

    /// The highest batch number of a flow still in the queue (nil when none is).
    public func highestSeq(flowId: String) -> Int? {
        state.withLockedValue { state in state.entries.lazy.filter { $0.flowId == flowId }.map(\.seq).max() }
    }

    /// Entries in order, starting after `number` (0 = from the start), at most `limit`.
    public func entries(after number: UInt64, limit: Int) -> [Entry] {
        state.withLockedValue { state in
            // Entries are in number order: find the first one after `number` by bisection (the
            // sender asks after every acknowledgement, so a long queue must not be scanned each time).
            var low = 0, high = state.entries.count
            while low < high {
                let middle = (low + high) / 2
                if state.entries[middle].number > number { high = middle } else { low = middle + 1 }
            }
            return Array(state.entries[low..<min(state.entries.count, low + limit)])
        }
    }

    public func load(_ entry: Entry) -> WireBatch? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + entry.file) else { return nil }
        return try? Wire.decode(WireBatch.self, from: data)
    }

    /// Removes the batch (flow, seq) after the server acknowledged it.
    public func acknowledge(flowId: String, seq: Int) {
        let removed = state.withLockedValue { state -> Entry? in
            guard let index = state.entries.firstIndex(where: { $0.flowId == flowId && $0.seq == seq }) else { return nil }
            let entry = state.entries.remove(at: index)
            state.bytes -= Int64(entry.size)
            return entry
        }
        if let removed { unlink(directory + "/" + removed.file) }
        room.broadcast()
    }

    public var count: Int { state.withLockedValue { $0.entries.count } }
    public var bytes: Int64 { state.withLockedValue { $0.bytes } }
    /// Every batch lost so far, attributed to a flow or not.
    public var totalDropped: Int { state.withLockedValue { $0.dropped.flows.values.reduce(0, +) + $0.dropped.unattributed } }
    /// Batches lost whose flow is unknown (damaged files).
    public var unattributedDropped: Int { state.withLockedValue { $0.dropped.unattributed } }
    public func dropped(flowId: String) -> Int { state.withLockedValue { $0.dropped.flows[flowId] ?? 0 } }

    /// Waits until the queue holds at most `limit` bytes, or `timeout` seconds pass, or `stop`
    /// says to give up. Producers of large amounts (uploads, a long collection's rows) call this so
    /// the queue never has to drop what they make while the server is merely slow.
    public func waitForRoom(below limit: Int64, stop: @Sendable () -> Bool, timeout: Double = .infinity) {
        let deadline = Date().addingTimeInterval(timeout)
        room.lock()
        defer { room.unlock() }
        while bytes > limit, !stop(), Date() < deadline {
            _ = room.wait(until: min(deadline, Date().addingTimeInterval(0.2)))
        }
    }

    private func saveDropped() throws {
        let dropped = state.withLockedValue { $0.dropped }
        try PrivateFile.write(try JSONEncoder().encode(dropped), to: directory + "/dropped.json")
    }
}
