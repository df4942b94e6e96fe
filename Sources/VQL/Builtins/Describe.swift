/// Human-readable descriptions generated from declarations (CLI listings, REPL `.describe`, docs/).
public enum Describe {
    public static func plugin(_ p: PluginDeclaration) -> String {
        var out = "\(p.name)(\(p.arguments.map(\.name).joined(separator: ", ")))\n    \(p.summary)\n"
        out += arguments(p.arguments)
        if !p.columns.isEmpty {
            out += "    columns:\n"
            for c in p.columns {
                out += "      \(c.name) (\(c.type.rawValue))" + (c.doc.isEmpty ? "" : ": \(c.doc)") + "\n"
            }
        }
        if !p.permissions.isEmpty { out += "    requires: \(p.permissions.map(\.rawValue).joined(separator: ", "))\n" }
        for e in p.examples { out += "    example: \(e)\n" }
        return out
    }

    public static func function(_ f: FunctionDeclaration) -> String {
        var out = "\(f.name)(\(f.arguments.map(\.name).joined(separator: ", "))) → \(f.returns.rawValue)"
        if f.isAggregate { out += "  [aggregate]" }
        out += "\n    \(f.summary)\n" + arguments(f.arguments)
        if !f.permissions.isEmpty { out += "    requires: \(f.permissions.map(\.rawValue).joined(separator: ", "))\n" }
        for e in f.examples { out += "    example: \(e)\n" }
        return out
    }

    static func arguments(_ args: [ArgumentSpec]) -> String {
        args.map { "    \($0.name)=\($0.required ? " (required)" : "") \($0.type.rawValue): \($0.doc)\n" }.joined()
    }

    /// Markdown reference for docs/.
    public static func markdown(plugins: [PluginDeclaration], functions: [FunctionDeclaration], accessors: [any Accessor] = []) -> String {
        var out = "# VQL reference\n\nGenerated from the plugin and function declarations (`make docs`).\n\n## Plugins\n\n"
        for p in plugins.sorted(by: { $0.name < $1.name }) {
            out += "### \(p.name)\n\n\(p.summary)\n\n"
            if !p.arguments.isEmpty {
                out += "| argument | type | required | description |\n|---|---|---|---|\n"
                for a in p.arguments { out += "| \(a.name) | \(a.type.rawValue) | \(a.required ? "yes" : "") | \(a.doc) |\n" }
                out += "\n"
            }
            if !p.columns.isEmpty {
                out += "| column | type | description |\n|---|---|---|\n"
                for c in p.columns { out += "| \(c.name) | \(c.type.rawValue) | \(c.doc) |\n" }
                out += "\n"
            }
            for e in p.examples { out += "```sql\n\(e)\n```\n\n" }
        }
        out += "## Functions\n\n"
        for f in functions.sorted(by: { $0.name < $1.name }) {
            out += "### \(f.name)\(f.isAggregate ? " (aggregate)" : "")\n\n\(f.summary) Returns \(f.returns.rawValue).\n\n"
            if !f.arguments.isEmpty {
                out += "| argument | type | required | description |\n|---|---|---|---|\n"
                for a in f.arguments { out += "| \(a.name) | \(a.type.rawValue) | \(a.required ? "yes" : "") | \(a.doc) |\n" }
                out += "\n"
            }
            for e in f.examples { out += "```sql\n\(e)\n```\n\n" }
        }
        if !accessors.isEmpty {
            out += "## Accessors\n\nNamed by `accessor=` in every plugin and function that takes a path (see docs/accessors.md).\n\n"
            out += "| accessor | lists directories | description |\n|---|---|---|\n"
            for a in accessors.sorted(by: { $0.name < $1.name }) { out += "| \(a.name) | \(a.canList ? "yes" : "") | \(a.summary) |\n" }
        }
        return out
    }
}
