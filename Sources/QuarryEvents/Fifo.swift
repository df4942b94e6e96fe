import Foundation
import Synchronization
import VQL

/// `fifo(query=, max_rows=, max_age=)`: remembers the recent rows of an event query. The first
/// call at a call site starts the query in the background (for the rest of the session); every
/// call yields the rows kept now, at most `max_rows`, none older than `max_age` seconds. It lets
/// an event query look back, e.g. at the failed logins before a successful one.
public enum Fifo {
    /// One running query and its recent rows, per call site and session.
    final class Buffer: @unchecked Sendable {
        private let rows = Mutex<[(time: Double, row: Value)]>([])
        let maxRows: Int
        let maxAge: Double

        init(maxRows: Int, maxAge: Double) {
            self.maxRows = maxRows
            self.maxAge = maxAge
        }

        func add(_ row: Value) {
            rows.withLock {
                $0.append((Date().timeIntervalSince1970, row))
                if $0.count > maxRows { $0.removeFirst($0.count - maxRows) }
            }
        }

        func flush() { rows.withLock { $0.removeAll() } }

        var current: [Value] {
            let oldest = Date().timeIntervalSince1970 - maxAge
            return rows.withLock { rows in
                rows.removeAll { $0.time < oldest }
                return rows.map(\.row)
            }
        }
    }

    private static let buffers = Mutex<[ObjectIdentifier: (context: WeakContext, buffer: Buffer)]>([:])

    struct WeakContext: @unchecked Sendable {
        weak var context: QueryContext?
    }

    public static let plugin = PluginDeclaration(
        name: "fifo",
        summary: "The recent rows of an event query: the first call starts the query in the background; every call yields "
            + "the rows kept (at most max_rows, none older than max_age seconds).",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The event query to remember."),
            ArgumentSpec("max_rows", .int, "Rows kept (default 1000)."),
            ArgumentSpec("max_age", .int, "Seconds a row is kept (default 60)."),
            ArgumentSpec("flush", .bool, "Forget the rows kept so far."),
        ],
        examples: []
    ) { ctx in
        let key = ObjectIdentifier(ctx.site)
        let context = ctx.context
        let existing: Buffer? = buffers.withLock { table in
            // Sessions that ended leave their buffers behind: drop them.
            table = table.filter { $0.value.context.context != nil }
            guard let entry = table[key], entry.context.context === context else { return nil }
            return entry.buffer
        }
        if let existing {
            if ctx.bool("flush") ?? false { existing.flush() }
            return ArrayCursor(existing.current)
        }
        guard case .query(let query) = ctx.value("query") ?? .null else {
            ctx.log(.error, "fifo: query= must be a query")
            return ArrayCursor([])
        }
        let buffer = Buffer(maxRows: max(1, Int(clamping: ctx.int("max_rows") ?? 1000)), maxAge: Double(ctx.int("max_age") ?? 60))
        buffers.withLock { $0[key] = (WeakContext(context: context), buffer) }
        let box = UncheckedSendable(query)
        let thread = Thread {
            do {
                let cursor = try box.value.cursor()
                defer { cursor.close() }
                while let row = try cursor.next() { buffer.add(row.materialized()) }
            } catch is QueryCancelled {
            } catch {
                context.log(.error, "fifo: \(error)")
            }
        }
        thread.name = "quarry-fifo"
        thread.start()
        return ArrayCursor([])
    }
}

