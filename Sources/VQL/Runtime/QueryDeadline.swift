import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The deadline of the innermost `query(timeout=)` being pulled on this thread.
///
/// query() checks its timeout between rows, which is enough for plugins that produce rows often.
/// A cursor that blocks waiting for something outside the process (a shell session's output, an
/// event) would hold query() past its timeout, so such cursors also wait only until this deadline
/// and then end. Deadlines nest: an inner query(timeout=) can only shorten an outer one.
///
/// Pulling a cursor is synchronous and stays on one thread, so the deadline is thread-local (a
/// pthread key holding milliseconds, no allocation per row). A task-local was tried first and was
/// not visible to the cursor when the query ran inside a Swift task.
public enum QueryDeadline {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The deadline in force on this thread, if any.
    public static var current: Date? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Date(timeIntervalSince1970: Double(Int(bitPattern: raw)) / 1000)
    }

    /// Runs `body` with `deadline` in force (the earlier of it and any enclosing deadline).
    public static func with<T>(_ deadline: Date?, _ body: () throws -> T) rethrows -> T {
        guard let deadline else { return try body() }
        let previous = pthread_getspecific(key)
        let effective = current.map { min($0, deadline) } ?? deadline
        let millis = max(1, Int(effective.timeIntervalSince1970 * 1000))
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: millis))
        defer { pthread_setspecific(key, previous) }
        return try body()
    }

    /// True once the enclosing deadline (if any) has passed.
    public static var hasPassed: Bool {
        guard let current else { return false }
        return Date() >= current
    }
}
