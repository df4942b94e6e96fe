import Foundation
import VQL

/// The bounded queue between an event source's thread and one query. The source never waits:
/// when the query falls behind and the queue is full, the newest rows are dropped and counted
/// (the query reports the count). The query waits with a timeout so it can see cancellation.
final class EventQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Value] = []
    private var head = 0
    private let capacity: Int
    private var dropped: UInt64 = 0
    private var finished = false

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Adds a row unless the queue is full (then counts it as dropped). False once finished.
    @discardableResult
    func offer(_ item: Value) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if finished { return false }
        if items.count - head >= capacity {
            dropped += 1
            return true
        }
        items.append(item)
        condition.signal()
        return true
    }

    /// The next row, waiting at most `timeout` seconds; nil on timeout or when finished and empty.
    func take(timeout: Double) -> Value? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while head == items.count && !finished {
            if !condition.wait(until: deadline) { break }
        }
        guard head < items.count else { return nil }
        let item = items[head]
        head += 1
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }

    /// Drops counted since the last call.
    func takeDropped() -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        let value = dropped
        dropped = 0
        return value
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    var isFinished: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished && head == items.count
    }

    var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count - head
    }
}
