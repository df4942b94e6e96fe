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
}
