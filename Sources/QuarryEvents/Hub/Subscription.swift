import Foundation
import VQL

/// One consumer of the hub: a `watch_ebpf()` query or the process tracker. Holds its kernel
/// filter slot and its queue; leaving (cursor closed, query cancelled) frees both.
final class Subscription: @unchecked Sendable {
    let id: Int
    let slot: Int
    let filter: EventFilter
    let name: String
    let logger: QueryLogger
    let queue: EventQueue
    let lossRows: Bool
    private weak var hub: EventHub?

    init(id: Int, slot: Int, filter: EventFilter, name: String, logger: QueryLogger, queue: EventQueue, hub: EventHub, lossRows: Bool) {
        self.id = id
        self.slot = slot
        self.filter = filter
        self.name = name
        self.logger = logger
        self.queue = queue
        self.hub = hub
        self.lossRows = lossRows
    }

    func cancel() { hub?.unsubscribe(self) }
}

/// The rows of a subscription as a never-ending cursor: waits for events, wakes four times a
/// second to notice cancellation, reports rows dropped because the query fell behind, and
/// unsubscribes when closed or cancelled.
final class SubscriptionCursor: RowCursor {
    private let subscription: Subscription
    private let cancellation: CancellationFlag
    private var closed = false

    init(_ subscription: Subscription, cancellation: CancellationFlag) {
        self.subscription = subscription
        self.cancellation = cancellation
    }

    deinit { close() }

    func next() throws -> Value? {
        while !closed {
            if cancellation.isCancelled {
                close()
                throw QueryCancelled()
            }
            let row = subscription.queue.take(timeout: 0.25)
            let dropped = subscription.queue.takeDropped()
            if dropped > 0 {
                subscription.logger.log(.warning, "\(subscription.name): \(dropped) events dropped: the query reads slower than events arrive")
            }
            if let row { return row }
            if subscription.queue.isFinished { return nil }
        }
        return nil
    }

    func close() {
        guard !closed else { return }
        closed = true
        subscription.cancel()
    }
}
