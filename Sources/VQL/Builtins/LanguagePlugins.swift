import Foundation

/// Plugins about the language itself: the older `for` loop, help() over the registry, panic(),
/// and parse_json_array() as a row source.
public enum LanguagePlugins {
    public static let all: [PluginDeclaration] = [forPlugin, help, panic, parseJSONArray]

    public static let forPlugin = PluginDeclaration(
        name: "for",
        summary: "The older form of foreach(): for each item of `foreach`, binds it to the variable named `var` and runs `query` (without a query, yields the items).",
        arguments: [
            ArgumentSpec("var", .string, required: true, "The variable each item is bound to."),
            ArgumentSpec("foreach", .query, required: true, "The items: a query, a list or a value."),
            ArgumentSpec("query", .query, "Run once per item."),
        ],
        examples: ["SELECT * FROM for(var='X', foreach=[1, 2], query={ SELECT X * 10 AS Y FROM scope() })"]
    ) { ctx in
        let name = ctx.string("var") ?? "_"
        let items = try ctx.rows("foreach") ?? ArrayCursor([])
        let hasQuery = ctx.has("query")
        var inner: RowCursor?
        return GeneratorCursor(onClose: { inner?.close(); items.close() }) {
            while true {
                if let current = inner {
                    if let row = try current.next() { return normalizeRow(row) }
                    current.close()
                    inner = nil
                }
                guard let item = try items.next()?.reduced() else { return nil }
                try ctx.checkCancelled()
                guard hasQuery else { return normalizeRow(item) }
                let child = ctx.env.child(variables: [name: .value(item)])
                inner = try Rows.cursor(for: CallContext(env: child, site: ctx.site).raw("query") ?? .null)
            }
        }
    }

    public static let help = PluginDeclaration(
        name: "help",
        summary: "Lists every plugin and function this session knows, with its summary and arguments.",
        columns: [
            ColumnSpec("Name", .string), ColumnSpec("Type", .string, "Plugin or Function"),
            ColumnSpec("Description", .string), ColumnSpec("Args", .list, "Name, Type, Required and Description of each argument."),
        ],
        examples: ["SELECT Name FROM help() WHERE Name = 'range'"]
    ) { ctx in
        let registry = ctx.context.registry
        let argSchema = Schema(["Name", "Type", "Required", "Description"])
        let schema = Schema(["Name", "Type", "Description", "Args"])
        func args(_ specs: [ArgumentSpec]) -> Value {
            .list(specs.map { .dict(Dict(schema: argSchema, values: [.string($0.name), .string($0.type.rawValue), .bool($0.required), .string($0.doc)])) })
        }
        var rows: [Value] = []
        for p in registry.plugins.values.sorted(by: { $0.name < $1.name }) {
            rows.append(.dict(Dict(schema: schema, values: [.string(p.name), .string("Plugin"), .string(p.summary), args(p.arguments)])))
        }
        for f in registry.functions.values.sorted(by: { $0.name < $1.name }) {
            rows.append(.dict(Dict(schema: schema, values: [.string(f.name), .string("Function"), .string(f.summary), args(f.arguments)])))
        }
        return ArrayCursor(rows)
    }

    public static let panic = PluginDeclaration(
        name: "panic",
        summary: "A developer aid that stands for a crash: it logs an error and ends the statement with no rows (Quarry never crashes on purpose).",
        examples: ["SELECT * FROM chain(a={ SELECT 1 AS X FROM scope() }, b={ SELECT * FROM panic() }) LIMIT 1"]
    ) { ctx in
        ctx.log(.error, "panic(): the query asked to stop")
        return ArrayCursor([])
    }

    public static let parseJSONArray = PluginDeclaration(
        name: "parse_json_array",
        summary: "Yields one row per element of a JSON array: objects become rows, other values `_value` rows.",
        arguments: [
            ArgumentSpec("data", .string, required: true, "JSON text holding an array."),
            ArgumentSpec("schema", .stringList, "Accepted for compatibility (no validation)."),
        ],
        examples: ["SELECT * FROM parse_json_array(data='[{\"A\": 1}, {\"A\": 2}]')"]
    ) { ctx in
        guard let bytes = ctx.bytes("data") else { return ArrayCursor([]) }
        do {
            guard case .list(let items) = try JSONParser.parse(bytes: bytes) else {
                ctx.log(.warning, "parse_json_array: the data is not a JSON array")
                return ArrayCursor([])
            }
            return ArrayCursor(items.filter { !$0.isNull }.map(normalizeRow))
        } catch {
            ctx.log(.warning, "parse_json_array: \(error)")
            return ArrayCursor([])
        }
    }
}
