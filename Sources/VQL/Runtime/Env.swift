/// What a name in the scope is bound to.
public enum Binding: @unchecked Sendable {
    /// A plain value (`LET x <= …`, `--env`, a function parameter).
    case value(Value)
    /// A LET definition: lazy expression, stored query, or a function with parameters.
    case definition(LetDefinition)
}

/// A compiled `LET` statement. Lazy ones are re-evaluated on each use in the scope that uses
/// them (VQL's scoping is dynamic: a stored query sees the caller's row and variables).
public final class LetDefinition: @unchecked Sendable {
    public let name: String
    public let parameters: [LetParameter]?
    let defaults: [String: Evaluator]
    let body: CompiledBody

    enum CompiledBody {
        case expression(Evaluator)
        case select(CompiledSelect)
    }

    init(name: String, parameters: [LetParameter]?, defaults: [String: Evaluator], body: CompiledBody) {
        self.name = name
        self.parameters = parameters
        self.defaults = defaults
        self.body = body
    }

    public var isQuery: Bool {
        if case .select = body { return true }
        return false
    }
}

/// Per call-site aggregate state (count, sum, min, max, enumerate). A fresh one starts at each
/// top-level statement, each GROUP BY group, and each parenthesised LET call.
public final class AggregateState: @unchecked Sendable {
    // A query has few aggregate call sites: a linear scan beats hashing on the per-row path.
    private var ids: [Int] = []
    private var values: [Value] = []

    public init() {}

    subscript(id: Int) -> Value? {
        get {
            for i in 0..<ids.count where ids[i] == id { return values[i] }
            return nil
        }
        set {
            for i in 0..<ids.count where ids[i] == id {
                values[i] = newValue ?? .null
                return
            }
            ids.append(id)
            values.append(newValue ?? .null)
        }
    }

    /// count()'s hot path: adds one in place and returns the new count.
    @inline(__always)
    func increment(_ id: Int) -> Int64 {
        for i in 0..<ids.count where ids[i] == id {
            if case .int(let n) = values[i] {
                values[i] = .int(n + 1)
                return n + 1
            }
            values[i] = .int(1)
            return 1
        }
        ids.append(id)
        values.append(.int(1))
        return 1
    }
}

/// One level of the scope chain: a row's columns, variables, and a link to the enclosing level.
/// Lookups walk outwards: SELECT aliases (in WHERE/GROUP BY/ORDER BY), then the row, then
/// variables, then the parent.
public final class Env: @unchecked Sendable {
    public let parent: Env?
    public let context: QueryContext
    /// The current row, when this level holds one.
    public var row: Value?
    var projection: ProjectionFrame?
    public var variables: [String: Binding]
    var aggregates: AggregateState {
        didSet { aggregatesRef = Unmanaged.passUnretained(aggregates) }
    }
    /// An unretained alias of `aggregates` for count()'s per-row path (kept alive by `aggregates`).
    private(set) var aggregatesRef: Unmanaged<AggregateState>
    /// Set while a lazy LET or a LET function is being evaluated below this level (recursion guard).
    let evaluating: LetDefinition?

    public init(context: QueryContext, variables: [String: Binding] = [:]) {
        self.parent = nil
        self.context = context
        self.variables = variables
        let state = AggregateState()
        self.aggregates = state
        self.aggregatesRef = Unmanaged.passUnretained(state)
        self.evaluating = nil
    }

    init(parent: Env, row: Value? = nil, variables: [String: Binding] = [:], aggregates: AggregateState? = nil, evaluating: LetDefinition? = nil) {
        self.parent = parent
        self.context = parent.context
        self.row = row
        self.variables = variables
        let state = aggregates ?? parent.aggregates
        self.aggregates = state
        self.aggregatesRef = Unmanaged.passUnretained(state)
        self.evaluating = evaluating
    }

    /// A child level holding a row (used by plugins such as foreach that run a query per row).
    public func child(row: Value? = nil, variables: [String: Binding] = [:]) -> Env {
        Env(parent: self, row: row, variables: variables)
    }

    /// This level again, without the SELECT being evaluated on it: for values that outlive the
    /// call and keep the scope their lambdas run in (parse_binary's lazily parsed structs). Held
    /// with the projection, such a value would be held by the row's own computed columns that
    /// it holds — a reference cycle, and one leaked object graph per row.
    public func withoutProjection() -> Env {
        guard projection != nil, let parent else { return self }
        return Env(parent: parent, row: row, variables: variables, aggregates: aggregates, evaluating: evaluating)
    }

