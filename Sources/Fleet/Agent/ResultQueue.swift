import Foundation
import NIOConcurrencyHelpers

/// The agent's on-disk queue of batches not yet acknowledged by the server. One file per batch,
/// named by a growing number, written atomically (write to a temporary name, then rename), removed
/// on acknowledgement. A restart reloads it, so a crash, a server restart or a network cut loses
/// nothing. Past `maxBytes` the oldest batches are dropped, counted per flow and reported.
public final class ResultQueue: Sendable {
    /// A queued batch: its file and what it is about.
    public struct Entry: Sendable {
        public var number: UInt64
        public var flowId: String
        public var seq: Int
        public var size: Int
    }

    let directory: String
    let maxBytes: Int64
    private let state: NIOLockedValueBox<State>

    private struct State {
        var entries: [Entry] = []
        var bytes: Int64 = 0
        var next: UInt64 = 1
        var dropped: [String: Int] = [:]
    }

    public init(directory: String, maxBytes: Int64) throws {
        self.directory = directory
        self.maxBytes = maxBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var state = State()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasSuffix(".tmp") { unlink(directory + "/" + name) }
        for name in names.filter({ $0.hasSuffix(".batch") }).sorted() {
            guard let number = UInt64(name.dropLast(6)), let data = FileManager.default.contents(atPath: directory + "/" + name),
                let batch = try? Wire.decode(WireBatch.self, from: data)
            else {
                unlink(directory + "/" + name)
                continue
            }
            state.entries.append(Entry(number: number, flowId: batch.flowId, seq: batch.seq, size: data.count))
            state.bytes += Int64(data.count)
            state.next = max(state.next, number + 1)
        }
        if let data = FileManager.default.contents(atPath: directory + "/dropped.json"), let dropped = try? JSONDecoder().decode([String: Int].self, from: data) {
            state.dropped = dropped
        }
        self.state = NIOLockedValueBox(state)
    }

    /// Appends a batch (durably) and returns its entry; drops the oldest past the bound.
    @discardableResult
    public func append(_ batch: WireBatch) throws -> Entry {
        let data = try Wire.encode(batch)
        let number = state.withLockedValue { state -> UInt64 in
            defer { state.next += 1 }
            return state.next
        }
        let path = directory + "/" + String(format: "%020llu", number) + ".batch"
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]), rename(temporary, path) == 0 else {
            throw TransportError("cannot write the result queue in \(directory): \(String(cString: strerror(errno)))")
        }
        let entry = Entry(number: number, flowId: batch.flowId, seq: batch.seq, size: data.count)
        let evicted = state.withLockedValue { state -> [Entry] in
            state.entries.append(entry)
            state.bytes += Int64(data.count)
            var evicted: [Entry] = []
            while state.bytes > maxBytes, state.entries.count > 1 {
                let oldest = state.entries.removeFirst()
                state.bytes -= Int64(oldest.size)
                state.dropped[oldest.flowId, default: 0] += 1
                evicted.append(oldest)
            }
            return evicted
        }
        for old in evicted { unlink(file(old.number)) }
        if !evicted.isEmpty { saveDropped() }
        return entry
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
        guard let data = FileManager.default.contents(atPath: file(entry.number)) else { return nil }
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
        if let removed { unlink(file(removed.number)) }
    }

    public var count: Int { state.withLockedValue { $0.entries.count } }
    public var totalDropped: Int { state.withLockedValue { $0.dropped.values.reduce(0, +) } }
    public func dropped(flowId: String) -> Int { state.withLockedValue { $0.dropped[flowId] ?? 0 } }

    private func file(_ number: UInt64) -> String { directory + "/" + String(format: "%020llu", number) + ".batch" }

    private func saveDropped() {
        let dropped = state.withLockedValue { $0.dropped }
        if let data = try? JSONEncoder().encode(dropped) { try? data.write(to: URL(fileURLWithPath: directory + "/dropped.json"), options: .atomic) }
    }
}
