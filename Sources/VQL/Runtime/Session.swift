/// A VQL session: a scope that lives across statements (the REPL, one `quarry query` text, one
/// artifact source). Statements run in order; LET definitions persist.
public final class Session: @unchecked Sendable {
    public let context: QueryContext
    public let root: Env

    public init(registry: Registry, logger: QueryLogger = MemoryLogger(), cancellation: CancellationFlag = CancellationFlag(), variables: [String: Value] = [:]) {
        self.context = QueryContext(registry: registry, logger: logger, cancellation: cancellation)
        self.root = Env(context: context, variables: variables.mapValues { .value($0) })
    }

    public init(context: QueryContext, variables: [String: Value] = [:]) {
        self.context = context
        self.root = Env(context: context, variables: variables.mapValues { .value($0) })
    }

    /// A statement ready to run.
    public enum Prepared {
        /// A SELECT (or EXPLAIN): pull rows from the cursor.
        case rows(RowCursor, columns: [String]?)
        /// A LET, already bound in the scope.
        case bound(String)
    }

    /// Binds a LET or opens a SELECT. Each top-level statement gets fresh aggregate state.
    public func prepare(_ statement: Statement) throws -> Prepared {
        root.aggregates = AggregateState()
        let compiler = Compiler(registry: context.registry)
        switch statement {
        case .let(let l):
            let definition = compiler.compileLet(l)
            if l.materialized {
                root.variables[l.name] = .value(definition.materialize(in: root))
            } else {
                root.variables[l.name] = .definition(definition)
            }
            return .bound(l.name)
        case .select(let s):
            let compiled = compiler.compileSelect(s)
            let cursor = try Diagnostics.tracked(text: CanonicalPrinter.print(s)) { try compiled.open(in: root) }
            return .rows(cursor, columns: Session.declaredColumns(s))
        case .explain(let s):
            let compiled = compiler.compileSelect(s)
            context.log(.info, "EXPLAIN: " + Session.explain(s))
            return .rows(try compiled.open(in: root), columns: Session.declaredColumns(s))
        }
    }

    /// Ends the session: runs the queries atexit() registered. Safe to call more than once.
    public func close() {
        context.runExitHooks()
    }

    /// Runs a whole text and collects each SELECT's rows (materialized). LETs give nil entries.
    public func run(_ text: String) throws -> [[Value]?] {
        let statements = try Parser.parse(text)
        var results: [[Value]?] = []
        for statement in statements {
            switch try prepare(statement) {
            case .bound: results.append(nil)
            case .rows(let cursor, _):
                defer { cursor.close() }
                var rows: [Value] = []
                while let row = try cursor.next() { rows.append(row.materialized()) }
                results.append(rows)
            }
        }
        return results
    }

    /// Column names known before running (nil when `*` makes them depend on the rows).
    static func declaredColumns(_ s: SelectStatement) -> [String]? {
        var names: [String] = []
        for column in s.columns {
            switch column {
            case .star: return nil
            case .expression(let e, let alias, _): names.append(alias ?? CompiledSelect.columnName(e))
            }
        }
        return names
    }

    /// A readable plan: source → filter → project → group → order → limit.
    public static func explain(_ s: SelectStatement) -> String {
        var steps: [String] = []
        if let from = s.from {
            steps.append("source \(from.name)(\(CanonicalPrinter.printArguments(from.args)))")
        } else {
            steps.append("source <one empty row>")
        }
        if let w = s.whereClause { steps.append("filter \(CanonicalPrinter.print(w))") }
        steps.append("project " + (declaredColumns(s)?.joined(separator: ", ") ?? "*"))
        if !s.groupBy.isEmpty { steps.append("group by " + s.groupBy.map { CanonicalPrinter.print($0) }.joined(separator: ", ")) }
        if !s.orderBy.isEmpty {
            steps.append("order by " + s.orderBy.map { CanonicalPrinter.print($0.expression) + ($0.descending ? " DESC" : "") }.joined(separator: ", "))
        }
        if let limit = s.limit { steps.append("limit \(limit)") }
        return steps.joined(separator: " → ")
    }
}
