import Foundation

/// Functions that treat text as a program: template() expands Go templates, reformat() lays out
/// VQL, atexit() registers a query to run when the session ends.
public enum ProgramFunctions {
    public static let all: [FunctionDeclaration] = [template, reformat, atexit, background]

    public static let template = FunctionDeclaration(
        name: "template",
        summary: "Expands a Go text/template: `.Name` reads the `expansion` dict, `{{ Scope \"X\" }}` a VQL variable, `{{ Get .A \"b.c\" }}` a member path; if/range/with/else, pipes and printf work.",
        arguments: [
            ArgumentSpec("template", .string, required: true, "The template text."),
            ArgumentSpec("expansion", .any, required: true, "The data `.` stands for (usually a dict)."),
            ArgumentSpec("html", .bool, "Escape every printed value for HTML."),
        ],
        returns: .string,
        examples: ["SELECT template(template='Hello {{ .Name }}{{ range .Items }} {{ . }}{{ end }}', expansion=dict(Name='World', Items=[1, 2])) AS T FROM scope()"]
    ) { ctx in
        guard let text = ctx.string("template") else { return .null }
        let dot = (ctx.value("expansion") ?? .null).materialized()
        let env = ctx.env
        let result: String?? = NestingGuard.run(ctx, "template") {
            do {
                let parsed = try GoTemplate(text)
                return try parsed.render(dot: dot, scope: { env.lookup($0)?.reduced() ?? .null }, escapeHTML: ctx.bool("html") == true)
            } catch {
                ctx.log(.error, "\(error)")
                return nil
            }
        }
        return (result ?? nil).map { .string($0) } ?? .null
    }

    public static let reformat = FunctionDeclaration(
        name: "reformat",
        summary: "Lays out VQL text one clause per line (SELECT columns aligned, FROM, WHERE, …); text that does not parse comes back unchanged with an error logged.",
        arguments: [ArgumentSpec("artifact", .string, required: true, "The VQL text.")],
        returns: .string,
        examples: ["SELECT reformat(artifact='select a,b from scope() where a') AS VQL FROM scope()"]
    ) { ctx in
        guard let text = ctx.string("artifact") else { return .null }
        let statements: [Statement]
        do {
            statements = try Parser.parse(text)
        } catch {
            ctx.log(.error, "reformat(): \(error)")
            return .string(text)
        }
        return .string(statements.map(VQLLayout.layout).joined(separator: "\n\n"))
    }

    public static let atexit = FunctionDeclaration(
        name: "atexit",
        summary: "Registers `query` to run when the session ends (clean-up after a collection), with `env` added to its scope; returns TRUE.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The query to run at the end."),
            ArgumentSpec("env", .dict, "Variables to add to the query's scope."),
            ArgumentSpec("timeout", .int, "Seconds the query may run (default 60)."),
        ],
        returns: .bool,
        examples: ["LET _ <= atexit(query={ SELECT log(message='done') FROM scope() }) SELECT 1 AS Registered FROM scope()"]
    ) { ctx in
        guard case .query(let query)? = ctx.raw("query")?.reduced() else {
            ctx.log(.error, "atexit(): query must be a query")
            return .bool(false)
        }
        var variables: [String: Binding] = [:]
        if case .dict(let d)? = ctx.value("env") {
            for (k, v) in d.pairs { variables[k] = .value(v) }
        }
        let timeout = Double(max(1, ctx.int("timeout") ?? 60))
        let box = UncheckedBox((query, ctx.env.child(variables: variables), ctx.context))
        ctx.context.exitHooks.withLock { hooks in
            hooks.append {
                let (query, env, context) = box.value
                let deadline = Date().addingTimeInterval(timeout)
                do {
                    let cursor = try query.rebound(to: env).cursor()
                    defer { cursor.close() }
                    while Date() < deadline, try cursor.next() != nil {}
                } catch {
                    context.log(.error, "atexit: \(error)")
                }
            }
        }
        return .bool(true)
    }
}

extension ProgramFunctions {
    public static let background = FunctionDeclaration(
        name: "background",
        summary: "Runs `query` on a thread of its own, discarding its rows, while the calling query goes on; it is stopped when the session ends. Returns TRUE.",
        arguments: [ArgumentSpec("query", .query, "The query to run in the background.")],
        returns: .bool,
        examples: ["LET _ <= background(query={ SELECT log(message='in the background') FROM scope() }) SELECT 1 AS Started FROM scope()"]
    ) { ctx in
        guard case .query(let query)? = ctx.raw("query")?.reduced() else {
            ctx.log(.error, "background(): query must be a query")
            return .bool(false)
        }
        let stop = CancellationFlag()
        let context = ctx.context
        // Whichever comes first ends it: the session closing, the context finishing, a cancellation.
        context.exitHooks.withLock { $0.append { stop.cancel() } }
        context.atEnd { stop.cancel() }
        // Its own copy of the scope: the session goes on binding LETs in the root meanwhile.
        let box = UncheckedBox((query, ctx.env.snapshot()))
        let thread = Thread {
            let (query, env) = box.value
            do {
                let cursor = try query.rebound(to: env).cursor()
                defer { cursor.close() }
                while !stop.isCancelled, !env.context.cancellation.isCancelled, try cursor.next() != nil {}
            } catch {
                env.context.log(.error, "background: \(error)")
            }
        }
        thread.start()
        return .bool(true)
    }
}

/// reformat()'s layout: top-level clauses on their own lines, columns aligned under the first.
enum VQLLayout {
    static func layout(_ statement: Statement) -> String {
        switch statement {
        case .select(let s): return layout(s)
        case .explain(let s): return "EXPLAIN " + layout(s)
        case .let(let l):
            guard case .select(let s) = l.body else { return CanonicalPrinter.print(l) }
            var head = "LET " + l.name
            if let parameters = l.parameters {
                head += "(" + parameters.map { p in p.defaultValue.map { "\(p.name)=\(CanonicalPrinter.print($0))" } ?? p.name }
                    .joined(separator: ", ") + ")"
            }
            return head + (l.materialized ? " <= " : " = ") + layout(s)
        }
    }

    static func layout(_ select: SelectStatement) -> String {
        let columns = select.columns.map { column -> String in
            switch column {
            case .star: return "*"
            case .expression(let e, let alias, let quoted):
                guard let alias else { return CanonicalPrinter.print(e) }
                return CanonicalPrinter.print(e) + " AS " + (quoted ? "`\(alias)`" : alias)
            }
        }
        var out = "SELECT " + columns.joined(separator: ",\n       ")
        if let from = select.from {
            out += "\nFROM " + from.name
            if from.hasParentheses { out += "(" + CanonicalPrinter.printArguments(from.args) + ")" }
        }
        if let w = select.whereClause { out += "\nWHERE " + CanonicalPrinter.print(w) }
        if !select.groupBy.isEmpty { out += "\nGROUP BY " + select.groupBy.map { CanonicalPrinter.print($0) }.joined(separator: ", ") }
        if !select.orderBy.isEmpty {
            out += "\nORDER BY " + select.orderBy.map { CanonicalPrinter.print($0.expression) + ($0.descending ? " DESC" : "") }
                .joined(separator: ", ")
        }
        if let limit = select.limit { out += "\nLIMIT \(limit)" }
        return out
    }
}
