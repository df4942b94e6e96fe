import Foundation
import Synchronization

/// What this process has been doing, kept in memory for self-diagnosis (`profile(logs=TRUE)`,
/// `profile(queries=TRUE)`, `trace()`): the most recent log lines of every session and the most
/// recent top-level queries with their start time and, once finished, their duration. Bounded:
/// old entries fall off, long texts are cut.
public enum Diagnostics {
    /// One log line as it was written.
    public struct LogEntry: Sendable {
        public let time: Date
        public let level: LogLevel
        public let message: String
    }

    /// One query run by a session or an artifact source.
    public struct QueryEntry: Sendable {
        public let id: Int
        public let start: Date
        public var duration: TimeInterval?
        public let text: String
    }

    static let capacity = 500
    static let maxText = 4096

    private static let logs = Mutex<[LogEntry]>([])
    private static let queries = Mutex<(next: Int, entries: [QueryEntry])>((0, []))

    static func recordLog(_ level: LogLevel, _ message: String) {
        let entry = LogEntry(time: Date(), level: level, message: String(message.prefix(maxText)))
        logs.withLock { entries in
            entries.append(entry)
            if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        }
    }

    /// Remembers a query as started; returns its id for `finishQuery`.
    static func startQuery(_ text: String) -> Int {
        queries.withLock { state in
            state.next += 1
            state.entries.append(QueryEntry(id: state.next, start: Date(), duration: nil, text: String(text.prefix(maxText))))
            if state.entries.count > capacity { state.entries.removeFirst(state.entries.count - capacity) }
            return state.next
        }
    }

    static func finishQuery(_ id: Int) {
        queries.withLock { state in
            if let index = state.entries.lastIndex(where: { $0.id == id }), state.entries[index].duration == nil {
                state.entries[index].duration = Date().timeIntervalSince(state.entries[index].start)
            }
        }
    }

    /// Recent log lines, oldest first.
    public static var recentLogs: [LogEntry] { logs.withLock { $0 } }

    /// Recent queries, oldest first; those still running have no duration.
    public static var recentQueries: [QueryEntry] { queries.withLock { $0.entries } }

    /// Records the query as started, opens it, and returns a cursor that records it as finished
    /// when exhausted or closed (a query that fails to open is finished at once).
    static func tracked(text: String, _ open: () throws -> RowCursor) rethrows -> RowCursor {
        let id = startQuery(text)
        let cursor: RowCursor
        do { cursor = try open() } catch {
            finishQuery(id)
            throw error
        }
        var finished = false
        return GeneratorCursor(onClose: {
            cursor.close()
            if !finished { finished = true; finishQuery(id) }
        }) {
            if let row = try cursor.next() { return row }
            if !finished { finished = true; finishQuery(id) }
            return nil
        }
    }
}
