/// A compiled expression node. Expressions compile once into a tree of these; evaluating one is a
/// virtual call per node (no AST walk, no closure-context traffic on the per-row path).
class Evaluator: @unchecked Sendable {
    func evaluate(_ env: Env) -> Value { .null }

    /// The value's truthiness; conditions override it to skip building a bool value.
    func test(_ env: Env) -> Bool { evaluate(env).isTruthy }

    @inline(__always)
    final func callAsFunction(_ env: Env) -> Value { evaluate(env) }

    /// The value when this node is a constant (for folding and fast paths).
    var constant: Value? { nil }
}

/// An evaluator written as a closure, for the rarer node kinds.
final class ClosureEvaluator: Evaluator, @unchecked Sendable {
    private let body: (Env) -> Value
    init(_ body: @escaping (Env) -> Value) { self.body = body }
    override func evaluate(_ env: Env) -> Value { body(env) }
}

final class ConstantEvaluator: Evaluator, @unchecked Sendable {
    let value: Value
    /// A string constant's bytes, computed once (format strings, patterns).
    let bytes: [UInt8]?
    init(_ value: Value) {
        self.value = value
        self.bytes = value.byteValue
    }
    override func evaluate(_ env: Env) -> Value { value }
    override var constant: Value? { value }
}

/// A name: the row's column, then variables up the scope chain; NULL (logged) when missing.
final class SymbolEvaluator: Evaluator, @unchecked Sendable {
    let name: String
    /// `_value` on a scalar row (range(), foreach over a list) is the row itself.
    private let isValueColumn: Bool
    init(_ name: String) {
        self.name = name
        self.isValueColumn = name == "_value"
    }
    override func evaluate(_ env: Env) -> Value {
        if isValueColumn, let row = env.row {
            switch row {
            case .dict, .object, .null: break
            default: return row
            }
        }
        if let v = env.lookup(name) { return v }
        env.context.logOnce(.debug, "Symbol \(name) not found")
        return .null
    }
}

/// A SELECT alias read from WHERE or GROUP BY: the projection frame's cached column.
final class AliasEvaluator: Evaluator, @unchecked Sendable {
    let index: Int
    let name: String
    init(index: Int, name: String) {
        self.index = index
        self.name = name
    }
    override func evaluate(_ env: Env) -> Value {
        var level: Env? = env
        while let current = level {
            if let frame = current.projection { return frame.value(index, in: current) }
            level = current.parent
        }
        return env.lookup(name) ?? .null
    }
}

final class MemberEvaluator: Evaluator, @unchecked Sendable {
    let base: Evaluator
    let name: String
    init(_ base: Evaluator, _ name: String) {
        self.base = base
        self.name = name
    }
    override func evaluate(_ env: Env) -> Value { base.evaluate(env).member(name) }
}

/// `=`, `!=`, `<`, `<=`, `>`, `>=` with an integer fast path.
final class ComparisonEvaluator: Evaluator, @unchecked Sendable {
    enum Kind { case equal, notEqual, less, lessEqual, greater, greaterEqual }
    let kind: Kind
    let left: Evaluator
    let right: Evaluator
    /// An integer right-hand constant (`_value > 5000000`): compared without evaluating a node.
    let rightInt: Int64?

    init(_ kind: Kind, _ left: Evaluator, _ right: Evaluator) {
        self.kind = kind
        self.left = left
        self.right = right
        if case .int(let i)? = right.constant { rightInt = i } else { rightInt = nil }
    }

    override func test(_ env: Env) -> Bool {
        if let y = rightInt, case .int(let x) = left.evaluate(env) {
            switch kind {
            case .equal: return x == y
            case .notEqual: return x != y
            case .less: return x < y
            case .lessEqual: return x <= y
            case .greater: return x > y
            case .greaterEqual: return x >= y
            }
        }
        return evaluate(env).isTruthy
    }

    override func evaluate(_ env: Env) -> Value {
        let a = left.evaluate(env)
        let b = right.evaluate(env)
        if case .int(let x) = a, case .int(let y) = b {
            switch kind {
            case .equal: return .bool(x == y)
            case .notEqual: return .bool(x != y)
            case .less: return .bool(x < y)
            case .lessEqual: return .bool(x <= y)
            case .greater: return .bool(x > y)
            case .greaterEqual: return .bool(x >= y)
            }
        }
        switch kind {
        case .equal: return .bool(Value.vqlEqual(a, b))
        case .notEqual: return .bool(!Value.vqlEqual(a, b))
        case .less: return .bool((Value.vqlCompare(a, b) ?? 0) < 0)
        case .lessEqual: return .bool(Value.vqlCompare(a, b).map { $0 <= 0 } ?? false)
        case .greater: return .bool((Value.vqlCompare(a, b) ?? 0) > 0)
        case .greaterEqual: return .bool(Value.vqlCompare(a, b).map { $0 >= 0 } ?? false)
        }
    }
}

/// AND / OR: short-circuit, always a bool.
final class LogicEvaluator: Evaluator, @unchecked Sendable {
    let isAnd: Bool
    let left: Evaluator
    let right: Evaluator
    init(isAnd: Bool, _ left: Evaluator, _ right: Evaluator) {
        self.isAnd = isAnd
        self.left = left
        self.right = right
    }
    override func test(_ env: Env) -> Bool {
        isAnd ? (left.test(env) && right.test(env)) : (left.test(env) || right.test(env))
    }
    override func evaluate(_ env: Env) -> Value { .bool(test(env)) }
}

final class RegexEvaluator: Evaluator, @unchecked Sendable {
    let left: Evaluator
    let regex: CompiledRegex
    init(_ left: Evaluator, _ regex: CompiledRegex) {
        self.left = left
        self.regex = regex
    }
    override func test(_ env: Env) -> Bool {
        regex.matchesEverything || Compiler.regexMatch(left.evaluate(env), regex)
    }
    override func evaluate(_ env: Env) -> Value { .bool(test(env)) }
}

/// A call of a built-in function: arguments stay unevaluated until the function reads them.
final class FunctionCallEvaluator: Evaluator, @unchecked Sendable {
    let site: CallSite
    let call: @Sendable (CallContext) -> Value
    init(site: CallSite, call: @escaping @Sendable (CallContext) -> Value) {
        self.site = site
        self.call = call
    }
    override func evaluate(_ env: Env) -> Value {
        if env.context.remapping.isDisabled(site.name) {
            env.context.logOnce(.error, "\(site.name): disabled in this session by a remapping")
            return .null
        }
        if let mocked = env.context.mocks.take(.function, site.name) { return mocked ?? .null }
        return call(CallContext(env: env, site: site))
    }
}

/// `count()` on the per-row path: one in-place increment.
final class CountEvaluator: Evaluator, @unchecked Sendable {
    let id: Int
    init(id: Int) { self.id = id }
    override func evaluate(_ env: Env) -> Value {
        let id = self.id
        return .int(env.aggregatesRef._withUnsafeGuaranteedRef { $0.increment(id) })
    }
}

/// `x AND TRUE` after folding: the truthiness of the other side, as a bool.
final class TruthEvaluator: Evaluator, @unchecked Sendable {
    let inner: Evaluator
    init(_ inner: Evaluator) { self.inner = inner }
    override func test(_ env: Env) -> Bool { inner.test(env) }
    override func evaluate(_ env: Env) -> Value { .bool(inner.test(env)) }
}
