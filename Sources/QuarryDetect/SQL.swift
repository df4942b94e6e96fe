import VQL

/// sql(): Velociraptor's generic database plugin, served for the sqlite driver by the same
/// read-only reader as sqlite() (a locked database or one with a WAL is queried on a copy).
public enum SQLPlugin {
    public static let plugin = PluginDeclaration(
        name: "sql",
        summary: "Runs a query against a database; driver 'sqlite' (a file, or :memory:) is supported, mysql and postgres are not.",
        arguments: [
            ArgumentSpec("driver", .string, required: true, "sqlite (mysql and postgres are not supported)."),
            ArgumentSpec("connstring", .string, "For sqlite, the database file when file= is not given."),
            ArgumentSpec("file", .any, "The SQLite database file."),
            ArgumentSpec("accessor", .string, "Only file (the default) is supported."),
            ArgumentSpec("query", .string, required: true, "The SQL query."),
            ArgumentSpec("args", .any, "Parameters: a list (?) or a dict (:name)."),
        ],
        examples: ["SELECT * FROM sql(driver='sqlite', file=':memory:', query='SELECT 40 + ? AS Answer', args=[2])"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.string("driver")?.lowercased() == "sqlite" else {
            ctx.context.logOnce(.error, "sql: driver '\(ctx.string("driver") ?? "")' is not supported (only sqlite)")
            return ArrayCursor([])
        }
        if let accessor = ctx.string("accessor"), !["", "file", "auto"].contains(accessor) {
            ctx.context.logOnce(.error, "sql: accessor '\(accessor)' is not supported for sqlite")
            return ArrayCursor([])
        }
        guard let file = ctx.string("file") ?? ctx.string("connstring"), let query = ctx.string("query") else {
            ctx.context.logOnce(.error, "sql: sqlite needs file= (or connstring=) and query=")
            return ArrayCursor([])
        }
        do {
            return try SQLiteCursor(file: file, query: query, args: ctx.value("args"), ctx: ctx)
        } catch {
            ctx.log(.error, "sql: \(file): \(error)")
            return ArrayCursor([])
        }
    }
}
