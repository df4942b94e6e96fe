import Foundation
import Synchronization

/// Remembering values across rows: lru() and memoize() objects (read with get() or `.`), cache()
/// of computed values by key, and rate() over successive rows.
public enum CacheFunctions {
    public static let all: [FunctionDeclaration] = [lru, memoize, cache, rate]

    /// The most entries an lru() or cache() may be asked to hold.
    static let maximumSize: Int64 = 10_000_000

    public static let lru = FunctionDeclaration(
        name: "lru",
        summary: "A dict-like object that keeps only the `size` most recently used keys: fill it with set(), read it with get() or `.`.",
        arguments: [ArgumentSpec("size", .int, "Keys kept (default 1000).")],
        returns: .object,
        examples: ["LET C <= lru(size=2) SELECT set(item=C, field='a', value=1) AS S, get(item=C, field='a') AS A FROM scope()"]
    ) { ctx in
        let size = ctx.int("size") ?? 1000
        guard size > 0, size <= maximumSize else {
            ctx.log(.error, "lru(): size must be between 1 and \(maximumSize)")
            return .null
        }
        return .object(LRUObject(capacity: Int(size)))
    }

    public static let memoize = FunctionDeclaration(
        name: "memoize",
        summary: "A dict-like object over `query`'s rows keyed by the `key` column: the query runs on first read (and again after `period` seconds); get(item=M, field=K) gives K's row.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to remember."),
            ArgumentSpec("key", .string, required: true, "The column whose value is the lookup key."),
            ArgumentSpec("period", .int, "Seconds after which the rows are read again (default: never)."),
            ArgumentSpec("name", .string, "A name for the cache (informational)."),
            ArgumentSpec("filename", .string, "Accepted for compatibility (kept in memory)."),
        ],
        returns: .object,
        examples: ["LET M <= memoize(query={ SELECT 'a' AS K, 1 AS V FROM scope() }, key='K') SELECT get(item=M, field='a').V AS V FROM scope()"]
    ) { ctx in
        guard case .query(let query)? = ctx.raw("query")?.reduced() else {
            ctx.log(.error, "memoize(): query must be a query")
            return .null
        }
        return .object(MemoObject(query: query, key: ctx.string("key") ?? "", period: ctx.int("period").map(Double.init)))
    }

    public static let cache = FunctionDeclaration(
        name: "cache",
        summary: "Computes a value once per `key` and reuses it: with `func` (evaluated only on a miss), or with the `lambda` registered for the cache `name` (a call with only `lambda` registers it).",
        arguments: [
            ArgumentSpec("func", .any, "The value to compute on a miss (evaluated only then)."),
            ArgumentSpec("lambda", .lambda, "A lambda given the key, registered for this cache name."),
            ArgumentSpec("name", .string, "The cache's name (default: one per call site with func, a shared one with lambda)."),
            ArgumentSpec("key", .any, "The lookup key."),
            ArgumentSpec("period", .int, "Seconds a value stays fresh (default: for the whole query)."),
            ArgumentSpec("filename", .string, "Accepted for compatibility (kept in memory)."),
            ArgumentSpec("max_size", .int, "Entries kept (default 10000)."),
        ],
        examples: ["SELECT cache(func=_value * 2, key=_value % 2) AS C FROM range(end=4)"]
    ) { ctx in
        let size = ctx.int("max_size") ?? 10000
        guard size > 0, size <= maximumSize else {
            ctx.log(.error, "cache(): max_size must be between 1 and \(maximumSize)")
            return .null
        }
        let name = ctx.string("name") ?? (ctx.has("func") ? "site:\(ctx.site.id)" : "")
        let store = ctx.context.caches.store(name, capacity: Int(size))
        if let lambda = ctx.lambda("lambda") { store.lambda.withLock { $0 = lambda } }
        guard let key = ctx.value("key") else { return .null }
        let id = GroupKey(key.materialized())
        let period = ctx.int("period").map(Double.init)
        if let (value, stored) = store.entries.get(id), period.map({ Date().timeIntervalSince(stored) < $0 }) ?? true {
            return value
        }
        let value: Value
        if ctx.has("func") {
            value = (ctx.value("func") ?? .null).materialized()
        } else if let lambda = store.lambda.withLock({ $0 }) {
            value = lambda.call([key], in: ctx.env).materialized()
        } else {
            return .null
        }
        store.entries.set(id, (value, Date()))
        return value
    }

    public static let rate = FunctionDeclaration(
        name: "rate",
        summary: "The change of `x` per change of `y` since the previous row at this call site (NULL on the first row): bytes per second from a byte counter sampled in time.",
        arguments: [
            ArgumentSpec("x", .float, required: true, "The quantity (e.g. a counter)."),
            ArgumentSpec("y", .float, required: true, "What it changes with (e.g. the time)."),
        ],
        returns: .float,
        examples: ["SELECT rate(x=_value * 10, y=_value) AS R FROM range(end=3)"]
    ) { ctx in
        guard let x = ctx.double("x"), let y = ctx.double("y") else { return .null }
        let previous = ctx.state
        ctx.state = .list([.double(x), .double(y)])
        guard case .list(let last)? = previous, last.count == 2, let px = last[0].doubleValue, let py = last[1].doubleValue,
            y != py
        else { return .null }
        return .double((x - px) / (y - py))
    }
}

