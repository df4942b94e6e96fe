/// One output column of a SELECT.
enum OutputColumn {
    case star
    /// Column index into the frame, output name, evaluator.
    case expression(Int, String, Evaluator)
}

/// A SELECT compiled to an operator pipeline: source → filter → project → group → order → limit.
/// Opening it returns a cursor; rows are pulled lazily through the operators.
final class CompiledSelect: @unchecked Sendable {
    let statement: SelectStatement
    let columns: [OutputColumn]
    let columnEvaluators: [Evaluator]
    let whereClause: Evaluator?
    let groupBy: [Evaluator]
    let orderBy: [(Evaluator, Bool)]
    let sourceSite: CallSite?

    init(statement: SelectStatement, compiler: Compiler) {
        self.statement = statement
        var columns: [OutputColumn] = []
        var evaluators: [Evaluator] = []
        var aliases: [String: Int] = [:]
        for column in statement.columns {
            switch column {
            case .star:
                columns.append(.star)
            case .expression(let e, let alias, _):
                let name = alias ?? CompiledSelect.columnName(e)
                let k = evaluators.count
                let evaluator = compiler.compile(e)
                evaluators.append(evaluator)
                columns.append(.expression(k, name, evaluator))
                if aliases[name] == nil { aliases[name] = k }
            }
        }
        self.columns = columns
        self.columnEvaluators = evaluators
        var aliasCompiler = compiler
        aliasCompiler.aliases = aliases
        self.whereClause = statement.whereClause.map { aliasCompiler.compile($0) }
        self.groupBy = statement.groupBy.map { aliasCompiler.compile($0) }
        // ORDER BY runs over output rows, where every alias is a column.
        self.orderBy = statement.orderBy.map { (compiler.compile($0.expression), $0.descending) }
        self.sourceSite = statement.from.map {
            compiler.compileSite(name: $0.name, args: $0.args, id: statement.id, range: $0.range)
        }
        if let site = sourceSite, let condition = statement.whereClause {
            site.constraints = ColumnConstraints.extract(condition, aliases: Set(aliases.keys))
        }
    }

    /// An unnamed column is named by the canonical text of its expression (a bare name by itself).
    static func columnName(_ e: Expression) -> String {
        if case .symbol(let name, _) = e.kind { return name }
        return CanonicalPrinter.print(e)
    }

    /// Runs the SELECT in `env`, returning its row cursor.
    func open(in env: Env) throws -> RowCursor {
        let source = try openSource(in: env)
        var cursor: RowCursor
        if groupBy.isEmpty {
            cursor = ProjectCursor(select: self, source: source, env: env)
        } else {
            cursor = GroupCursor(select: self, source: source, env: env)
        }
        if !orderBy.isEmpty {
            cursor = SortCursor(upstream: cursor, orderBy: orderBy, env: env)
        }
        if let limit = statement.limit {
            cursor = LimitCursor(upstream: cursor, limit: limit)
        }
        return cursor
    }

    private func openSource(in env: Env) throws -> RowCursor {
        guard let from = statement.from, let site = sourceSite else {
            return ArrayCursor([.dict(Dict())])
        }
        if let definition = env.definition(named: from.name) {
            let arguments = from.hasParentheses ? CallContext(env: env, site: site).allArguments() : nil
            let value = definition.evaluate(in: env, arguments: arguments, freshAggregates: from.hasParentheses)
            return try CompiledSelect.rowsForFrom(value)
        }
        if !from.hasParentheses, let value = env.lookup(from.name) {
            return try CompiledSelect.rowsForFrom(value)
        }
        if let mocked = env.context.mocks.take(.plugin, from.name) {
            return ArrayCursor(SessionMocks.rows(mocked))
        }
        let registry = env.context.registry
        if let plugin = registry.plugin(from.name) {
            if env.context.remapping.isDisabled(from.name) {
                env.context.logOnce(.error, "\(from.name): disabled in this session by a remapping")
                return ArrayCursor([])
            }
            if let problem = site.problems(against: plugin.arguments, strict: plugin.strictArguments) {
                env.context.logOnce(.error, problem)
                return ArrayCursor([])
            }
            return try plugin.open(CallContext(env: env, site: site))
        }
        if let value = CompiledSelect.dottedVariable(from.name, in: env) {
            return try CompiledSelect.rowsForFrom(value)
        }
        var message = "Plugin \(from.name) not found"
        if let suggestion = NameSuggester.closest(to: from.name, in: Array(registry.plugins.keys) + env.visibleNames) {
            message += " (did you mean \(suggestion)?)"
        }
        env.context.logOnce(.error, message)
        return ArrayCursor([])
    }

