import Foundation

/// The language's own plugins: row sources that combine, loop over and reshape queries.
public enum ControlPlugins {
    public static let all: [PluginDeclaration] = [range, scope, foreach, chain, ifPlugin, switchPlugin, flatten, items]

    public static let range = PluginDeclaration(
        name: "range", summary: "Yields the integers from start up to (not including) end, as _value.",
        arguments: [
            ArgumentSpec("start", .int, "First value (default 0)."),
            ArgumentSpec("end", .int, required: true, "Stop before this value."),
            ArgumentSpec("step", .int, "Increment (default 1)."),
        ],
        columns: [ColumnSpec("_value", .int, "The current number.")],
        examples: ["SELECT _value FROM range(start=0, end=3)"]
    ) { ctx in
        let start = ctx.int("start") ?? 0
        let end = ctx.int("end") ?? 0
        let step = ctx.int("step") ?? 1
        guard step != 0 else {
            ctx.log(.error, "range(): step must not be 0")
            return ArrayCursor([])
        }
        return RangeCursor(start: start, end: end, step: step, cancellation: ctx.context.cancellation)
    }

    public static let scope = PluginDeclaration(
        name: "scope", summary: "Yields one row: the current scope. `SELECT expr FROM scope()` evaluates once.",
        examples: ["SELECT 1 + 1 AS Two FROM scope()"]
    ) { _ in ArrayCursor([.dict(Dict())]) }

    public static let foreach = PluginDeclaration(
        name: "foreach",
        summary: "Runs `query` once per row of `row`, with the row's columns in scope; without `query`, yields the rows.",
        arguments: [
            ArgumentSpec("row", .query, required: true, "A query, list, dict or value to iterate over."),
            ArgumentSpec("query", .query, "The query to run for each row (sees the row's columns)."),
            ArgumentSpec("column", .string, "Iterate over this column of each row instead of the row."),
            ArgumentSpec("workers", .int, "Run this many queries in parallel (results may interleave)."),
            ArgumentSpec("async", .bool, "Accepted for compatibility; rows are produced as they come."),
        ],
        examples: ["SELECT * FROM foreach(row=[dict(X=1), dict(X=2)], query={ SELECT X * 10 AS Y FROM scope() })"]
    ) { ctx in
        let rows = try ctx.rows("row") ?? ArrayCursor([])
        let column = ctx.string("column")
        let hasQuery = ctx.has("query")
        let workers = Int(ctx.int("workers") ?? 1)
        if hasQuery && workers > 1 {
            return ParallelForeach(rows: rows, column: column, ctx: ctx, workers: workers)
        }
        var inner: RowCursor?
        return GeneratorCursor(onClose: { inner?.close(); rows.close() }) {
            while true {
                if let current = inner {
                    if let row = try current.next() { return normalizeRow(row) }
                    current.close()
                    inner = nil
                }
                guard var item = try rows.next() else { return nil }
                try ctx.checkCancelled()
                if let column { item = item.member(column) }
                item = item.reduced()
                if item.isNull { continue }
                guard hasQuery else { return normalizeRow(item) }
                let child = ctx.env.child(row: normalizeRow(item))
                let query = CallContext(env: child, site: ctx.site).raw("query") ?? .null
                inner = try Rows.cursor(for: query)
            }
        }
    }

    public static let chain = PluginDeclaration(
        name: "chain", summary: "Yields the rows of each query argument in turn, in argument order.",
        arguments: [ArgumentSpec("async", .bool, "Accepted for compatibility.")],
        examples: ["SELECT * FROM chain(a={ SELECT 1 AS X FROM scope() }, b={ SELECT 2 AS X FROM scope() })"],
        strictArguments: false
    ) { ctx in
        let names = ctx.argumentNames.filter { $0 != "async" }
        var index = 0
        var current: RowCursor?
        return GeneratorCursor(onClose: { current?.close() }) {
            while true {
                if let cursor = current {
                    if let row = try cursor.next() { return row }
                    cursor.close()
                    current = nil
                }
                guard index < names.count else { return nil }
                let value = ctx.raw(names[index]) ?? .null
                index += 1
                current = try Rows.cursor(for: value)
            }
        }
    }

    public static let ifPlugin = PluginDeclaration(
        name: "if", summary: "Yields the rows of `then` when `condition` is true, else those of `else`.",
        arguments: [
            ArgumentSpec("condition", .any, required: true, "A value or query (true when it has rows)."),
            ArgumentSpec("then", .query, "Rows when true."),
            ArgumentSpec("else", .query, "Rows when false."),
        ],
        examples: ["SELECT * FROM if(condition=TRUE, then={ SELECT 1 AS X FROM scope() })"]
    ) { ctx in
        let condition = ctx.raw("condition")?.isTruthy ?? false
        let branch = ctx.raw(condition ? "then" : "else") ?? .null
        return try Rows.cursor(for: branch)
    }

    public static let switchPlugin = PluginDeclaration(
        name: "switch", summary: "Yields the rows of the first query argument that has any rows.",
        examples: ["SELECT * FROM switch(a={ SELECT * FROM scope() WHERE FALSE }, b={ SELECT 2 AS X FROM scope() })"],
        strictArguments: false
    ) { ctx in
        for name in ctx.argumentNames {
            let cursor = try Rows.cursor(for: ctx.raw(name) ?? .null)
            if let first = try cursor.next() {
                var pending: Value? = first
                return GeneratorCursor(onClose: { cursor.close() }) {
                    if let row = pending {
                        pending = nil
                        return row
                    }
                    return try cursor.next()
                }
            }
            cursor.close()
        }
        return ArrayCursor([])
    }

