import Foundation

/// `query()`: runs VQL given as text (or as a `{ SELECT }`) in a scope of its own. The new scope
/// sees only what `env` and `copy_env` hand it (or everything, with `inherit`), so a query string
/// an artifact receives as a parameter cannot read or overwrite the caller's variables.
public enum QueryPlugin {
    public static let plugin = PluginDeclaration(
        name: "query",
        summary: "Runs a VQL query (text or a stored query) in an isolated scope and yields its rows; `env` and `copy_env` choose the variables it sees.",
        arguments: [
            ArgumentSpec("query", .any, required: true, "VQL text (parsed at run time) or a stored query."),
            ArgumentSpec("env", .dict, "Variables to define in the new scope."),
            ArgumentSpec("copy_env", .stringList, "Names of variables of the current scope to copy into the new one."),
            ArgumentSpec("inherit", .bool, "Run in a child of the current scope instead of an isolated one."),
            ArgumentSpec("timeout", .float, "Stop yielding rows after this many seconds."),
            ArgumentSpec("exit", .lambda, "Called with each row; when it returns TRUE the query stops after that row."),
            ArgumentSpec("cpu_limit", .float, "Accepted for compatibility."),
            ArgumentSpec("iops_limit", .float, "Accepted for compatibility."),
            ArgumentSpec("progress_timeout", .float, "Accepted for compatibility."),
            ArgumentSpec("org_id", .string, "Accepted for compatibility (endpoints have one org)."),
            ArgumentSpec("runas", .string, "Accepted for compatibility."),
        ],
        examples: [
            "SELECT * FROM query(query='SELECT X * 2 AS Y FROM scope()', env=dict(X=21))",
            "SELECT * FROM query(query={ SELECT _value FROM range(end=2) })",
        ]
    ) { ctx in
        let scope = ctx.bool("inherit") == true ? ctx.env.child() : Env(context: ctx.context)
        for name in ctx.strings("copy_env") ?? [] {
            if let value = ctx.env.lookup(name) { scope.set(name, value) }
        }
        if let env = ctx.value("env") {
            switch env {
            case .dict(let d): for (key, value) in d.pairs { scope.set(key, value) }
            case .object(let o): for (key, value) in o.materialized().pairs { scope.set(key, value) }
            case .null: break
            default: ctx.log(.warning, "query(): env must be a dict")
            }
        }
        let inner: RowCursor
        switch ctx.raw("query")?.reduced() {
        case .query(let stored)?:
            inner = try stored.open(scope)
        case let value? where value.stringValue != nil:
            let statements: [Statement]
            do {
                statements = try Parser.parse(value.stringValue ?? "")
            } catch {
                ctx.log(.error, "query(): \(error)")
                return ArrayCursor([])
            }
            inner = try StatementRunner.open(statements, in: scope)
        default:
            ctx.log(.error, "query(): query must be VQL text or a stored query")
            return ArrayCursor([])
        }
        let deadline = ctx.double("timeout").flatMap { $0 > 0 ? Date().addingTimeInterval($0) : nil }
        let exit = ctx.lambda("exit")
        var done = false
        return GeneratorCursor(onClose: { inner.close() }) {
            guard !done else { return nil }
            if let deadline, Date() >= deadline {
                ctx.log(.info, "query(): timeout reached")
                return nil
            }
            guard let row = try QueryDeadline.with(deadline, { try inner.next() }) else {
                if let deadline, Date() >= deadline { ctx.log(.info, "query(): timeout reached") }
                return nil
            }
            if let exit, exit.call([row], in: ctx.env).isTruthy { done = true }
            return normalizeRow(row)
        }
    }
}
