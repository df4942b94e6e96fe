import Foundation

/// Plugins that reshape another query's row stream in time or in groups: batch, delay, sample,
/// dedup, column_filter, combine. Those that must watch a clock while the query runs pull it on a
/// background thread (`BackgroundRows`).
public enum StreamPlugins {
    public static let all: [PluginDeclaration] = [batch, columnFilter, combine, dedup, delay, sample]

    public static let batch = PluginDeclaration(
        name: "batch",
        summary: "Groups the rows of `query` into lists, one output row `{rows: [...]}` per group: every `batch_size` rows, when `batch_func` says the group is ready, or when `timeout` seconds pass with a group open.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to group."),
            ArgumentSpec("batch_size", .int, "Rows per group (default 10)."),
            ArgumentSpec("batch_func", .lambda, "A lambda given the group so far (a list of rows); true closes the group."),
            ArgumentSpec("timeout", .int, "Close an open group after this many seconds even when it is not full."),
        ],
        columns: [ColumnSpec("rows", .list, "The rows of the group.")],
        examples: ["SELECT * FROM batch(query={ SELECT _value FROM range(end=5) }, batch_size=2)"]
    ) { ctx in
        let lambda = ctx.lambda("batch_func")
        let size = Int(ctx.int("batch_size") ?? (lambda == nil ? 10 : 0))
        let timeout = ctx.double("timeout").map { max(0.001, $0) }
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        let schema = Schema(["rows"])
        var pending: [Value] = []
        func ready() -> Bool {
            if size > 0 && pending.count >= size { return true }
            if let lambda { return lambda.call([.list(pending)], in: ctx.env).isTruthy }
            return false
        }
        func flush() -> Value? {
            guard !pending.isEmpty else { return nil }
            defer { pending = [] }
            return .dict(Dict(schema: schema, values: [.list(pending)]))
        }
        guard let timeout else {
            return GeneratorCursor(onClose: { upstream.close() }) {
                while let row = try upstream.next() {
                    try ctx.checkCancelled()
                    pending.append(row.materialized())
                    if ready() { return flush() }
                }
                return flush()
            }
        }
        let background = BackgroundRows(upstream, ctx: ctx)
        var deadline: Date?
        return GeneratorCursor(onClose: { background.close() }) {
            while true {
                try ctx.checkCancelled()
                switch background.queue.take(before: deadline ?? .distantFuture) {
                case .item(let row):
                    if pending.isEmpty { deadline = Date().addingTimeInterval(timeout) }
                    pending.append(row)
                    if ready() {
                        deadline = nil
                        return flush()
                    }
                case .timedOut:
                    deadline = nil
                    if let group = flush() { return group }
                case .ended:
                    try background.rethrow()
                    return flush()
                }
            }
        }
    }

    public static let columnFilter = PluginDeclaration(
        name: "column_filter",
        summary: "Keeps only some columns of `query`'s rows: those matching any `include` regex (all when none is given) and no `exclude` regex.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to filter."),
            ArgumentSpec("include", .stringList, "Regexes of column names to keep."),
            ArgumentSpec("exclude", .stringList, "Regexes of column names to drop."),
        ],
        examples: ["SELECT * FROM column_filter(query={ SELECT 1 AS A, 2 AS B, 3 AS AB FROM scope() }, include='A', exclude='B')"]
    ) { ctx in
        let include = (ctx.strings("include") ?? []).compactMap { ctx.context.regex($0) }
        let exclude = (ctx.strings("exclude") ?? []).compactMap { ctx.context.regex($0) }
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        var lastNames: [String]?
        var kept: [Int] = []
        var schema = Schema.empty
        return GeneratorCursor(onClose: { upstream.close() }) {
            guard let row = try upstream.next() else { return nil }
            let names = rowColumnNames(row)
            if names != lastNames {
                lastNames = names
                kept = names.indices.filter { i in
                    (include.isEmpty || include.contains { $0.matches(names[i]) }) && !exclude.contains { $0.matches(names[i]) }
                }
                schema = Schema(kept.map { names[$0] })
            }
            return .dict(Dict(schema: schema, values: kept.map { rowMember(row, names[$0]) ?? .null }))
        }
    }

    public static let combine = PluginDeclaration(
        name: "combine",
        summary: "Runs every query argument at the same time and yields their rows as they come (chain() in parallel; suits event queries that never end).",
        examples: ["SELECT * FROM combine(a={ SELECT 1 AS X FROM scope() }, b={ SELECT 2 AS X FROM scope() }) ORDER BY X"],
        strictArguments: false
    ) { ctx in
        let queue = BoundedQueue<Value>(capacity: 1024)
        try FanIn.start(ctx.argumentNames, of: ctx, into: queue, label: "combine")
        return GeneratorCursor(onClose: { queue.close() }) {
            try ctx.checkCancelled()
            return queue.take()
        }
    }

    public static let dedup = PluginDeclaration(
        name: "dedup",
        summary: "Drops rows of `query` whose `key` column repeats a value seen within `timeout` seconds (among the last `size` values).",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to de-duplicate."),
            ArgumentSpec("key", .string, required: true, "The column whose value identifies a row."),
            ArgumentSpec("timeout", .int, "Forget a value after this many seconds (default 60)."),
            ArgumentSpec("size", .int, "Remember at most this many values (default 10000)."),
        ],
        examples: ["SELECT * FROM dedup(query={ SELECT _value % 2 AS K FROM range(end=6) }, key='K')"]
    ) { ctx in
        let key = ctx.string("key") ?? ""
        let timeout = Double(ctx.int("timeout") ?? 60)
        let size = Int(max(1, min(ctx.int("size") ?? 10000, 10_000_000)))
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        let seen = RecencyTable<Date>(capacity: size)
        return GeneratorCursor(onClose: { upstream.close() }) {
            while let row = try upstream.next() {
                try ctx.checkCancelled()
                let value = (rowMember(row, key) ?? .null).reduced()
                let id = GroupKey(value)
                let now = Date()
                if let last = seen.get(id), now.timeIntervalSince(last) < timeout { continue }
                seen.set(id, now)
                return row
            }
            return nil
        }
    }

    public static let delay = PluginDeclaration(
        name: "delay",
        summary: "Relays the rows of `query`, each `delay` seconds after it arrived (at most `buffer_size` rows wait).",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to delay."),
            ArgumentSpec("delay", .int, required: true, "Seconds to hold each row."),
            ArgumentSpec("buffer_size", .int, "Rows held at most (default 1000)."),
        ],
        examples: ["SELECT * FROM delay(query={ SELECT 'Hello' AS Greeting FROM scope() }, delay=0)"]
    ) { ctx in
        let seconds = Double(max(0, ctx.int("delay") ?? 0))
        let capacity = Int(max(1, min(ctx.int("buffer_size") ?? 1000, 1_000_000)))
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        let background = BackgroundRows(upstream, ctx: ctx, capacity: capacity, stamped: true)
        return GeneratorCursor(onClose: { background.close() }) {
            guard let stamped = background.queue.take() else {
                try background.rethrow()
                return nil
            }
            guard case .list(let pair) = stamped, pair.count == 2, case .double(let arrived) = pair[0] else { return nil }
            try Pacing.sleep(until: Date(timeIntervalSince1970: arrived + seconds), ctx.context.cancellation)
            return pair[1]
        }
    }

    public static let sample = PluginDeclaration(
        name: "sample",
        summary: "Yields every `n`th row of `query` (the first, then every n after it).",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to sample."),
            ArgumentSpec("n", .int, required: true, "Keep one row in this many."),
        ],
        examples: ["SELECT * FROM sample(query={ SELECT _value FROM range(end=10) }, n=3)"]
    ) { ctx in
        let n = max(1, ctx.int("n") ?? 1)
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        var index: Int64 = 0
        return GeneratorCursor(onClose: { upstream.close() }) {
            while let row = try upstream.next() {
                defer { index += 1 }
                if index % n == 0 { return row }
            }
            return nil
        }
    }
}