    public static let flatten = PluginDeclaration(
        name: "flatten",
        summary: "Expands list columns of each row into a cartesian product of rows (queries expand into their rows).",
        arguments: [ArgumentSpec("query", .query, required: true, "The rows to flatten.")],
        examples: ["SELECT * FROM flatten(query={ SELECT (1, 2) AS A, 3 AS B FROM scope() })"]
    ) { ctx in
        let rows = try ctx.rows("query") ?? ArrayCursor([])
        var pending: [Value] = []
        var position = 0
        return GeneratorCursor(onClose: { rows.close() }) {
            while position >= pending.count {
                guard let row = try rows.next() else { return nil }
                pending = expand(row)
                position = 0
            }
            defer { position += 1 }
            return pending[position]
        }
    }

    /// The cartesian product of a row's list columns; the first list column varies fastest.
    static func expand(_ row: Value) -> [Value] {
        let names = rowColumnNames(row)
        let values = names.map { (rowMember(row, $0) ?? .null).reduced() }
        var choices: [[Value]] = values.map { value in
            switch value {
            case .list(let items) where !items.isEmpty: return items
            case .query(let q):
                let items = q.materialize()
                return items.isEmpty ? [.list([])] : items
            default: return [value]
            }
        }
        if choices.isEmpty { choices = [] }
        var result: [Value] = []
        var indexes = [Int](repeating: 0, count: choices.count)
        let schema = Schema(names)
        while true {
            result.append(.dict(Dict(schema: schema, values: indexes.enumerated().map { choices[$0.offset][$0.element] })))
            var column = 0
            while column < choices.count {
                indexes[column] += 1
                if indexes[column] < choices[column].count { break }
                indexes[column] = 0
                column += 1
            }
            if column == choices.count { return result }
        }
    }

    public static let items = PluginDeclaration(
        name: "items", summary: "Yields one row per key of a dict (or element of a list): _key and _value.",
        arguments: [ArgumentSpec("item", .any, required: true, "A dict, list or query.")],
        columns: [ColumnSpec("_key", .any), ColumnSpec("_value", .any)],
        examples: ["SELECT * FROM items(item=dict(A=1, B=2))"]
    ) { ctx in
        let schema = Schema(["_key", "_value"])
        switch ctx.value("item") ?? .null {
        case .dict(let d):
            return ArrayCursor(d.pairs.map { .dict(Dict(schema: schema, values: [.string($0.0), $0.1])) })
        case .object(let o):
            return ArrayCursor(o.materialized().pairs.map { .dict(Dict(schema: schema, values: [.string($0.0), $0.1])) })
        case let v:
            let list = v.listElements ?? []
            return ArrayCursor(list.enumerated().map { .dict(Dict(schema: schema, values: [.from($0.offset), $0.element])) })
        }
    }
}

/// range(): yields bare integers (rows exposing `_value`) with no allocation per row.
final class RangeCursor: RowCursor {
    private var current: Int64
    private let end: Int64
    private let step: Int64
    private let cancellation: CancellationFlag

    init(start: Int64, end: Int64, step: Int64, cancellation: CancellationFlag) {
        self.current = start
        self.end = end
        self.step = step
        self.cancellation = cancellation
    }

    func next() throws -> Value? {
        guard step > 0 ? current < end : current > end else { return nil }
        if current & 0xFFFF == 0 { try cancellation.check() }
        defer { current &+= step }
        return .int(current)
    }
}

/// foreach(workers=N): runs the per-row queries on N threads; rows come out as they finish.
final class ParallelForeach: RowCursor {
    private let queue: BoundedQueue<Value>
    private let rows: RowCursor

    init(rows: RowCursor, column: String?, ctx: CallContext, workers: Int) {
        self.rows = rows
        let queue = BoundedQueue<Value>(capacity: 1024)
        self.queue = queue
        let feeder = BoundedQueue<Value>(capacity: workers * 2)
        let sendableCtx = UncheckedBox(ctx)
        let sendableRows = UncheckedBox(rows)
        Thread.detachNewThread {
            do {
                while var item = try sendableRows.value.next() {
                    if let column { item = item.member(column) }
                    item = item.reduced()
                    if item.isNull { continue }
                    if !feeder.put(item) { break }
                }
            } catch {
                sendableCtx.value.log(.error, "foreach: \(error)")
            }
            feeder.finish()
        }
        let remaining = Counter(workers)
        for _ in 0..<workers {
            Thread.detachNewThread {
                let ctx = sendableCtx.value
                while let item = feeder.take() {
                    if queue.isClosed || ctx.context.cancellation.isCancelled { break }
                    let child = ctx.env.child(row: normalizeRow(item))
                    let query = CallContext(env: child, site: ctx.site).raw("query") ?? .null
                    do {
                        let cursor = try Rows.cursor(for: query)
                        while let row = try cursor.next() {
                            if !queue.put(normalizeRow(row).materialized()) { break }
                        }
                        cursor.close()
                    } catch {
                        ctx.log(.error, "foreach: \(error)")
                    }
                }
                if remaining.decrement() == 0 { queue.finish() }
            }
        }
    }

    func next() throws -> Value? { queue.take() }

    func close() {
        queue.close()
        rows.close()
    }
}
