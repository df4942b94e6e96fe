/// A compiled call: the callee's name, the argument names and their compiled values. Made once
/// per call site at compile time; the site's id keys aggregate state.
public final class CallSite: @unchecked Sendable {
    public let name: String
    public let id: Int
    public let range: SourceRange
    let names: [String]
    let evaluators: [Evaluator]
    /// The same evaluators unretained (kept alive by `evaluators`) for argument reads per row.
    let unretained: [Unmanaged<Evaluator>]
    let hasUnpack: Bool
    /// For the plugin in a SELECT's FROM: what the SELECT's WHERE requires of every row it keeps
    /// (`ColumnConstraints`). Empty elsewhere.
    public internal(set) var constraints: [ColumnConstraint] = []

    init(name: String, id: Int, range: SourceRange, names: [String], evaluators: [Evaluator]) {
        self.name = name
        self.id = id
        self.range = range
        self.names = names
        self.evaluators = evaluators
        self.unretained = evaluators.map { Unmanaged.passUnretained($0) }
        self.hasUnpack = names.contains("**")
    }

    /// Checks the argument names against a declaration: unknown and missing required arguments.
    func problems(against arguments: [ArgumentSpec], strict: Bool) -> String? {
        guard !hasUnpack else { return nil }
        if strict {
            for name in names where !arguments.contains(where: { $0.name == name }) {
                var message = "\(self.name)(): unexpected argument '\(name)'"
                if let suggestion = NameSuggester.closest(to: name, in: arguments.map(\.name)) {
                    message += " (did you mean '\(suggestion)'?)"
                }
                return message
            }
        }
        for spec in arguments where spec.required && !names.contains(spec.name) {
            return "\(self.name)(): missing required argument '\(spec.name)'"
        }
        return nil
    }
}

/// What a plugin or function sees when called: its arguments (evaluated on demand, so `if()`
/// never evaluates the branch it does not take), the scope, and its aggregate state.
public struct CallContext {
    public let env: Env
    public let site: CallSite

    public init(env: Env, site: CallSite) {
        self.env = env
        self.site = site
    }

    public var context: QueryContext { env.context }
    public var name: String { site.name }
    /// What the enclosing SELECT's WHERE requires of the rows (plugins only; see `ColumnConstraint`).
    public var constraints: [ColumnConstraint] { site.constraints }

    /// Arguments in call order, `**dict` unpacked.
    public var argumentNames: [String] {
        guard site.hasUnpack else { return site.names }
        return allArguments().map(\.0)
    }

    public func has(_ name: String) -> Bool {
        if site.names.contains(name) { return true }
        return site.hasUnpack && allArguments().contains { $0.0 == name }
    }

    /// The argument's value as evaluated (lazy LET references not yet forced). Nil when absent.
    public func raw(_ name: String) -> Value? {
        let env = self.env
        for i in 0..<site.names.count where site.names[i] == name {
            return site.unretained[i]._withUnsafeGuaranteedRef { $0.evaluate(env) }
        }
        if site.hasUnpack {
            return allArguments().last { $0.0 == name }?.1
        }
        return nil
    }

    /// The argument's value with lazies forced. Nil when absent.
    @inline(__always)
    public func value(_ name: String) -> Value? {
        raw(name)?.reduced()
    }

    /// Every argument, in order, with `**dict` expanded (not forced).
    public func allArguments() -> [(String, Value)] {
        var result: [(String, Value)] = []
        for i in 0..<site.names.count {
            let value = site.evaluators[i](env)
            if site.names[i] == "**" {
                switch value.reduced() {
                case .dict(let d): result.append(contentsOf: d.pairs)
                case .object(let o): result.append(contentsOf: o.materialized().pairs)
                default: log(.warning, "\(site.name)(): ** needs a dict")
                }
            } else {
                result.append((site.names[i], value))
            }
        }
        return result
    }