/// A query pulled on its own thread into a bounded queue, so a consumer can wait with a deadline
/// (batch's timeout) or hold rows back (delay). Rows are materialized before they cross threads.
final class BackgroundRows: @unchecked Sendable {
    let queue: BoundedQueue<Value>
    private let failure = LockedValue<Error?>(nil)

    /// `stamped` wraps each row as `[arrival seconds, row]`.
    init(_ cursor: RowCursor, ctx: CallContext, capacity: Int = 1024, stamped: Bool = false) {
        let queue = BoundedQueue<Value>(capacity: capacity)
        self.queue = queue
        let box = UncheckedBox(cursor)
        let failure = self.failure
        Thread.detachNewThread {
            do {
                while let row = try box.value.next() {
                    let value = row.materialized()
                    let item: Value = stamped ? .list([.double(Date().timeIntervalSince1970), value]) : value
                    if !queue.put(item) { break }
                }
            } catch is QueryCancelled {
            } catch {
                failure.set(error)
            }
            box.value.close()
            queue.finish()
        }
    }

    /// Throws the upstream query's failure, if it had one.
    func rethrow() throws {
        if let error = failure.get() { throw error }
    }

    func close() { queue.close() }
}

/// A value shared between threads under a lock.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T { lock.withLock { value } }
    func set(_ newValue: T) { lock.withLock { value = newValue } }
}

