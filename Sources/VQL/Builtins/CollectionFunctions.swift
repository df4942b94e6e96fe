import Foundation

/// Functions over lists, dicts and queries: all, any, slice, to_dict, lazy_dict, set, eval, generate.
public enum CollectionFunctions {
    public static let all: [FunctionDeclaration] = [allFunction, anyFunction, slice, toDict, lazyDict, set, eval, generate]

    static let itemsArguments = [
        ArgumentSpec("items", .any, required: true, "A list, a query or a single value; a query runs only as far as needed."),
        ArgumentSpec("filter", .lambda, "A lambda such as \"x => x > 2\" tested on each item (default: the item's truth)."),
        ArgumentSpec("regex", .stringList, "Instead of a filter: an item passes when it matches any of these regexes."),
    ]

    public static let allFunction = FunctionDeclaration(
        name: "all", summary: "TRUE when every item passes the filter (or the regex, or is true itself); TRUE for no items.",
        arguments: itemsArguments, returns: .bool,
        examples: ["SELECT all(items=[1, 2, 3], filter='x => x > 0') AS AllPositive FROM scope()"]
    ) { ctx in .bool(!(try? firstItem(ctx, passing: false)).flatMap { $0 }.isSome) }

    public static let anyFunction = FunctionDeclaration(
        name: "any", summary: "TRUE when at least one item passes the filter (or the regex, or is true itself).",
        arguments: itemsArguments, returns: .bool,
        examples: ["SELECT any(items=['a', 'bc'], regex='^b') AS SomeB FROM scope()"]
    ) { ctx in .bool((try? firstItem(ctx, passing: true)).flatMap { $0 }.isSome) }

    /// Scans `items` lazily for the first one whose test equals `passing`.
    private static func firstItem(_ ctx: CallContext, passing: Bool) throws -> Value? {
        let lambda = ctx.lambda("filter")
        let regexes = (ctx.strings("regex") ?? []).compactMap { ctx.context.regex($0) }
        let source = ctx.raw("items") ?? .null
        let cursor: RowCursor
        switch source.reduced() {
        case .query, .list, .null: cursor = try Rows.cursor(for: source)
        case let single: cursor = ArrayCursor([single])
        }
        defer { cursor.close() }
        while let item = try cursor.next() {
            let ok: Bool
            if let lambda {
                ok = lambda.call([item], in: ctx.env).isTruthy
            } else if !regexes.isEmpty {
                ok = regexes.contains { Compiler.regexMatch(item, $0) }
            } else {
                ok = item.isTruthy
            }
            if ok == passing { return item }
        }
        return nil
    }

    public static let slice = FunctionDeclaration(
        name: "slice", summary: "The elements of `list` from index `start` up to (not including) `end`; bounds past the end are clamped.",
        arguments: [
            ArgumentSpec("list", .any, required: true, "A list or query."),
            ArgumentSpec("start", .int, required: true, "First index (from 0)."),
            ArgumentSpec("end", .int, required: true, "Stop before this index."),
        ],
        returns: .list, examples: ["SELECT slice(list=[1, 2, 3, 4], start=1, end=3) AS Middle FROM scope()"]
    ) { ctx in
        let items = ctx.value("list")?.listElements ?? []
        let start = Int(clamping: max(0, ctx.int("start") ?? 0))
        let end = Int(clamping: max(0, ctx.int("end") ?? Int64(items.count)))
        let lo = min(start, items.count)
        let hi = min(max(end, lo), items.count)
        return .list(Array(items[lo..<hi]))
    }

    public static let toDict = FunctionDeclaration(
        name: "to_dict", summary: "Builds a dict from rows with `_key` and `_value` columns (rows whose key is not a string are skipped).",
        arguments: [ArgumentSpec("item", .any, "A query or list of {_key, _value} rows.")], returns: .dict,
        examples: ["SELECT to_dict(item={ SELECT 'A' AS _key, 1 AS _value FROM scope() }) AS D FROM scope()"]
    ) { ctx in
        let source = ctx.raw("item") ?? .null
        if case .dict = source.reduced() { return source.reduced() }
        var dict = Dict()
        guard let cursor = try? Rows.cursor(for: source) else { return .dict(dict) }
        defer { cursor.close() }
        while let row = try? cursor.next() {
            guard let key = (rowMember(row, "_key") ?? .null).reduced().unwrappedScalar.stringValue else { continue }
            dict[key] = (rowMember(row, "_value") ?? .null).reduced()
        }
        return .dict(dict)
    }

    public static let lazyDict = FunctionDeclaration(
        name: "lazy_dict", summary: "Builds a dict from its arguments like dict(), leaving LET references unevaluated until read (for `**` expansion).",
        returns: .dict, examples: ["SELECT lazy_dict(A=1, B='x').B AS B FROM scope()"], strictArguments: false
    ) { ctx in
        var dict = Dict()
        for (name, value) in ctx.allArguments() { dict[name] = value }
        return .dict(dict)
    }