    public func string(_ name: String) -> String? {
        guard let v = value(name) else { return nil }
        switch v {
        case .null: return nil
        case .string(let s): return s
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .int(let i): return String(i)
        case .double(let d): return JSONWriter.plainDouble(d)
        case .bool(let b): return b ? "true" : "false"
        case .timestamp(let t): return JSONWriter.rfc3339(t)
        case .object(let o) where o.scalar != nil: return o.scalar?.stringValue
        default: return JSONWriter.string(v)
        }
    }

    public func bytes(_ name: String) -> [UInt8]? {
        for i in 0..<site.names.count where site.names[i] == name {
            if let constant = site.evaluators[i] as? ConstantEvaluator, let bytes = constant.bytes { return bytes }
            break
        }
        guard let v = value(name) else { return nil }
        if let b = v.byteValue { return b }
        return string(name).map { Array($0.utf8) }
    }

    public func int(_ name: String) -> Int64? { value(name)?.intValue }

    public func double(_ name: String) -> Double? {
        guard let v = value(name) else { return nil }
        if case .string(let s) = v { return Double(s) }
        return v.doubleValue
    }

    public func bool(_ name: String) -> Bool? {
        guard let v = value(name) else { return nil }
        if case .null = v { return nil }
        return v.isTruthy
    }

    /// A string or a list of strings, as a list.
    public func strings(_ name: String) -> [String]? {
        guard let v = value(name) else { return nil }
        switch v {
        case .null: return nil
        case .list, .query:
            return (v.listElements ?? []).compactMap { item -> String? in
                let item = item.reduced()
                if let s = item.stringValue { return s }
                if case .dict(let d) = item, d.count == 1 { return d.values[0].stringValue }
                if case .null = item { return nil }
                return JSONWriter.string(item.materialized())
            }
        default: return string(name).map { [$0] }
        }
    }

    /// The argument as a stream of rows: a query, a list, a dict, or a single value.
    public func rows(_ name: String) throws -> RowCursor? {
        guard let v = raw(name) else { return nil }
        return try Rows.cursor(for: v)
    }

    /// A lambda argument, written as a string such as "x => x.Size > 10".
    public func lambda(_ name: String) -> Lambda? {
        guard let v = value(name) else { return nil }
        if case .string(let text) = v { return context.lambda(text) }
        return nil
    }

    public func log(_ level: LogLevel, _ message: String) { context.log(level, message) }

    /// This call site's aggregate state in the current aggregate context.
    public var state: Value? {
        get { env.aggregates[site.id] }
        nonmutating set { env.aggregates[site.id] = newValue }
    }

    /// Checks for cancellation (plugins call this in long loops).
    public func checkCancelled() throws { try context.cancellation.check() }
}

/// Converting values into row streams, shared by FROM, foreach(row=) and plugins taking queries.
public enum Rows {
    public static func cursor(for value: Value) throws -> RowCursor {
        switch value {
        case .query(let q): return try q.cursor()
        case .lazy: return try cursor(for: value.reduced())
        case .list(let items): return ArrayCursor(items.filter { !$0.isNull })
        case .null: return ArrayCursor([])
        case .object(let spilled as SpilledRows): return ArrayCursor(spilled.rows)
        default: return ArrayCursor([value])
        }
    }
}

/// A lambda compiled from a string (`x => x.Size > 10`): parameters bound in a child scope.
public final class Lambda: @unchecked Sendable {
    public let parameters: [String]
    let body: Evaluator

    init(parameters: [String], body: Evaluator) {
        self.parameters = parameters
        self.body = body
    }

    /// Calls the lambda with positional arguments in `env` (which must be the caller's scope).
    public func call(_ arguments: [Value], in env: Env) -> Value {
        var variables: [String: Binding] = [:]
        for (name, value) in zip(parameters, arguments) { variables[name] = .value(value) }
        let child = env.child(row: nil, variables: variables)
        return body(child).reduced()
    }
}