    /// A copy of everything visible from this level (every level's variables, inner ones
    /// shadowing outer ones, and this level's row) on a new chain of its own: for queries that
    /// go on running on another thread (background()) while the session binds its next LETs in
    /// the root — reading the live root from there was a data race (found by ThreadSanitizer).
    public func snapshot() -> Env {
        var levels: [Env] = []
        var level: Env? = self
        while let current = level {
            levels.append(current)
            level = current.parent
        }
        var merged: [String: Binding] = [:]
        for current in levels.reversed() { merged.merge(current.variables) { _, inner in inner } }
        let copy = Env(context: context, variables: merged)
        return row == nil ? copy : copy.child(row: row)
    }

    /// The outermost level (the session's scope).
    public var root: Env {
        var level = self
        while let parent = level.parent { level = parent }
        return level
    }

    public func set(_ name: String, _ value: Value) {
        variables[name] = .value(value)
    }

    /// Resolves a name; nil when nothing in the chain defines it.
    public func lookup(_ name: String) -> Value? {
        // Fast path: the current row (the common case on the per-row path).
        if let row, let value = rowMember(row, name) { return value }
        var level: Env? = variables.isEmpty ? parent : self
        while let env = level {
            if let row = env.row, let value = rowMember(row, name) {
                return value
            }
            if let binding = env.variables[name] {
                switch binding {
                case .value(let v): return v
                case .definition(let def): return def.reference(in: self)
                }
            }
            level = env.parent
        }
        return nil
    }

    /// The LET definition bound to a name, if any.
    func definition(named name: String) -> LetDefinition? {
        var level: Env? = self
        while let env = level {
            if let binding = env.variables[name] {
                if case .definition(let def) = binding { return def }
                return nil
            }
            level = env.parent
        }
        return nil
    }

    /// How many levels up are currently evaluating `definition` (recursion guard).
    func activations(of definition: LetDefinition) -> Int {
        var count = 0
        var level: Env? = self
        while let env = level {
            if env.evaluating === definition { count += 1 }
            level = env.parent
        }
        return count
    }

    /// All variable names visible from here (completion, `scope()` serialisation).
    public var visibleNames: [String] {
        var seen = Set<String>()
        var names: [String] = []
        var level: Env? = self
        while let env = level {
            for name in env.variables.keys.sorted() where seen.insert(name).inserted { names.append(name) }
            level = env.parent
        }
        return names
    }
}

/// A row's member by name: dict key, host-object member, or `_value` for a scalar row.
@inline(__always)
func rowMember(_ row: Value, _ name: String) -> Value? {
    switch row {
    case .dict(let d):
        guard let slot = d.schema.slot(of: name) else { return nil }
        return d.values[slot]
    case .object(let o):
        return o.member(name)
    case .null:
        return nil
    case .timestamp(let t):
        // clock() rows: a time's members (Unix, Year, …) read as columns.
        if name == "_value" { return row }
        let member = Timestamps.member(t, name)
        return member.isNull ? nil : member
    default:
        return name == "_value" ? row : nil
    }
}

/// The column names of a row, in order, for `SELECT *`.
func rowColumnNames(_ row: Value) -> [String] {
    switch row {
    case .dict(let d): return d.keys
    case .object(let o): return o.memberNames
    case .null: return []
    default: return ["_value"]
    }
}

/// Turns any value into a row: dicts and objects as they are, scalars as `{_value: x}`.
func normalizeRow(_ value: Value) -> Value {
    switch value {
    case .dict, .object: return value
    default: return .dict(Dict(schema: Schema(["_value"]), values: [value]))
    }
}

/// A lazy reference to `LET X = expr`, captured with the scope it was referenced from.
public final class LazyValue: @unchecked Sendable {
    let definition: LetDefinition
    let env: Env

    init(definition: LetDefinition, env: Env) {
        self.definition = definition
        self.env = env
    }

    /// Evaluates the expression now (each call re-evaluates, as VQL's lazy LET does).
    public func force() -> Value {
        definition.evaluate(in: env, arguments: nil, freshAggregates: false).reduced()
    }
}

/// A query that has not run: a LET stored query or a `{ SELECT }` argument, with the scope it runs in.
public final class StoredQuery: @unchecked Sendable {
    let open: (Env) throws -> RowCursor
    let env: Env
    /// A `{ SELECT }` passed as an argument: when it ends up in an output column it runs in the
    /// scope of that row, not the scope it was written in (as VQL's if() returns its branch).
    let lateBound: Bool

