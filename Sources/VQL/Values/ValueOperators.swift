import Foundation

/// VQL's operators on values: arithmetic, `IN`, member access, indexing and slicing.
extension Value {
    /// `+`: numbers add, strings join, lists (and queries) concatenate, a scalar appends to a list;
    /// NULL or mismatched types give NULL.
    public static func add(_ a: Value, _ b: Value) -> Value {
        switch (a, b) {
        case (.int(let x), .int(let y)): return .int(x &+ y)
        case (.double(let x), .double(let y)): return .double(x + y)
        case (.int(let x), .double(let y)): return .double(Double(x) + y)
        case (.double(let x), .int(let y)): return .double(x + Double(y))
        case (.string(let x), .string(let y)): return .string(x + y)
        case (.lazy, _): return add(a.reduced(), b)
        case (_, .lazy): return add(a, b.reduced())
        case (.object(let path as OSPath), _):
            if let joined = path.adding(b) { return joined }
            return add(path.scalar ?? .null, b)
        case (.object(let o), _) where o.scalar != nil: return add(o.scalar ?? .null, b)
        case (_, .object(let o)) where o.scalar != nil: return add(a, o.scalar ?? .null)
        case (.string, .bytes), (.bytes, .string), (.bytes, .bytes):
            return .string(bytes: (a.byteValue ?? []) + (b.byteValue ?? []))
        case (.timestamp(let t), .int), (.timestamp(let t), .double):
            return .timestamp(Timestamp(seconds: t.seconds + (b.doubleValue ?? 0)))
        case (.list(let x), .list(let y)): return .list(x + y)
        case (.dict(let x), .dict(let y)): return .dict(x.merging(y))
        case (.list, .query), (.query, .list), (.query, .query):
            return .list((a.listElements ?? []) + (b.listElements ?? []))
        case (.list(let x), _): return .list(x + [b.materialized()])
        case (.query, _): return .list((a.listElements ?? []) + [b.materialized()])
        case (.null, _): return .null
        case (_, .list(let y)) where a.isScalar && !a.isNull: return .list([a] + y)
        default: return .null
        }
    }

