/// VQL's rules for truthiness, equality, ordering and forcing lazy values, in one place.
extension Value {
    /// Forces a lazy value (repeatedly, if it yields another lazy value).
    @inline(__always)
    public func reduced() -> Value {
        guard case .lazy(let lazy) = self else { return self }
        var value = lazy.force()
        while case .lazy(let inner) = value { value = inner.force() }
        return value
    }

    /// The value as it is written out: lazies forced, stored queries run into lists of rows,
    /// host objects turned into dicts (recursively).
    public func materialized() -> Value {
        switch self {
        case .null, .bool, .int, .double, .string, .bytes, .timestamp: return self
        case .lazy: return reduced().materialized()
        case .query(let q): return .list(q.materialize().map { $0.materialized() })
        case .list(let items):
            if items.allSatisfy({ $0.isScalar }) { return self }
            return .list(items.map { $0.materialized() })
        case .dict(let d):
            if d.values.allSatisfy({ $0.isScalar }) { return self }
            return .dict(Dict(schema: d.schema, values: d.values.map { $0.materialized() }))
        case .object(let o):
            if let scalar = o.scalar { return scalar }
            return Value.dict(o.materialized()).materialized()
        }
    }

    /// Forces lazies and runs stored queries, but keeps host objects (for projected columns).
    /// A late-bound `{ SELECT }` runs in `env`, the scope of the row it lands in.
    @inline(__always)
    func forOutput(in env: Env? = nil) -> Value {
        switch self {
        case .null, .bool, .int, .double, .string, .bytes, .timestamp, .object, .dict: return self
        case .lazy: return reduced().forOutput(in: env)
        case .query(let q):
            let query = (q.lateBound ? env.map { q.rebound(to: $0) } : nil) ?? q
            return .list(query.materialize().map { $0.forOutput(in: env) })
        case .list(let items):
            if items.allSatisfy({ $0.isScalar }) { return self }
            return .list(items.map { $0.forOutput(in: env) })
        }
    }

    var isScalar: Bool {
        switch self {
        case .null, .bool, .int, .double, .string, .bytes, .timestamp: return true
        default: return false
        }
    }

