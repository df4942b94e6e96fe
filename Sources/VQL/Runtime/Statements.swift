/// Runs a list of statements in a given scope and streams the rows of their SELECTs in order:
/// what an artifact source (or a stored VQL text) needs when it is used as a plugin.
public enum StatementRunner {
    public static func open(_ statements: [Statement], in env: Env) throws -> RowCursor {
        let compiler = Compiler(registry: env.context.registry)
        var pending = statements[...]
        var current: RowCursor?
        return GeneratorCursor(onClose: { current?.close() }) {
            while true {
                if let cursor = current {
                    if let row = try cursor.next() { return row }
                    cursor.close()
                    current = nil
                }
                guard let statement = pending.popFirst() else { return nil }
                switch statement {
                case .let(let l):
                    let definition = compiler.compileLet(l)
                    if l.materialized {
                        env.variables[l.name] = .value(definition.materialize(in: env))
                    } else {
                        env.variables[l.name] = .definition(definition)
                    }
                case .select(let s), .explain(let s):
                    env.aggregates = AggregateState()
                    current = try Diagnostics.tracked(text: CanonicalPrinter.print(s)) { try compiler.compileSelect(s).open(in: env) }
                }
            }
        }
    }
}