    init(env: Env, lateBound: Bool = false, open: @escaping (Env) throws -> RowCursor) {
        self.env = env
        self.lateBound = lateBound
        self.open = open
    }

    /// The same query run in another scope.
    func rebound(to env: Env) -> StoredQuery {
        StoredQuery(env: env, open: open)
    }

    /// A stored query a host module produces: `open` starts a fresh cursor each time it runs.
    public convenience init(env: Env, cursor open: @escaping (Env) throws -> RowCursor) {
        self.init(env: env, lateBound: false, open: open)
    }

    /// A stored query over rows already in memory.
    public convenience init(rows: [Value], env: Env) {
        self.init(env: env) { _ in ArrayCursor(rows) }
    }

    /// Starts the query; each call runs it again.
    public func cursor() throws -> RowCursor { try open(env) }

    /// Runs the query to the end (or `limit` rows), logging rather than throwing on failure.
    public func materialize(limit: Int = .max) -> [Value] {
        do {
            let cursor = try open(env)
            defer { cursor.close() }
            return try cursor.drain(limit: limit)
        } catch {
            env.context.log(.error, "query: \(error)")
            return []
        }
    }
}

extension LetDefinition {
    /// The value a bare reference to this name gives: a lazy value, or a stored query.
    func reference(in env: Env) -> Value {
        switch body {
        case .expression:
            return .lazy(LazyValue(definition: self, env: env))
        case .select:
            return evaluate(in: env, arguments: nil, freshAggregates: false)
        }
    }

    /// Evaluates (or, for a query, prepares) this definition in the caller's scope with arguments.
    func evaluate(in caller: Env, arguments: [(String, Value)]?, freshAggregates: Bool) -> Value {
        let depth = caller.activations(of: self)
        let limit = isQuery ? 8 : 1
        if depth >= limit {
            caller.context.logOnce(.error, "\(name): recursive reference to '\(name)' (evaluates to NULL)")
            return isQuery ? .list([]) : .null
        }
        var variables: [String: Binding] = [:]
        if let parameters {
            let given = Dictionary(arguments ?? [], uniquingKeysWith: { _, last in last })
            for parameter in parameters {
                if let value = given[parameter.name] {
                    variables[parameter.name] = .value(value)
                } else if let evaluator = defaults[parameter.name] {
                    variables[parameter.name] = .value(evaluator(caller).reduced())
                }
            }
            for (key, _) in given where !parameters.contains(where: { $0.name == key }) {
                caller.context.logOnce(.warning, "\(name)(): unexpected argument '\(key)'")
            }
        }
        let env = Env(
            parent: caller, variables: variables, aggregates: freshAggregates ? AggregateState() : nil,
            evaluating: self)
        switch body {
        case .expression(let evaluator):
            return evaluator(env)
        case .select(let select):
            return .query(StoredQuery(env: env) { runEnv in try select.open(in: runEnv) })
        }
    }
}

extension LetDefinition {
    /// `LET X <= …`: the value now. A query is run to its end; when `VQL_MATERIALIZE_ROW_LIMIT` is
    /// set and the query yields more rows, X keeps the rows for `FROM X` but reads as NULL in
    /// expressions, as Velociraptor's file-backed expansion does.
    func materialize(in env: Env) -> Value {
        let value = evaluate(in: env, arguments: nil, freshAggregates: false)
        guard case .query(let query) = value.reduced(),
            let limit = env.lookup("VQL_MATERIALIZE_ROW_LIMIT")?.reduced().intValue, limit > 0
        else { return value.forOutput(in: env) }
        let rows = query.materialize().map { $0.forOutput(in: env) }
        guard rows.count > limit else { return .list(rows) }
        env.context.log(.warning, "Materialize of LET \(name): Expand larger than \(limit) rows, VQL will switch to tempfile backing")
        return .object(SpilledRows(rows: rows))
    }
}

/// The rows of a materialized LET that went over VQL_MATERIALIZE_ROW_LIMIT: a row source for
/// FROM, NULL anywhere else.
final class SpilledRows: HostObject, @unchecked Sendable {
    let rows: [Value]
    init(rows: [Value]) { self.rows = rows }
    var typeName: String { "stored query" }
    var memberNames: [String] { [] }
    func member(_ name: String) -> Value? { nil }
    var scalar: Value? { .null }
}
