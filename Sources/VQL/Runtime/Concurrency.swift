import Foundation
import Synchronization

/// Wraps a value that is handed to exactly one other thread (the engine's worker pools).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A thread-safe countdown.
final class Counter: Sendable {
    private let value: Mutex<Int>
    init(_ start: Int) { value = Mutex(start) }
    func decrement() -> Int { value.withLock { $0 -= 1; return $0 } }
}

/// A blocking bounded queue between producer and consumer threads (worker pools, parallel walks).
/// `finish` ends it after the queued items; `close` (consumer gone) makes producers stop.
public final class BoundedQueue<T>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [T] = []
    private var head = 0
    private let capacity: Int
    private var finished = false
    private var closed = false

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Adds an item, waiting while full. False when the consumer has closed the queue.
    @discardableResult
    public func put(_ item: T) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head >= capacity && !closed { condition.wait() }
        if closed { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// The next item, waiting while empty; nil once finished and drained, or closed.
    public func take() -> T? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !finished && !closed { condition.wait() }
        if closed || head == items.count { return nil }
        let item = items[head]
        head += 1
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return item
    }

    /// What a timed take found.
    public enum Timed {
        case item(T)
        case timedOut
        case ended
    }

    /// The next item, waiting at most until `deadline`.
    public func take(before deadline: Date) -> Timed {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !finished && !closed {
            // Foundation traps on far-future deadlines: wait in bounded steps instead.
            let step = min(deadline, Date().addingTimeInterval(3600))
            if !condition.wait(until: step) {
                if step < deadline { continue }
                return head == items.count ? .timedOut : takeLocked()
            }
        }
        if closed || head == items.count { return .ended }
        return takeLocked()
    }

    private func takeLocked() -> Timed {
        let item = items[head]
        head += 1
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return .item(item)
    }

    public func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    public var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }
}
