import FleetCore
import Foundation
import NIOConcurrencyHelpers
import VQL

/// What server VQL reaches when it runs inside the server (the SERVER_EVENT artifacts of the
/// server monitoring table): the datastore and the live event stream directly — no HTTP round
/// trip, no polling and no analyst key. Such queries act as the server itself, with what an
/// administrator put in the table.
public final class LocalFleet: Sendable {
    /// The service key under which a server-side session holds it.
    public static let serviceKey = ServiceKey<LocalFleet>("fleet.local")

    let server: FleetServer
    /// The server monitoring artifact (rule) the session runs.
    let rule: String
    /// Responses this rule asked for that wait for an analyst, by request, when last raised (so a
    /// rule that matches again and again raises one pending alert an hour, at most 10,000 kept).
    let pending = NIOLockedValueBox<[String: Double]>([:])

    init(server: FleetServer, rule: String) {
        self.server = server
        self.rule = rule
    }

    static func of(_ ctx: CallContext) -> LocalFleet? { ctx.context.service(serviceKey) }
}

/// Rows of one artifact handed over from the event broadcaster to a VQL thread: a task moves them
/// from the subscription into a bounded queue; the reader waits on it a tenth of a second at a time
/// (so it notices cancellation). Rows past the bound are dropped and counted, as the broadcaster
/// does for any slow reader. Forgetting the follower ends the subscription.
final class EventFollower: @unchecked Sendable {
    private let lock = NIOLock()
    private var rows: [EventRow] = []
    private var head = 0
    private let ready = DispatchSemaphore(value: 0)
    private var dropped = 0
    private let broadcaster: EventBroadcaster
    private var subscription: UInt64?

    /// Follows `artifact`: the broadcaster pushes rows in on the storing thread.
    init(_ broadcaster: EventBroadcaster, artifact: String) {
        self.broadcaster = broadcaster
        let id = broadcaster.subscribe(artifact: artifact) { [weak self] row in self?.push(row) ?? false }
        lock.withLock { subscription = id }
    }

    deinit { stop() }

    /// Takes a row; false (and counted here) when `queueRows` already wait.
    private func push(_ row: EventRow) -> Bool {
        let kept = lock.withLock { () -> Bool in
            guard rows.count - head < EventBroadcaster.queueRows else {
                dropped += 1
                return false
            }
            rows.append(row)
            return true
        }
        if kept { ready.signal() }
        return true
    }

    /// The next row, or nil after waiting `wait` seconds for one.
    func next(wait: Double) -> EventRow? {
        if let row = pop() { return row }
        _ = ready.wait(timeout: .now() + wait)
        return pop()
    }

    private func pop() -> EventRow? {
        lock.withLock {
            guard head < rows.count else { return nil }
            let row = rows[head]
            head += 1
            if head > 1024 && head * 2 > rows.count {
                rows.removeFirst(head)
                head = 0
            }
            return row
        }
    }

    /// Rows waiting to be read.
    var waiting: Int { lock.withLock { rows.count - head } }

    /// Rows dropped since the last call.
    func takeDropped() -> Int {
        lock.withLock {
            defer { dropped = 0 }
            return dropped
        }
    }

    func stop() {
        if let id = lock.withLock({ () -> UInt64? in
            defer { subscription = nil }
            return subscription
        }) {
            broadcaster.unsubscribe(id)
        }
    }
}