    /// `FROM D1.\`@Items\``: a variable followed by member names.
    static func dottedVariable(_ name: String, in env: Env) -> Value? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1, let base = env.lookup(parts[0]) else { return nil }
        return parts.dropFirst().reduce(base) { $0.member($1) }
    }

    /// Rows of a value used after FROM: a query's rows, a list's items, one dict, or `{}` for NULL.
    static func rowsForFrom(_ value: Value) throws -> RowCursor {
        switch value {
        case .lazy: return try rowsForFrom(value.reduced())
        case .null: return ArrayCursor([.dict(Dict())])
        default: return try Rows.cursor(for: value)
        }
    }
}

/// Caches SELECT column values for one row so WHERE, GROUP BY and the output share them:
/// a column WHERE reads is evaluated once; one it never reads is evaluated only after WHERE passes.
final class ProjectionFrame {
    let evaluators: ContiguousArray<Evaluator>
    /// The same evaluators unretained (kept alive by `evaluators`) for the per-row loop.
    private let unretained: [Unmanaged<Evaluator>]
    var cache: [Value?]

    init(evaluators: [Evaluator]) {
        self.evaluators = ContiguousArray(evaluators)
        self.unretained = evaluators.map { Unmanaged.passUnretained($0) }
        self.cache = [Value?](repeating: nil, count: evaluators.count)
    }

    /// True once a value was cached for the current row (only aliases read by WHERE/GROUP BY do).
    private var dirty = false

    @inline(__always)
    func reset() {
        guard dirty else { return }
        for i in 0..<cache.count { cache[i] = nil }
        dirty = false
    }

    /// Every column's value for the current row (cached ones reused) into `values`.
    @inline(__always)
    func fill(_ values: inout [Value], in env: Env) {
        for k in 0..<evaluators.count {
            if let v = cache[k] {
                values[k] = v
            } else {
                values[k] = unretained[k]._withUnsafeGuaranteedRef { $0.evaluate(env) }.forOutput(in: env)
            }
        }
    }

    @inline(__always)
    func value(_ k: Int, in env: Env) -> Value {
        if let v = cache[k] { return v }
        let v = unretained[k]._withUnsafeGuaranteedRef { $0.evaluate(env) }.forOutput(in: env)
        cache[k] = v
        dirty = true
        return v
    }
}

/// Builds output rows: explicit columns in order, `*` expanded in place (an alias written before
/// `*` wins over the same-named row column; one written after replaces it).
final class Projector {
    private enum Slot {
        case column(Int)
        case rowSlot(Int)
        case rowMember(String)
        case rowItself
    }

    private let columns: [OutputColumn]
    private let hasStar: Bool
    private var fixedSchema: Schema?
    private var lastNames: [String]?
    private var lastSchema = Schema.empty
    private var lastPlan: [Slot] = []

    init(columns: [OutputColumn]) {
        self.columns = columns
        var star = false
        var names: [String] = []
        for c in columns {
            switch c {
            case .star: star = true
            case .expression(_, let name, _): names.append(name)
            }
        }
        self.hasStar = star
        if !star {
            var unique: [String] = []
            for n in names where !unique.contains(n) { unique.append(n) }
            if unique.count == names.count { fixedSchema = Schema(names) }
        }
    }

    @inline(__always)
    func build(row: Value, column: (Int) -> Value) -> Value {
        if let fixedSchema {
            var values: [Value] = []
            values.reserveCapacity(fixedSchema.names.count)
            for c in columns {
                if case .expression(let k, _, _) = c { values.append(column(k)) }
            }
            return .dict(Dict(schema: fixedSchema, values: values))
        }
        let names = rowColumnNames(row)
        if lastNames != names { plan(for: names, row: row) }
        var values: [Value] = []
        values.reserveCapacity(lastPlan.count)
        for slot in lastPlan {
            switch slot {
            case .column(let k): values.append(column(k))
            case .rowSlot(let i):
                if case .dict(let d) = row { values.append(d.values[i]) } else { values.append(.null) }
            case .rowMember(let name): values.append(rowMember(row, name) ?? .null)
            case .rowItself: values.append(row)
            }
        }
        return .dict(Dict(schema: lastSchema, values: values))
    }

