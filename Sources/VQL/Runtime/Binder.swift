/// Checks names before a text runs: unknown plugins and functions, and argument names a
/// declaration does not take, each as a diagnostic with the closest known name. The engine itself
/// is lenient (it logs and goes on, as Velociraptor does); the CLI and REPL use this to fail early.
public enum Binder {
    /// Names that plugins bind for the queries they run (sequence() gives its query SEQUENCE).
    static let pluginBoundNames: Set<String> = ["SEQUENCE"]

    public static func check(_ statements: [Statement], registry: Registry, knownNames: Set<String> = []) -> [Diagnostic] {
        var known = knownNames.union(pluginBoundNames)
        var problems: [Diagnostic] = []
        for statement in statements {
            if case .let(let l) = statement { known.insert(l.name) }
        }
        var walker = Walker(registry: registry, known: known)
        for statement in statements {
            switch statement {
            case .select(let s), .explain(let s): walker.visit(s)
            case .let(let l):
                var scoped = walker
                for p in l.parameters ?? [] { scoped.known.insert(p.name) }
                switch l.body {
                case .select(let s): scoped.visit(s)
                case .expression(let e): scoped.visit(e)
                }
                for p in l.parameters ?? [] { if let d = p.defaultValue { scoped.visit(d) } }
                walker.problems = scoped.problems
            }
        }
        problems = walker.problems
        return problems
    }

    private struct Walker {
        let registry: Registry
        var known: Set<String>
        var problems: [Diagnostic] = []
        /// How many subqueries deep the walk is. Inside one, `FROM Name` without arguments may name
        /// a column of an enclosing row (Velociraptor's `SELECT … FROM CallStack`), which only the
        /// run time knows, so it is not reported.
        var depth = 0

        init(registry: Registry, known: Set<String>) {
            self.registry = registry
            self.known = known
        }

        mutating func visit(_ s: SelectStatement) {
            if let from = s.from {
                let head = from.name.split(separator: ".").first.map(String.init) ?? from.name
                if let plugin = registry.plugin(from.name), !known.contains(from.name) {
                    checkArguments(from.args, name: from.name, specs: plugin.arguments, strict: plugin.strictArguments)
                } else if !known.contains(from.name), !(head != from.name && known.contains(head)), depth == 0 || !from.args.isEmpty {
                    problems.append(
                        Diagnostic(
                            .unknownPlugin, "unknown plugin '\(from.name)'", range: from.range,
                            suggestion: NameSuggester.closest(to: from.name, in: Array(registry.plugins.keys) + Array(known))))
                }
                for arg in from.args { visit(arg.value) }
            }
            for column in s.columns {
                if case .expression(let e, _, _) = column { visit(e) }
            }
            if let w = s.whereClause { visit(w) }
            s.groupBy.forEach { visit($0) }
            s.orderBy.forEach { visit($0.expression) }
        }

        mutating func checkArguments(_ args: [CallArgument], name: String, specs: [ArgumentSpec], strict: Bool) {
            guard strict, !args.contains(where: { if case .unpack = $0.kind { return true } else { return false } }) else { return }
            for arg in args {
                guard case .named(let n, _) = arg.kind, !specs.contains(where: { $0.name == n }) else { continue }
                problems.append(
                    Diagnostic(
                        .argument, "\(name)() has no argument '\(n)'", range: arg.range,
                        suggestion: NameSuggester.closest(to: n, in: specs.map(\.name)).map { $0 + "=" }))
            }
        }

        mutating func visit(_ e: Expression) {
            switch e.kind {
            case .null, .bool, .integer, .float, .string, .symbol: return
            case .member(let b, _, _), .negate(let b), .not(let b), .parenthesized(let b): visit(b)
            case .index(let b, let i):
                visit(b)
                visit(i)
            case .slice(let b, let lo, let hi):
                visit(b)
                if let lo { visit(lo) }
                if let hi { visit(hi) }
            case .list(let items), .tuple(let items, _): items.forEach { visit($0) }
            case .subquery(let s):
                depth += 1
                visit(s)
                depth -= 1
            case .binary(_, let l, let r, _):
                visit(l)
                visit(r)
            case .call(let name, let args):
                if let f = registry.function(name) {
                    checkArguments(args, name: name, specs: f.arguments, strict: f.strictArguments)
                } else if !known.contains(name) {
                    problems.append(
                        Diagnostic(
                            .unknownFunction, "unknown function '\(name)'", range: e.range,
                            suggestion: NameSuggester.closest(to: name, in: Array(registry.functions.keys) + Array(known))))
                }
                for arg in args { visit(arg.value) }
            }
        }
    }
}
