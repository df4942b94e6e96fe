/// Every value VQL computes with. Kept small (scalars inline, large payloads behind references)
/// so rows move through the engine without per-value allocation.
public enum Value: @unchecked Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    /// A string that is not valid UTF-8 (binary content, raw file names). Behaves as a string.
    case bytes([UInt8])
    case timestamp(Timestamp)
    case list([Value])
    case dict(Dict)
    /// A query not yet run: `LET X = SELECT …`, `{ SELECT … }` passed as an argument.
    case query(StoredQuery)
    /// An expression not yet evaluated: a reference to `LET X = expr`.
    case lazy(LazyValue)
    /// A host object whose members are computed on demand (a process, a file, the scope).
    case object(any HostObject)

    public static func string(bytes: [UInt8]) -> Value {
        if let s = String(validating: bytes, as: UTF8.self) { return .string(s) }
        return .bytes(bytes)
    }

    public static func from(_ value: Int) -> Value { .int(Int64(value)) }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A short type name for diagnostics and `typeof`.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string, .bytes: return "string"
        case .timestamp: return "timestamp"
        case .list: return "list"
        case .dict: return "dict"
        case .query: return "query"
        case .lazy: return "lazy"
        case .object(let o): return o.typeName
        }
    }

    /// The string content when this value is a string (or binary string); nil otherwise.
    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .object(let o): return o.scalar?.stringValue
        default: return nil
        }
    }

    /// The bytes of a string value.
    public var byteValue: [UInt8]? {
        switch self {
        case .string(let s): return Array(s.utf8)
        case .bytes(let b): return b
        case .object(let o): return o.scalar?.byteValue
        default: return nil
        }
    }

    /// A host object that stands for a scalar, as that scalar; everything else unchanged.
    @inline(__always)
    public var unwrappedScalar: Value {
        if case .object(let o) = self, let s = o.scalar { return s }
        return self
    }

    /// Numeric view (ints, floats, bools and timestamps as epoch seconds).
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        case .timestamp(let t): return t.seconds
        default: return nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.isFinite && d >= -9.2e18 && d <= 9.2e18: return Int64(d)
        case .bool(let b): return b ? 1 : 0
        case .timestamp(let t): return t.nanoseconds / 1_000_000_000
        case .string(let s): return Int64(s.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }
}

/// A point in time (nanoseconds since the Unix epoch, UTC). Compares with numbers as epoch seconds.
public struct Timestamp: Sendable, Hashable, Comparable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    /// Times past what 64-bit nanoseconds hold (before 1678 or after 2262 — a crafted plist date,
    /// a corrupt record) are clamped to the nearest end instead of trapping; NaN is the epoch.
    public init(seconds: Double) {
        let nanoseconds = (seconds * 1e9).rounded()
        if nanoseconds.isNaN {
            self.nanoseconds = 0
        } else if nanoseconds >= 9_223_372_036_854_775_808.0 {
            self.nanoseconds = .max
        } else if nanoseconds < -9_223_372_036_854_775_808.0 {
            self.nanoseconds = .min
        } else {
            self.nanoseconds = Int64(nanoseconds)
        }
    }

    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }
}

/// An object from the host (a process, a file, the live scope) whose members are computed
/// lazily when read. `memberNames` drives `SELECT *` and serialisation.
public protocol HostObject: AnyObject, Sendable {
    var typeName: String { get }
    var memberNames: [String] { get }
    /// The member's value, or nil when there is no such member.
    func member(_ name: String) -> Value?
    /// When the object stands for a scalar (a path stands for its string), that scalar: used by
    /// comparisons, regex, `+`, format() and output. Nil for plain records.
    var scalar: Value? { get }
    /// `object[i]` (a path's components); nil when the object is not indexable.
    func element(at index: Int) -> Value?
}

extension HostObject {
    public var scalar: Value? { nil }
    public func element(at index: Int) -> Value? { nil }

    /// All members in order, for output.
    public func materialized() -> Dict {
        var dict = Dict()
        for name in memberNames {
            dict[name] = member(name) ?? .null
        }
        return dict
    }
}
