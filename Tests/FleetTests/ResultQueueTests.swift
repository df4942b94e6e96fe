import Fleet
import FleetCore
import Foundation
import Testing

/// The agent's on-disk queue: survives a restart, removes on acknowledgement, drops oldest past its bound.
@Suite struct ResultQueueTests {
    static func directory() -> String { NSTemporaryDirectory() + "quarry-queue-" + UUID().uuidString }

    static func batch(_ flow: String, _ seq: Int, bytes: Int = 100) -> WireBatch {
        WireBatch(flowId: flow, seq: seq, payload: .rows(artifact: "A", source: "", rows: [String(repeating: "x", count: bytes)]))
    }

    @Test func batchesSurviveARestartUntilAcknowledged() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try ResultQueue(directory: dir, maxBytes: 1 << 20)
        for seq in 1...5 { try queue.append(Self.batch("F.1", seq)) }
        queue.acknowledge(flowId: "F.1", seq: 2)
        let reopened = try ResultQueue(directory: dir, maxBytes: 1 << 20)
        let entries = reopened.entries(after: 0, limit: 100)
        #expect(entries.map(\.seq) == [1, 3, 4, 5])
        #expect(reopened.load(entries[0]) == Self.batch("F.1", 1))
        // New batches number after the old ones, so order is kept across restarts.
        let next = try reopened.append(Self.batch("F.2", 1))
        #expect(next.number > (entries.last?.number ?? 0))
        #expect(reopened.entries(after: entries[1].number, limit: 2).map(\.seq) == [4, 5])
    }

    @Test func pastTheBoundTheOldestAreDroppedAndCounted() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try ResultQueue(directory: dir, maxBytes: 3_000)
        for seq in 1...10 { try queue.append(Self.batch("F.big", seq, bytes: 900)) }
        let kept = queue.entries(after: 0, limit: 100).map(\.seq)
        #expect(kept.count < 10 && !kept.isEmpty)
        #expect(kept.last == 10)
        #expect(queue.dropped(flowId: "F.big") == 10 - kept.count)
        #expect(try ResultQueue(directory: dir, maxBytes: 3_000).dropped(flowId: "F.big") == 10 - kept.count)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".batch") }
        #expect(files.count == kept.count)
    }

    /// A power loss can leave a batch file torn or empty: found at start it is counted as dropped
    /// (for its flow when its name is still readable, else unattributed), persisted, then removed.
    @Test func damagedBatchFilesAreCountedNotSilentlyRemoved() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try ResultQueue(directory: dir, maxBytes: 1 << 20)
        for seq in 1...4 { try queue.append(Self.batch("F.torn", seq)) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".batch") }.sorted()
        #expect(files.count == 4)
        // Torn in the middle and empty (the flow is in their names), and garbage under a bare number.
        let torn = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + files[1]))
        try torn.prefix(torn.count / 2).write(to: URL(fileURLWithPath: dir + "/" + files[1]))
        try Data().write(to: URL(fileURLWithPath: dir + "/" + files[2]))
        try Data([0xFF, 0x00, 0x13]).write(to: URL(fileURLWithPath: dir + "/00000000000000000099.batch"))
        let reopened = try ResultQueue(directory: dir, maxBytes: 1 << 20)
        #expect(reopened.entries(after: 0, limit: 10).map(\.seq) == [1, 4])
        #expect(reopened.dropped(flowId: "F.torn") == 2)
        #expect(reopened.unattributedDropped == 1)
        #expect(reopened.totalDropped == 3)
        #expect(reopened.damaged.count == 3)
        // Counted durably: a third start still knows, and the damaged files are gone.
        let again = try ResultQueue(directory: dir, maxBytes: 1 << 20)
        #expect(again.totalDropped == 3 && again.dropped(flowId: "F.torn") == 2 && again.damaged.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".batch") }.count == 2)
    }

    /// Queue files are private and written through a temporary name that never outlives a start.
    @Test func queueFilesArePrivate() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try ResultQueue(directory: dir, maxBytes: 1 << 20)
        try queue.append(Self.batch("F.1", 1))
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/00000000000000000007.batch.tmp-1-2"))
        _ = try ResultQueue(directory: dir, maxBytes: 1 << 20)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(names.filter { $0.contains(".tmp") }.isEmpty)
        for name in names {
            #expect(try FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.posixPermissions] as? Int == 0o600)
        }
    }
}