    public static func arithmetic(_ op: BinaryOperator, _ a: Value, _ b: Value) -> Value {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            switch op {
            case .subtract: return .int(x &- y)
            case .multiply: return .int(x &* y)
            case .divide:
                if y == 0 { return .null }
                if x % y == 0 { return .int(x / y) }
                return .double(Double(x) / Double(y))
            case .modulo: return y == 0 ? .null : .int(x % y)
            default: return .null
            }
        case (.lazy, _): return arithmetic(op, a.reduced(), b)
        case (_, .lazy): return arithmetic(op, a, b.reduced())
        case (.list, .list), (.list, .query), (.query, .list), (.query, .query):
            // List difference: the left elements that are not in the right list.
            guard op == .subtract, let x = a.listElements, let y = b.listElements else { return .null }
            return .list(x.filter { item in !y.contains { vqlEqual($0, item) } })
        case (.timestamp(let t), .timestamp(let u)) where op == .subtract:
            return .double(t.seconds - u.seconds)
        case (.timestamp(let t), .int), (.timestamp(let t), .double):
            guard op == .subtract, let y = b.doubleValue else { return .null }
            return .timestamp(Timestamp(seconds: t.seconds - y))
        case (.int, .double), (.double, .int), (.double, .double):
            guard let x = a.doubleValue, let y = b.doubleValue else { return .null }
            switch op {
            case .subtract: return .double(x - y)
            case .multiply: return .double(x * y)
            case .divide: return y == 0 ? .null : .double(x / y)
            case .modulo: return y == 0 ? .null : .double(x.truncatingRemainder(dividingBy: y))
            default: return .null
            }
        default: return .null
        }
    }

    /// A dict's `@Keys`, `@Values`, `@Len`, `@String` and `@Items` (read when no key has that name).
    static func dictMetadata(_ d: Dict, _ name: String) -> Value {
        switch name {
        case "@Keys": return .list(d.keys.map { .string($0) })
        case "@Values": return .list(d.values)
        case "@Len": return .from(d.count)
        case "@String": return .string(JSONWriter.string(Value.dict(d).materialized()))
        case "@Items":
            let schema = Schema(["Key", "Value"])
            return .list(d.pairs.map { .dict(Dict(schema: schema, values: [.string($0.0), $0.1])) })
        default: return .null
        }
    }

    public func negated() -> Value {
        switch self {
        case .int(let i): return .int(0 &- i)
        case .double(let d): return .double(-d)
        case .lazy: return reduced().negated()
        default: return .null
        }
    }

    /// `a IN b`: membership in a list or query, substring of a string, key of a dict.
    public static func contains(_ container: Value, _ item: Value) -> Bool {
        switch container {
        case .list(let items): return items.contains { vqlEqual($0, item) }
        case .query: return (container.listElements ?? []).contains { vqlEqual($0, item) }
        case .object(let o) where o.scalar != nil:
            return contains(o.scalar ?? .null, item)
        case .string(let s):
            guard let needle = item.reduced().stringValue else { return false }
            return needle.isEmpty || s.contains(needle)
        case .bytes(let b):
            guard let needle = item.reduced().byteValue else { return false }
            return needle.isEmpty || b.firstRange(of: needle) != nil
        case .dict(let d):
            guard let key = item.reduced().stringValue else { return false }
            return d[key] != nil
        case .object(let o):
            guard let key = item.reduced().stringValue else { return false }
            return o.member(key) != nil
        case .lazy: return contains(container.reduced(), item)
        default: return false
        }
    }

    /// `a.b`: a dict key or object member; over a list or query it maps over the elements.
    public func member(_ name: String) -> Value {
        switch self {
        case .dict(let d): return d[name] ?? (name.hasPrefix("@") ? Value.dictMetadata(d, name) : .null)
        case .object(let o): return o.member(name) ?? .null
        case .list(let items): return .list(items.map { $0.member(name) })
        case .query: return .list((listElements ?? []).map { $0.member(name) })
        case .lazy: return reduced().member(name)
        case .timestamp(let t): return Timestamps.member(t, name)
        default: return .null
        }
    }

    /// `a[i]`: list element (negative from the end), byte of a string, dict key.
    public func index(_ key: Value) -> Value {
        switch (self, key) {
        case (.lazy, _): return reduced().index(key)
        case (_, .lazy): return index(key.reduced())
        case (.list(let items), .int(let i)):
            let j = i < 0 ? Int64(items.count) + i : i
            return j >= 0 && j < items.count ? items[Int(j)] : .null
        case (.query, .int):
            return Value.list(listElements ?? []).index(key)
        case (.string, .int(let i)), (.bytes, .int(let i)):
            let bytes = byteValue ?? []
            let j = i < 0 ? Int64(bytes.count) + i : i
            return j >= 0 && j < bytes.count ? .int(Int64(bytes[Int(j)])) : .null
        case (.dict, .string(let k)), (.object, .string(let k)): return member(k)
        case (.object(let o), .int(let i)):
            if let element = o.element(at: Int(i)) { return element }
            return o.scalar.map { $0.index(key) } ?? .null
        case (_, .double(let d)): return index(.int(Int64(d)))
        default: return .null
        }
    }

    /// `a[lo:hi]` with Python's rules (negative bounds count from the end; bounds clamp).
    public func slice(_ lower: Value?, _ upper: Value?) -> Value {
        func bounds(_ count: Int) -> Range<Int> {
            func resolve(_ v: Value?, _ fallback: Int) -> Int {
                guard let v, let i = v.reduced().intValue else { return fallback }
                let j = i < 0 ? Int64(count) + i : i
                return Int(min(max(j, 0), Int64(count)))
            }
            let lo = resolve(lower, 0)
            let hi = resolve(upper, count)
            return lo < hi ? lo..<hi : lo..<lo
        }
        switch self {
        case .lazy: return reduced().slice(lower, upper)
        case .list(let items): return .list(Array(items[bounds(items.count)]))
        case .query: return Value.list(listElements ?? []).slice(lower, upper)
        case .string, .bytes:
            let bytes = byteValue ?? []
            return .string(bytes: Array(bytes[bounds(bytes.count)]))
        case .object(let o):
            if let first = o.element(at: 0) {
                var items = [first]
                var i = 1
                while let next = o.element(at: i) {
                    items.append(next)
                    i += 1
                }
                return Value.list(items).slice(lower, upper)
            }
            return o.scalar?.slice(lower, upper) ?? .null
        default: return .null
        }
    }
}

extension Array where Element == UInt8 {
    func firstRange(of needle: [UInt8]) -> Range<Int>? {
        guard !needle.isEmpty, needle.count <= count else { return nil }
        for i in 0...(count - needle.count) where self[i] == needle[0] {
            if Array(self[i..<(i + needle.count)]) == needle { return i..<(i + needle.count) }
        }
        return nil
    }
}