    /// Python-like truthiness: NULL, 0, "", empty list/dict and a query with no rows are false.
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .bytes(let b): return !b.isEmpty
        case .timestamp(let t): return t.nanoseconds != 0 && t != .goZero
        case .list(let l): return !l.isEmpty
        case .dict(let d): return !d.isEmpty
        case .query(let q): return !q.materialize(limit: 1).isEmpty
        case .lazy: return reduced().isTruthy
        case .object: return true
        }
    }

    /// The elements when this value is a sequence: a list, or the rows of a query.
    public var listElements: [Value]? {
        switch self {
        case .list(let l): return l
        case .query(let q): return q.materialize()
        case .lazy: return reduced().listElements
        default: return nil
        }
    }

    /// VQL equality (`=`): numbers by value, strings by content, lists element-wise, dicts ignoring
    /// key order, timestamps with numbers as epoch seconds; a timestamp never equals a string.
    public static func vqlEqual(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        case (.int(let x), .int(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.lazy, _): return vqlEqual(a.reduced(), b)
        case (_, .lazy): return vqlEqual(a, b.reduced())
        case (.int, .double), (.double, .int), (.double, .double),
            (.timestamp, .int), (.timestamp, .double), (.int, .timestamp), (.double, .timestamp),
            (.timestamp, .timestamp):
            return a.doubleValue == b.doubleValue
        case (.bool(let x), .int(let y)), (.int(let y), .bool(let x)): return (x ? 1 : 0) == y
        case (.string, .bytes), (.bytes, .string), (.bytes, .bytes): return a.byteValue == b.byteValue
        case (.list(let x), .list(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { vqlEqual($0, $1) }
        case (.dict(let x), .dict(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in x.pairs {
                guard let w = y[k], vqlEqual(v, w) else { return false }
            }
            return true
        case (.query, _), (_, .query):
            guard let x = a.listElements, let y = b.listElements else { return false }
            return vqlEqual(.list(x), .list(y))
        case (.object(let o as any OrderedHostObject), _): return o.compare(b).map { $0 == 0 } ?? false
        case (_, .object(let o as any OrderedHostObject)): return o.compare(a).map { $0 == 0 } ?? false
        case (.object(let x), .object(let y)) where x.scalar == nil || y.scalar == nil: return x === y
        case (.object(let o), _) where o.scalar != nil: return vqlEqual(o.scalar ?? .null, b)
        case (_, .object(let o)) where o.scalar != nil: return vqlEqual(a, o.scalar ?? .null)
        default: return false
        }
    }

    /// VQL ordering (`<`), or nil when the two values do not compare (then `<` and `>` are false).
    public static func vqlCompare(_ a: Value, _ b: Value) -> Int? {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x > y ? 1 : 0)
        case (.string(let x), .string(let y)):
            return x == y ? 0 : (x.utf8.lexicographicallyPrecedes(y.utf8) ? -1 : 1)
        case (.lazy, _): return vqlCompare(a.reduced(), b)
        case (_, .lazy): return vqlCompare(a, b.reduced())
        case (.int, .double), (.double, .int), (.double, .double), (.timestamp, .int), (.timestamp, .double),
            (.int, .timestamp), (.double, .timestamp), (.timestamp, .timestamp), (.bool, .bool):
            guard let x = a.doubleValue, let y = b.doubleValue else { return nil }
            return x < y ? -1 : (x > y ? 1 : 0)
        case (.string, .bytes), (.bytes, .string), (.bytes, .bytes):
            guard let x = a.byteValue, let y = b.byteValue else { return nil }
            return x == y ? 0 : (x.lexicographicallyPrecedes(y) ? -1 : 1)
        case (.object(let o as any OrderedHostObject), _): return o.compare(b)
        case (_, .object(let o as any OrderedHostObject)): return o.compare(a).map { -$0 }
        case (.object(let o), _) where o.scalar != nil: return vqlCompare(o.scalar ?? .null, b)
        case (_, .object(let o)) where o.scalar != nil: return vqlCompare(a, o.scalar ?? .null)
        case (.timestamp, .string), (.timestamp, .bytes):
            // A time compares with a date string by reading the string as a time.
            guard case .timestamp(let u)? = Timestamps.parse(b) else { return nil }
            return vqlCompare(a, .timestamp(u))
        case (.string, .timestamp), (.bytes, .timestamp):
            guard case .timestamp(let u)? = Timestamps.parse(a) else { return nil }
            return vqlCompare(.timestamp(u), b)
        default: return nil
        }
    }

    /// A total order for ORDER BY: values that do not compare are ordered by type.
    public static func sortOrder(_ a: Value, _ b: Value) -> Bool {
        if let c = vqlCompare(a, b) { return c < 0 }
        return a.typeRank < b.typeRank
    }

    private var typeRank: Int {
        switch self {
        case .null: return 0
        case .bool: return 1
        case .int, .double, .timestamp: return 2
        case .string, .bytes: return 3
        case .list, .query: return 4
        case .dict, .object: return 5
        case .lazy: return 6
        }
    }
}

/// A hashable form of a value for GROUP BY keys and de-duplication (1 and 1.0 are the same key).
enum GroupKey: Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case bytes([UInt8])
    case string(String)
    case composite(String)

    init(_ value: Value) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d):
            if d == d.rounded(), abs(d) < 9e18 { self = .int(Int64(d)) } else { self = .double(d) }
        case .string(let s): self = .string(s)
        case .bytes(let b): self = .bytes(b)
        case .timestamp(let t): self = .int(t.nanoseconds)
        case .lazy: self = GroupKey(value.reduced())
        default: self = .composite(JSONWriter.string(value.materialized()))
        }
    }
}

/// A host object with its own order (semver()): `<`, `>` and `=` ask it rather than its text.
protocol OrderedHostObject: HostObject {
    /// Negative, zero or positive as this object sorts before, with or after `other`; nil when
    /// they do not compare.
    func compare(_ other: Value) -> Int?
}