    public static let set = FunctionDeclaration(
        name: "set",
        summary: "Sets `field` of `item` to `value` and returns the item: an lru() or memoize() object changes in place; a dict held in a variable is updated in that variable.",
        arguments: [
            ArgumentSpec("item", .any, required: true, "A dict, an lru() object, or a variable holding a dict."),
            ArgumentSpec("field", .string, required: true, "The key to set."),
            ArgumentSpec("value", .any, required: true, "The new value."),
        ],
        examples: ["SELECT set(item=dict(A=1), field='B', value=2) AS D FROM scope()"]
    ) { ctx in
        let field = ctx.string("field") ?? ""
        let value = (ctx.value("value") ?? .null).materialized()
        switch ctx.value("item") ?? .null {
        case .object(let object as MutableHostObject):
            object.set(field, value)
            return .object(object)
        case .dict(var dict):
            dict[field] = value
            if let name = ctx.symbolName("item") { ctx.env.rebind(name, to: .dict(dict)) }
            return .dict(dict)
        case .null where !ctx.has("item"):
            ctx.env.root.set(field, value)
            return value
        default:
            ctx.log(.warning, "set(): item must be a dict or an lru() object")
            return .null
        }
    }

    public static let eval = FunctionDeclaration(
        name: "eval",
        summary: "Calls the lambda `func` (a string, so it can be built at run time) with `args`, or with the current scope as its one argument.",
        arguments: [
            ArgumentSpec("func", .lambda, required: true, "A lambda such as \"x => 1 + 1\"."),
            ArgumentSpec("args", .any, "A list of arguments for the lambda (default: the scope)."),
        ],
        examples: ["SELECT eval(func='x => 1 + 2') AS Three FROM scope()"]
    ) { ctx in
        guard let lambda = ctx.lambda("func") else { return .null }
        let arguments: [Value]
        if let args = ctx.value("args") {
            arguments = args.listElements ?? [args]
        } else {
            arguments = [.object(ScopeObject(env: ctx.env))]
        }
        return NestingGuard.run(ctx, "eval") { lambda.call(arguments, in: ctx.env) } ?? .null
    }

    public static let generate = FunctionDeclaration(
        name: "generate",
        summary: "Names a query so several SELECTs can read its rows (each reader gets the rows; `delay` seconds pass before the query starts).",
        arguments: [
            ArgumentSpec("query", .query, "The query to share."),
            ArgumentSpec("name", .string, "A name for the generator (informational)."),
            ArgumentSpec("delay", .int, "Seconds to wait before starting the query."),
            ArgumentSpec("with_file_buffer", .bool, "Accepted for compatibility."),
            ArgumentSpec("fan_out", .int, "Accepted for compatibility."),
            ArgumentSpec("description", .string, "Accepted for compatibility."),
        ],
        returns: .query,
        examples: ["LET G = generate(query={ SELECT _value FROM range(end=3) }) SELECT * FROM G"]
    ) { ctx in
        guard case .query(let query)? = ctx.raw("query")?.reduced() else { return .null }
        let delay = Double(max(0, ctx.int("delay") ?? 0))
        let cancellation = ctx.context.cancellation
        guard delay > 0 else { return .query(query) }
        return .query(StoredQuery(env: query.env) { env in
            try Pacing.sleep(until: Date().addingTimeInterval(delay), cancellation)
            return try query.rebound(to: env).cursor()
        })
    }
}

/// A host object whose members can be set (lru(), memoize()).
protocol MutableHostObject: HostObject {
    func set(_ name: String, _ value: Value)
}

extension Optional {
    var isSome: Bool { self != nil }
}

extension CallContext {
    /// The variable name when the argument is written as a bare name (`set(item=D, …)`).
    func symbolName(_ argument: String) -> String? {
        for i in 0..<site.names.count where site.names[i] == argument {
            return (site.evaluators[i] as? SymbolEvaluator)?.name
        }
        return nil
    }
}

extension Env {
    /// Rebinds a variable where it is defined (or in the root scope when it is not a variable).
    func rebind(_ name: String, to value: Value) {
        var level: Env? = self
        while let env = level {
            if env.variables[name] != nil {
                env.variables[name] = .value(value)
                return
            }
            level = env.parent
        }
    }
}

/// Limits how deeply functions that run VQL built at run time (eval, template) may nest on one
/// thread, so a self-referencing text ends with an error instead of exhausting the stack.
enum NestingGuard {
    static let limit = 32
    private static let key = "vql.nesting"

    static func run<T>(_ ctx: CallContext, _ name: String, _ body: () -> T) -> T? {
        let dictionary = Thread.current.threadDictionary
        let depth = (dictionary[key] as? Int) ?? 0
        guard depth < limit else {
            ctx.context.logOnce(.error, "\(name)(): nested more than \(limit) levels deep; giving up")
            return nil
        }
        dictionary[key] = depth + 1
        defer { dictionary[key] = depth }
        return body()
    }
}
