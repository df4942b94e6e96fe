import FleetCore
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import Fleet

/// The server's live readers of event rows: each gets its artifact's rows in order, a slow one loses
/// rows past its bound (counted and logged) without holding up the others or the ingestion.
@Suite struct EventBroadcasterTests {
    func row(_ artifact: String, _ n: Int) -> EventRow {
        EventRow(clientId: "C.1", artifact: artifact, source: "", time: Double(n), seq: n, index: 0, json: "{\"n\":\(n)}")
    }

    @Test func readersGetTheirArtifactsRowsAndASlowReaderLosesOnlyItsOwn() async throws {
        let lines = NIOLockedValueBox<[String]>([])
        let broadcaster = EventBroadcaster(log: { line in lines.withLockedValue { $0.append(line) } })
        let slow = broadcaster.subscribe(artifact: "A")
        let other = broadcaster.subscribe(artifact: "B")
        #expect(broadcaster.readers == 2)
        let total = EventBroadcaster.queueRows + 5
        broadcaster.publish((0..<total).map { row("A", $0) } + [row("B", 1)])
        #expect(broadcaster.dropped == 5)
        #expect(lines.withLockedValue { $0 }.contains { $0.contains("slow reader missed 5 rows") })

        var iterator = slow.makeAsyncIterator()
        var seen: [Int] = []
        for _ in 0..<EventBroadcaster.queueRows { if let next = await iterator.next() { seen.append(next.seq) } }
        #expect(seen == Array(0..<EventBroadcaster.queueRows))
        var others = other.makeAsyncIterator()
        #expect(await others.next()?.json == "{\"n\":1}")
        // Once drained, the slow reader takes new rows again.
        broadcaster.publish([row("A", 99)])
        #expect(await iterator.next()?.seq == 99)
    }

    /// What `watch_monitoring()` reads inside the server: rows in order, at most `queueRows` waiting
    /// (the rest dropped and counted, here or in the broadcaster), and stopping unsubscribes.
    /// The follower's next row, polled without blocking this task (its pump runs on the same pool).
    func next(_ follower: EventFollower, within seconds: Double) async throws -> EventRow? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let row = follower.next(wait: 0) { return row }
            try await Task.sleep(for: .milliseconds(10))
        } while Date() < deadline
        return nil
    }

    @Test func aFollowerKeepsOrderStaysBoundedAndUnsubscribesWhenStopped() async throws {
        let broadcaster = EventBroadcaster(log: { _ in })
        let follower = EventFollower(broadcaster, artifact: "A")
        broadcaster.publish([row("A", 1), row("B", 2), row("A", 3)])
        #expect(try await next(follower, within: 20)?.seq == 1)
        #expect(try await next(follower, within: 20)?.seq == 3)
        #expect(try await next(follower, within: 0.2) == nil)

        let total = 2 * EventBroadcaster.queueRows + 7
        broadcaster.publish((0..<total).map { row("A", 10 + $0) })
        // Unread, every row is waiting here or was dropped (here or by the broadcaster), once the
        // pump has taken what the broadcaster kept; at most `queueRows` wait.
        var dropped = 0
        let settled = Date().addingTimeInterval(20)
        while follower.waiting + dropped + broadcaster.dropped < total && Date() < settled {
            dropped += follower.takeDropped()
            try await Task.sleep(for: .milliseconds(10))
        }
        dropped += follower.takeDropped()
        #expect(follower.waiting + dropped + broadcaster.dropped == total)
        #expect(follower.waiting <= EventBroadcaster.queueRows)
        var kept: [Int] = []
        while let next = follower.next(wait: 0) { kept.append(next.seq) }
        #expect(kept.count <= EventBroadcaster.queueRows && kept == kept.sorted() && kept.first == 10)

        follower.stop()
        let deadline = Date().addingTimeInterval(5)
        while broadcaster.readers > 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(broadcaster.readers == 0)
    }

    @Test func aReaderThatStopsIsForgotten() async throws {
        let broadcaster = EventBroadcaster(log: { _ in })
        let stream = broadcaster.subscribe(artifact: "A")
        #expect(broadcaster.readers == 1)
        let task = Task {
            for await _ in stream {}
        }
        task.cancel()
        _ = await task.value
        #expect(broadcaster.readers == 0)
        broadcaster.publish([row("A", 1)])
        #expect(broadcaster.dropped == 0)
    }
}