    private func plan(for rowNames: [String], row: Value) {
        var names: [String] = []
        var slots: [Slot] = []
        for c in columns {
            switch c {
            case .star:
                for (i, name) in rowNames.enumerated() where !names.contains(name) {
                    names.append(name)
                    switch row {
                    case .dict: slots.append(.rowSlot(i))
                    case .object: slots.append(.rowMember(name))
                    default: slots.append(.rowItself)
                    }
                }
            case .expression(let k, let name, _):
                // Setting an existing key moves it to the end, as the reference's ordered dict does.
                if let existing = names.firstIndex(of: name) {
                    names.remove(at: existing)
                    slots.remove(at: existing)
                }
                names.append(name)
                slots.append(.column(k))
            }
        }
        lastNames = rowNames
        lastSchema = Schema(names)
        lastPlan = slots
    }
}

/// Filter and project, one row at a time (no GROUP BY).
final class ProjectCursor: RowCursor {
    private let select: CompiledSelect
    private let source: RowCursor
    private let rowEnv: Env
    private let frame: ProjectionFrame
    private let projector: Projector
    private let cancellation: CancellationFlag

    init(select: CompiledSelect, source: RowCursor, env: Env) {
        self.select = select
        self.source = source
        self.rowEnv = Env(parent: env)
        self.frame = ProjectionFrame(evaluators: select.columnEvaluators)
        // Column evaluators never resolve aliases (they are compiled without them), so the frame
        // can stay attached for the cursor's life; only WHERE and GROUP BY read through it.
        self.rowEnv.projection = frame
        self.projector = Projector(columns: select.columns)
        self.cancellation = env.context.cancellation
    }

    func next() throws -> Value? {
        try ProjectCursor.pull(
            source: source, rowEnv: rowEnv, frame: frame, condition: select.whereClause ?? Self.always,
            projector: projector, cancellation: cancellation)
    }

    private static let always = ConstantEvaluator(.bool(true))

    /// One output row: everything arrives as an argument so the loop touches no reference counts.
    private static func pull(
        source: RowCursor, rowEnv: Env, frame: ProjectionFrame, condition: Evaluator, projector: Projector,
        cancellation: CancellationFlag
    ) throws -> Value? {
        while let row = try source.next() {
            try cancellation.check()
            rowEnv.row = row
            frame.reset()
            if !condition.test(rowEnv) { continue }
            return projector.build(row: row) { k in frame.value(k, in: rowEnv) }
        }
        return nil
    }

    func close() { source.close() }
}

/// GROUP BY: one output row per group in first-seen order; aggregates keep state per group;
/// other columns take the group's last row.
final class GroupCursor: RowCursor {
    private final class Group {
        let aggregates = AggregateState()
        var lastRow: Value = .null
        var values: [Value]
        init(width: Int) { values = [Value](repeating: .null, count: width) }
    }

    private let select: CompiledSelect
    private let source: RowCursor
    private let rowEnv: Env
    private var output: [Value]?
    private var position = 0

    init(select: CompiledSelect, source: RowCursor, env: Env) {
        self.select = select
        self.source = source
        self.rowEnv = Env(parent: env)
    }

    private func run() throws -> [Value] {
        let frame = ProjectionFrame(evaluators: select.columnEvaluators)
        let width = select.columnEvaluators.count
        let cancellation = rowEnv.context.cancellation
        let scratch = AggregateState()
        var groups: [GroupKey: Group] = [:]
        var order: [Group] = []
        // Fast path: a constant key (GROUP BY 1) is one group known in advance; no hashing.
        let constantGroup: Group? = isConstantKey ? Group(width: width) : nil
        let rowEnv = self.rowEnv
        let source = self.source
        let whereClause = select.whereClause
        let groupBy = select.groupBy
        rowEnv.projection = frame
        if let constantGroup {
            rowEnv.aggregates = constantGroup.aggregates
            if try GroupCursor.accumulate(
                source: source, rowEnv: rowEnv, frame: frame, condition: whereClause ?? ConstantEvaluator(.bool(true)),
                group: constantGroup, cancellation: cancellation)
            {
                order.append(constantGroup)
            }
        }
        while constantGroup == nil, let row = try source.next() {
            try cancellation.check()
            rowEnv.row = row
            frame.reset()
            if constantGroup == nil && rowEnv.aggregates !== scratch { rowEnv.aggregates = scratch }
            if let whereClause, !whereClause.test(rowEnv) { continue }
            let group: Group
            if let constantGroup {
                group = constantGroup
                if order.isEmpty { order.append(group) }
            } else {
                let key: GroupKey
                if groupBy.count == 1 {
                    key = GroupKey(groupBy[0](rowEnv))
                } else {
                    key = GroupKey(.list(groupBy.map { $0(rowEnv).reduced() }))
                }
                if let existing = groups[key] {
                    group = existing
                } else {
                    group = Group(width: width)
                    groups[key] = group
                    order.append(group)
                }
                rowEnv.aggregates = group.aggregates
            }
            frame.fill(&group.values, in: rowEnv)
            group.lastRow = row
        }
        let projector = Projector(columns: select.columns)
        return order.map { group in
            projector.build(row: group.lastRow) { k in group.values[k] }
        }
    }