/// lru(): a bounded dict; reading a key makes it recent, adding past the size drops the oldest.
final class LRUObject: MutableHostObject, @unchecked Sendable {
    private let table: RecencyTable<(String, Value)>

    init(capacity: Int) { table = RecencyTable(capacity: capacity) }

    var typeName: String { "lru" }
    var memberNames: [String] { table.entries.map { $0.1.0 } }
    func member(_ name: String) -> Value? { table.get(GroupKey(.string(name)))?.1 }
    func set(_ name: String, _ value: Value) { table.set(GroupKey(.string(name)), (name, value)) }
}

/// memoize(): the rows of a query by key, read on first use and again when stale.
final class MemoObject: HostObject, @unchecked Sendable {
    private let query: StoredQuery
    private let key: String
    private let period: Double?
    private let state = Mutex<(rows: [String: Value], order: [String], loaded: Date?)>(([:], [], nil))

    init(query: StoredQuery, key: String, period: Double?) {
        self.query = query
        self.key = key
        self.period = period
    }

    var typeName: String { "memoize" }
    var memberNames: [String] { load().order }
    func member(_ name: String) -> Value? { load().rows[name] }

    private func load() -> (rows: [String: Value], order: [String]) {
        let current = state.withLock { $0 }
        if let loaded = current.loaded, period.map({ Date().timeIntervalSince(loaded) < $0 }) ?? true {
            return (current.rows, current.order)
        }
        var rows: [String: Value] = [:]
        var order: [String] = []
        for row in query.materialize() {
            let id = GoFormat.plain((rowMember(row, key) ?? .null).reduced())
            if rows[id] == nil { order.append(id) }
            rows[id] = row.materialized()
        }
        state.withLock { $0 = (rows, order, Date()) }
        return (rows, order)
    }
}

/// The session's named caches for cache(): entries and the lambda registered for each name.
final class CacheStores: Sendable {
    final class Store: Sendable {
        let entries: RecencyTable<(Value, Date)>
        let lambda = Mutex<Lambda?>(nil)
        init(capacity: Int) { entries = RecencyTable(capacity: capacity) }
    }

    private let stores = Mutex<[String: Store]>([:])

    func store(_ name: String, capacity: Int) -> Store {
        stores.withLock { stores in
            if let existing = stores[name] { return existing }
            let store = Store(capacity: capacity)
            stores[name] = store
            return store
        }
    }
}
