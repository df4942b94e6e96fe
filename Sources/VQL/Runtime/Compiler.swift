/// Binds names and compiles AST into closures once per statement. The only place that turns
/// syntax into behaviour; the parser stays ignorant of plugins and functions.
struct Compiler {
    let registry: Registry
    /// SELECT aliases visible to WHERE, GROUP BY and ORDER BY (name → column index).
    var aliases: [String: Int] = [:]

    init(registry: Registry) {
        self.registry = registry
    }

    func compile(_ e: Expression) -> Evaluator {
        switch e.kind {
        case .null: return ConstantEvaluator(.null)
        case .bool(let b, _): return ConstantEvaluator(.bool(b))
        case .integer(let i, _): return ConstantEvaluator(.int(i))
        case .float(let d, _): return ConstantEvaluator(.double(d))
        case .string(let bytes, _): return ConstantEvaluator(.string(bytes: bytes))
        case .symbol(let name, _):
            if let k = aliases[name] { return AliasEvaluator(index: k, name: name) }
            return SymbolEvaluator(name)
        case .member(let base, let name, _):
            return MemberEvaluator(compile(base), name)
        case .index(let base, let key):
            let b = compile(base)
            let k = compile(key)
            return ClosureEvaluator { env in b(env).index(k(env)) }
        case .slice(let base, let lower, let upper):
            let b = compile(base)
            let lo = lower.map { compile($0) }
            let hi = upper.map { compile($0) }
            return ClosureEvaluator { env in b(env).slice(lo?(env), hi?(env)) }
        case .list(let items), .tuple(let items, _):
            let evaluators = items.map { compile($0) }
            return ClosureEvaluator { env in .list(evaluators.map { $0(env).reduced() }) }
        case .parenthesized(let inner):
            return compile(inner)
        case .subquery(let select):
            let compiled = Compiler(registry: registry).compileSelect(select)
            return ClosureEvaluator { env in Compiler.unwrapSubquery(compiled, env: env) }
        case .negate(let inner):
            let v = compile(inner)
            return ClosureEvaluator { env in v(env).negated() }
        case .not(let inner):
            let v = compile(inner)
            return ClosureEvaluator { env in .bool(!v(env).isTruthy) }
        case .call(let name, let args):
            return compileCall(name: name, args: args, id: e.id, range: e.range)
        case .binary(let op, let left, let right, _):
            return compileBinary(op, compile(left), right)
        }
    }

    /// A `{ SELECT }` used as a value: one-column rows become their value; one row is unwrapped;
    /// no rows is NULL.
    static func unwrapSubquery(_ select: CompiledSelect, env: Env) -> Value {
        let rows: [Value]
        do {
            let cursor = try select.open(in: env)
            defer { cursor.close() }
            rows = try cursor.drain()
        } catch {
            env.context.log(.error, "subquery: \(error)")
            return .null
        }
        let items = rows.map { row -> Value in
            if case .dict(let d) = row, d.count == 1 { return d.values[0] }
            return row
        }
        switch items.count {
        case 0: return .null
        case 1: return items[0]
        default: return .list(items)
        }
    }

    private func compileBinary(_ op: BinaryOperator, _ l: Evaluator, _ rightExpr: Expression) -> Evaluator {
        let folded = foldConstants(op, l, rightExpr)
        if let folded { return folded }
        let r = compile(rightExpr)
        switch op {
        case .and, .or:
            // A constant side of AND/OR drops out at bind time when that keeps every evaluation
            // the unfolded form would do (the left side always runs first).
            let isAnd = op == .and
            if let c = l.constant {
                return c.isTruthy == isAnd ? TruthEvaluator(r) : ConstantEvaluator(.bool(!isAnd))
            }
            if let c = r.constant, c.isTruthy == isAnd { return TruthEvaluator(l) }
            return LogicEvaluator(isAnd: isAnd, l, r)
        case .valueOr:
            return ClosureEvaluator { env in
                let a = l(env).reduced()
                if a.isTruthy { return a }
                return r(env).reduced()
            }
        case .valueAnd:
            return ClosureEvaluator { env in
                guard l(env).isTruthy else { return .bool(false) }
                let b = r(env).reduced()
                return b.isTruthy ? b : .bool(false)
            }
        case .equal: return ComparisonEvaluator(.equal, l, r)
        case .notEqual: return ComparisonEvaluator(.notEqual, l, r)
        case .less: return ComparisonEvaluator(.less, l, r)
        case .lessEqual: return ComparisonEvaluator(.lessEqual, l, r)
        case .greater: return ComparisonEvaluator(.greater, l, r)
        case .greaterEqual: return ComparisonEvaluator(.greaterEqual, l, r)
        case .in:
            return ClosureEvaluator { env in
                let item = l(env)
                return .bool(Value.contains(r(env).reduced(), item))
            }
        case .add:
            return ClosureEvaluator { env in Value.add(l(env), r(env)) }
        case .subtract, .multiply, .divide, .modulo:
            return ClosureEvaluator { env in Value.arithmetic(op, l(env), r(env)) }
        case .regexMatch:
            if case .string(let bytes, _) = rightExpr.kind, let pattern = String(validating: bytes, as: UTF8.self) {
                do {
                    return RegexEvaluator(l, try CompiledRegex(pattern, caseInsensitive: true))
                } catch {
                    let message = "regex: \(error)"
                    return ClosureEvaluator { env in
                        env.context.logOnce(.error, message)
                        return .bool(false)
                    }
                }
            }
            return ClosureEvaluator { env in
                guard let pattern = r(env).reduced().stringValue, let regex = env.context.regex(pattern) else {
                    return .bool(false)
                }
                return .bool(Compiler.regexMatch(l(env), regex))
            }
        }
    }