    /// The per-row loop for a single known group (GROUP BY a constant). Everything arrives as an
    /// argument so the loop body touches no reference counts.
    @inline(never)
    private static func accumulate(
        source: RowCursor, rowEnv: Env, frame: ProjectionFrame, condition: Evaluator, group: Group,
        cancellation: CancellationFlag
    ) throws -> Bool {
        var any = false
        while let row = try source.next() {
            try cancellation.check()
            rowEnv.row = row
            frame.reset()
            if !condition.test(rowEnv) { continue }
            frame.fill(&group.values, in: rowEnv)
            group.lastRow = row
            any = true
        }
        return any
    }

    private var isConstantKey: Bool {
        guard select.statement.groupBy.count == 1 else { return false }
        switch select.statement.groupBy[0].kind {
        case .integer, .string, .bool, .null, .float: return true
        default: return false
        }
    }

    func next() throws -> Value? {
        if output == nil {
            output = try run()
            source.close()
        }
        guard let output, position < output.count else { return nil }
        defer { position += 1 }
        return output[position]
    }

    func close() { source.close() }
}

/// ORDER BY: drains the rows, sorts them stably by the terms (evaluated on output rows).
final class SortCursor: RowCursor {
    private let upstream: RowCursor
    private let orderBy: [(Evaluator, Bool)]
    private let env: Env
    private var sorted: [Value]?
    private var position = 0

    init(upstream: RowCursor, orderBy: [(Evaluator, Bool)], env: Env) {
        self.upstream = upstream
        self.orderBy = orderBy
        self.env = env
    }

    func next() throws -> Value? {
        if sorted == nil {
            let rows = try upstream.drain()
            upstream.close()
            let rowEnv = Env(parent: env)
            let keyed: [(Value, [Value])] = rows.map { row in
                rowEnv.row = row
                return (row, orderBy.map { $0.0(rowEnv).reduced() })
            }
            let indexed = keyed.enumerated().sorted { a, b in
                for (i, term) in orderBy.enumerated() {
                    let x = a.element.1[i]
                    let y = b.element.1[i]
                    if Value.vqlEqual(x, y) { continue }
                    return term.1 ? Value.sortOrder(y, x) : Value.sortOrder(x, y)
                }
                return a.offset < b.offset
            }
            sorted = indexed.map { $0.element.0 }
        }
        guard let sorted, position < sorted.count else { return nil }
        defer { position += 1 }
        return sorted[position]
    }

    func close() { upstream.close() }
}

/// LIMIT: stops pulling (and closes the producer) after n rows.
final class LimitCursor: RowCursor {
    private let upstream: RowCursor
    private let limit: Int64
    private var count: Int64 = 0
    private var closed = false

    init(upstream: RowCursor, limit: Int64) {
        self.upstream = upstream
        self.limit = limit
    }

    func next() throws -> Value? {
        guard count < limit else {
            close()
            return nil
        }
        guard let row = try upstream.next() else { return nil }
        count += 1
        if count == limit { close() }
        return row
    }

    func close() {
        if !closed {
            closed = true
            upstream.close()
        }
    }
}

extension Compiler {
    func compileSelect(_ statement: SelectStatement) -> CompiledSelect {
        var plain = self
        plain.aliases = [:]
        return CompiledSelect(statement: statement, compiler: plain)
    }
}
