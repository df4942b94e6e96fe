import Foundation

/// Never-ending plugins (event queries): clock ticks, diff between periodic runs of a query, and
/// sequence's correlation of several event streams. They end only when the query is cancelled or
/// a LIMIT closes them.
public enum EventPlugins {
    public static let all: [PluginDeclaration] = [clock, diff, sequence]

    public static let clock = PluginDeclaration(
        name: "clock",
        summary: "Yields the current time every `period` seconds (or `ms` milliseconds), starting at `start`; never ends. Each row is a timestamp: read `Unix`, `Year`, … from it.",
        arguments: [
            ArgumentSpec("start", .any, "When to yield the first row (epoch seconds, date string or timestamp; default now)."),
            ArgumentSpec("period", .int, "Seconds between rows (default 1)."),
            ArgumentSpec("ms", .int, "Milliseconds between rows (instead of period)."),
        ],
        examples: ["SELECT Unix > 0 AS Ticking FROM clock(period=1) LIMIT 1"]
    ) { ctx in
        let interval = ctx.int("ms").map { Double(max(1, $0)) / 1000 } ?? Double(max(1, ctx.int("period") ?? 1))
        var next = Date()
        if let start = ctx.value("start"), case .timestamp(let t)? = Timestamps.parse(start, zone: Timestamps.parseZone(ctx.env)) {
            next = max(next, Date(timeIntervalSince1970: t.seconds))
        }
        return GeneratorCursor {
            try Pacing.sleep(until: next, ctx.context.cancellation)
            let now = Date()
            next = max(next.addingTimeInterval(interval), now)
            return .timestamp(Timestamp(seconds: now.timeIntervalSince1970))
        }
    }

    public static let diff = PluginDeclaration(
        name: "diff",
        summary: "Runs `query` every `period` seconds and yields the rows that appeared (Diff='added') or went away (Diff='removed') since the last run, told apart by the `key` column; never ends.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The query to watch."),
            ArgumentSpec("key", .string, required: true, "The column that identifies a row."),
            ArgumentSpec("period", .int, "Seconds between runs (default 60)."),
        ],
        columns: [ColumnSpec("Diff", .string, "added or removed"), ColumnSpec("*", .any, "The row's own columns.")],
        examples: ["SELECT Diff, K FROM diff(query={ SELECT 1 AS K FROM scope() }, key='K', period=1) LIMIT 1"]
    ) { ctx in
        let key = ctx.string("key") ?? ""
        let period = Double(max(1, ctx.int("period") ?? 60))
        var previous: [String: Value] = [:]
        var pending: [Value] = []
        var nextRun = Date()
        return GeneratorCursor {
            while pending.isEmpty {
                try Pacing.sleep(until: nextRun, ctx.context.cancellation)
                nextRun = Date().addingTimeInterval(period)
                let query = CallContext(env: ctx.env, site: ctx.site).raw("query") ?? .null
                let cursor = try Rows.cursor(for: query)
                var current: [String: Value] = [:]
                var order: [String] = []
                while let row = try cursor.next() {
                    try ctx.checkCancelled()
                    let id = GoFormat.plain((rowMember(row, key) ?? .null).reduced())
                    if current[id] == nil { order.append(id) }
                    current[id] = row.materialized()
                }
                cursor.close()
                for id in order where previous[id] == nil { pending.append(tagged(current[id] ?? .null, "added")) }
                for (id, row) in previous.sorted(by: { $0.key < $1.key }) where current[id] == nil {
                    pending.append(tagged(row, "removed"))
                }
                previous = current
            }
            return pending.removeFirst()
        }
    }

    /// The row with a leading Diff column.
    static func tagged(_ row: Value, _ diff: String) -> Value {
        var dict = Dict([("Diff", .string(diff))])
        for name in rowColumnNames(row) where name != "Diff" { dict[name] = rowMember(row, name) ?? .null }
        return .dict(dict)
    }

    public static let sequence = PluginDeclaration(
        name: "sequence",
        summary: "Runs every other query argument at the same time and keeps their rows, newest last, in a list named SEQUENCE (rows older than `max_age` seconds drop out); after each new row it runs `query`, which selects from SEQUENCE, and yields its rows.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "Run after each new row; SEQUENCE holds the rows so far."),
            ArgumentSpec("max_age", .int, "Seconds a row stays in SEQUENCE (default: as long as the query runs; at most 10000 rows are kept)."),
        ],
        examples: ["SELECT * FROM sequence(a={ SELECT 1 AS X FROM scope() }, query={ SELECT count() AS Seen FROM SEQUENCE GROUP BY 1 })"],
        strictArguments: false
    ) { ctx in
        let maxAge = ctx.int("max_age").map { Double(max(0, $0)) }
        let sources = ctx.argumentNames.filter { $0 != "query" && $0 != "max_age" }
        let queue = BoundedQueue<Value>(capacity: 1024)
        try FanIn.start(sources, of: ctx, into: queue, label: "sequence")
        var window: [(Date, Value)] = []
        var inner: RowCursor?
        return GeneratorCursor(onClose: { inner?.close(); queue.close() }) {
            while true {
                if let current = inner {
                    if let row = try current.next() { return row }
                    current.close()
                    inner = nil
                }
                try ctx.checkCancelled()
                guard let row = queue.take() else { return nil }
                let now = Date()
                window.append((now, row))
                if let maxAge { window.removeAll { now.timeIntervalSince($0.0) > maxAge } }
                if window.count > 10000 { window.removeFirst(window.count - 10000) }
                let child = ctx.env.child(variables: ["SEQUENCE": .value(.list(window.map(\.1)))])
                inner = try Rows.cursor(for: CallContext(env: child, site: ctx.site).raw("query") ?? .null)
            }
        }
    }
}