/// Waiting that a cancelled query interrupts.
enum Pacing {
    static func sleep(until deadline: Date, _ cancellation: CancellationFlag) throws {
        while Date() < deadline {
            try cancellation.check()
            Thread.sleep(forTimeInterval: min(0.05, max(0, deadline.timeIntervalSinceNow)))
        }
        try cancellation.check()
    }
}

/// A bounded map that forgets its least recently used entry when full (dedup's memory, lru()).
final class RecencyTable<V>: @unchecked Sendable {
    private final class Node {
        let key: GroupKey
        var value: V
        var previous: Node?
        var next: Node?
        init(key: GroupKey, value: V) {
            self.key = key
            self.value = value
        }
    }

    let capacity: Int
    private var nodes: [GroupKey: Node] = [:]
    private var newest: Node?
    private var oldest: Node?
    private let lock = NSLock()

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { lock.withLock { nodes.count } }

    /// The value (marking it recently used), or nil.
    func get(_ key: GroupKey) -> V? {
        lock.withLock {
            guard let node = nodes[key] else { return nil }
            unlink(node)
            pushNewest(node)
            return node.value
        }
    }

    func set(_ key: GroupKey, _ value: V) {
        lock.withLock {
            if let node = nodes[key] {
                node.value = value
                unlink(node)
                pushNewest(node)
                return
            }
            let node = Node(key: key, value: value)
            nodes[key] = node
            pushNewest(node)
            while nodes.count > capacity, let victim = oldest {
                unlink(victim)
                nodes[victim.key] = nil
            }
        }
    }

    /// Entries from oldest to newest.
    var entries: [(GroupKey, V)] {
        lock.withLock {
            var out: [(GroupKey, V)] = []
            var node = oldest
            while let current = node {
                out.append((current.key, current.value))
                node = current.next
            }
            return out
        }
    }

    private func unlink(_ node: Node) {
        node.previous?.next = node.next
        node.next?.previous = node.previous
        if newest === node { newest = node.previous }
        if oldest === node { oldest = node.next }
        node.previous = nil
        node.next = nil
    }

    private func pushNewest(_ node: Node) {
        node.previous = newest
        newest?.next = node
        newest = node
        if oldest == nil { oldest = node }
    }
}

/// Runs each named query argument on a thread of its own and feeds their rows into one bounded
/// queue, finishing it when the last source ends: the parallel half of combine() and sequence().
enum FanIn {
    static func start(_ names: [String], of ctx: CallContext, into queue: BoundedQueue<Value>, label: String) throws {
        let remaining = Counter(names.count)
        if names.isEmpty { queue.finish() }
        for name in names {
            let box = UncheckedBox(try Rows.cursor(for: ctx.raw(name) ?? .null))
            let context = UncheckedBox(ctx)
            Thread.detachNewThread {
                do {
                    while let row = try box.value.next() {
                        if !queue.put(normalizeRow(row).materialized()) { break }
                    }
                } catch is QueryCancelled {
                } catch {
                    context.value.log(.error, "\(label): \(error)")
                }
                box.value.close()
                if remaining.decrement() == 0 { queue.finish() }
            }
        }
    }
}