    /// Folds comparisons of two constants, and `=~ '.'` (which matches anything), at bind time.
    private func foldConstants(_ op: BinaryOperator, _ l: Evaluator, _ rightExpr: Expression) -> Evaluator? {
        if op == .regexMatch, case .string(let bytes, _) = rightExpr.kind, bytes == [UInt8(ascii: ".")] {
            return ConstantEvaluator(.bool(true))
        }
        guard let a = l.constant, a.isScalar else { return nil }
        let r = compile(rightExpr)
        guard let b = r.constant, b.isScalar else { return nil }
        switch op {
        case .equal: return ConstantEvaluator(.bool(Value.vqlEqual(a, b)))
        case .notEqual: return ConstantEvaluator(.bool(!Value.vqlEqual(a, b)))
        case .less: return ConstantEvaluator(.bool((Value.vqlCompare(a, b) ?? 0) < 0))
        case .greater: return ConstantEvaluator(.bool((Value.vqlCompare(a, b) ?? 0) > 0))
        case .add: return ConstantEvaluator(Value.add(a, b))
        case .subtract, .multiply, .divide, .modulo: return ConstantEvaluator(Value.arithmetic(op, a, b))
        default: return nil
        }
    }

    static func regexMatch(_ value: Value, _ regex: CompiledRegex) -> Bool {
        if regex.matchesEverything { return true }
        switch value {
        case .string(let s): return regex.matches(s)
        case .bytes(let b): return regex.matches(bytes: b)
        case .null: return false
        case .int(let i): return regex.matches(String(i))
        case .double(let d): return regex.matches(JSONWriter.plainDouble(d))
        case .bool(let b): return regex.matches(b ? "true" : "false")
        case .timestamp(let t): return regex.matches(JSONWriter.rfc3339(t))
        case .lazy: return regexMatch(value.reduced(), regex)
        case .list, .query: return (value.listElements ?? []).contains { regexMatch($0, regex) }
        case .object(let o) where o.scalar != nil: return regexMatch(o.scalar ?? .null, regex)
        case .dict, .object: return regex.matches(JSONWriter.string(value.materialized()))
        }
    }

    func compileSite(name: String, args: [CallArgument], id: Int, range: SourceRange) -> CallSite {
        var names: [String] = []
        var evaluators: [Evaluator] = []
        for arg in args {
            switch arg.kind {
            case .named(let n, _): names.append(n)
            case .unpack: names.append("**")
            }
            if case .subquery(let select) = arg.value.kind {
                // A `{ SELECT }` passed as an argument stays a query; the callee decides how to run it.
                let compiled = Compiler(registry: registry).compileSelect(select)
                evaluators.append(ClosureEvaluator { env in .query(StoredQuery(env: env, lateBound: true) { e in try compiled.open(in: e) }) })
            } else {
                var inner = self
                inner.aliases = aliases
                evaluators.append(inner.compile(arg.value))
            }
        }
        return CallSite(name: name, id: id, range: range, names: names, evaluators: evaluators)
    }

    private func compileCall(name: String, args: [CallArgument], id: Int, range: SourceRange) -> Evaluator {
        let site = compileSite(name: name, args: args, id: id, range: range)
        if let declaration = registry.function(name) {
            if let problem = site.problems(against: declaration.arguments, strict: declaration.strictArguments) {
                return ClosureEvaluator { env in
                    env.context.logOnce(.error, problem)
                    return .null
                }
            }
            if name == "count" && declaration.isAggregate { return CountEvaluator(id: id) }
            if let specialize = declaration.specialize {
                var constants: [String: Value] = [:]
                for (argName, evaluator) in zip(site.names, site.evaluators) {
                    if let value = evaluator.constant { constants[argName] = value }
                }
                if let call = specialize(constants) { return FunctionCallEvaluator(site: site, call: call) }
            }
            return FunctionCallEvaluator(site: site, call: declaration.call)
        }
        let registry = self.registry
        return ClosureEvaluator { env in
            if let definition = env.definition(named: name) {
                let arguments = CallContext(env: env, site: site).allArguments()
                return definition.evaluate(in: env, arguments: arguments, freshAggregates: true)
            }
            var message = "Function \(name) not found"
            if let suggestion = NameSuggester.closest(to: name, in: Array(registry.functions.keys) + env.visibleNames) {
                message += " (did you mean \(suggestion)?)"
            }
            env.context.logOnce(.error, message)
            return .null
        }
    }

    /// Compiles a LET statement into a definition (evaluation happens when it is used).
    func compileLet(_ statement: LetStatement) -> LetDefinition {
        var defaults: [String: Evaluator] = [:]
        for parameter in statement.parameters ?? [] {
            if let d = parameter.defaultValue { defaults[parameter.name] = compile(d) }
        }
        let body: LetDefinition.CompiledBody
        switch statement.body {
        case .expression(let e): body = .expression(compile(e))
        case .select(let s): body = .select(compileSelect(s))
        }
        return LetDefinition(name: statement.name, parameters: statement.parameters, defaults: defaults, body: body)
    }
}

extension QueryContext {
    /// Compiles a lambda string once per session.
    public func lambda(_ text: String) -> Lambda? {
        if let cached = lambdas.withLock({ $0[text] }) { return cached }
        do {
            let (parameters, body) = try Parser.parseLambda(text)
            let lambda = Lambda(parameters: parameters, body: Compiler(registry: registry).compile(body))
            lambdas.withLock { $0[text] = lambda }
            return lambda
        } catch {
            logOnce(.error, "lambda '\(text)': \(error)")
            return nil
        }
    }
}
