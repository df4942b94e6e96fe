import FleetCore
import Foundation
import NIOConcurrencyHelpers

/// Hands every event row the server stores to the live readers of its artifact (`watch_monitoring`,
/// `quarry events --follow` on this frontend): the basis of detection on the server. Each reader has
/// a bounded queue; when a reader falls behind, the newest rows past the bound are dropped for it
/// alone, counted, and logged once per burst — ingestion never waits for a reader.
public final class EventBroadcaster: Sendable {
    /// Rows a reader may have waiting at most.
    public static let queueRows = 10_000

    struct Subscriber {
        var artifact: String
        /// Takes a row; false when the reader's queue is full (the row is dropped for it).
        var deliver: @Sendable (EventRow) -> Bool
        var dropped = 0
    }

    private let subscribers = NIOLockedValueBox<[UInt64: Subscriber]>([:])
    private let nextId = NIOLockedValueBox<UInt64>(0)
    private let log: @Sendable (String) -> Void
    /// Rows dropped for slow readers since the start.
    public var dropped: Int { droppedTotal.withLockedValue { $0 } }
    private let droppedTotal = NIOLockedValueBox(0)

    init(log: @escaping @Sendable (String) -> Void) {
        self.log = log
    }

    /// The rows of `artifact` stored from now on, until the stream is no longer iterated.
    public func subscribe(artifact: String) -> AsyncStream<EventRow> {
        let id = nextId.withLockedValue { value -> UInt64 in
            value += 1
            return value
        }
        let (stream, continuation) = AsyncStream.makeStream(of: EventRow.self, bufferingPolicy: .bufferingOldest(Self.queueRows))
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        subscribers.withLockedValue {
            $0[id] = Subscriber(artifact: artifact, deliver: { row in
                if case .dropped = continuation.yield(row) { return false }
                return true
            })
        }
        return stream
    }

    /// The rows of `artifact` handed to `deliver` as they are stored, on the storing thread (no
    /// task involved, so a busy task pool cannot delay a server rule); returns the ID to unsubscribe.
    func subscribe(artifact: String, deliver: @escaping @Sendable (EventRow) -> Bool) -> UInt64 {
        let id = nextId.withLockedValue { value -> UInt64 in
            value += 1
            return value
        }
        subscribers.withLockedValue { $0[id] = Subscriber(artifact: artifact, deliver: deliver) }
        return id
    }

    func unsubscribe(_ id: UInt64) {
        if let gone = subscribers.withLockedValue({ $0.removeValue(forKey: id) }), gone.dropped > 0 {
            log("watch_monitoring(\(gone.artifact)): reader ended after \(gone.dropped) rows dropped")
        }
    }

    /// Readers now (for tests and metrics).
    public var readers: Int { subscribers.withLockedValue { $0.count } }

    /// Offers stored rows to their artifact's readers.
    func publish(_ rows: [EventRow]) {
        guard !rows.isEmpty else { return }
        var reports: [String] = []
        var lost = 0
        subscribers.withLockedValue { subscribers in
            for (id, subscriber) in subscribers {
                var dropped = 0
                for row in rows where row.artifact == subscriber.artifact {
                    if !subscriber.deliver(row) { dropped += 1 }
                }
                guard dropped > 0 else { continue }
                // Logged when a reader starts falling behind, then every 10,000 rows it misses.
                let before = subscriber.dropped
                subscribers[id]?.dropped += dropped
                if before == 0 || before / 10_000 != (before + dropped) / 10_000 {
                    reports.append("watch_monitoring(\(subscriber.artifact)): a slow reader missed \(before + dropped) rows so far")
                }
                lost += dropped
            }
        }
        if lost > 0 { droppedTotal.withLockedValue { $0 += lost } }
        reports.forEach(log)
    }
}
