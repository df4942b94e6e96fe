/// The ordered list of column names shared by every row a plugin or projection produces, so a
/// row carries values only. Small schemas are scanned; large ones use a hash index.
public final class Schema: Sendable {
    public let names: [String]
    private let index: [String: Int]?
    /// Host rows accept member names in any case (Velociraptor's Linux.Sys.Pslist writes MemoryInfo.rss).
    public let caseInsensitiveFallback: Bool

    public init(_ names: [String], caseInsensitiveFallback: Bool = false) {
        self.names = names
        self.caseInsensitiveFallback = caseInsensitiveFallback
        if names.count > 8 {
            var index: [String: Int] = [:]
            for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
            self.index = index
        } else {
            self.index = nil
        }
    }

    public static let empty = Schema([])

    @inline(__always)
    public func slot(of name: String) -> Int? {
        if let index {
            if let i = index[name] { return i }
        } else {
            for i in 0..<names.count where names[i] == name { return i }
        }
        if caseInsensitiveFallback {
            let lowered = name.lowercased()
            for i in 0..<names.count where names[i].lowercased() == lowered { return i }
        }
        return nil
    }

    public func appending(_ name: String) -> Schema {
        Schema(names + [name], caseInsensitiveFallback: caseInsensitiveFallback)
    }
}

/// An ordered dictionary: VQL rows and `dict()` values. Key order is kept (output columns keep
/// their order); equality ignores order.
public struct Dict: Sendable {
    public private(set) var schema: Schema
    public private(set) var values: [Value]

    public init() {
        self.schema = .empty
        self.values = []
    }

    public init(schema: Schema, values: [Value]) {
        self.schema = schema
        self.values = values
    }

    /// A later pair with the same key replaces the earlier one's value in its place. One schema
    /// is made for the whole dict (setting keys one by one makes one per key).
    public init(_ pairs: [(String, Value)]) {
        var names: [String] = []
        var values: [Value] = []
        names.reserveCapacity(pairs.count)
        values.reserveCapacity(pairs.count)
        var positions: [String: Int]? = pairs.count > 16 ? [:] : nil
        for (k, v) in pairs {
            let existing: Int?
            if let positions { existing = positions[k] } else { existing = names.firstIndex(of: k) }
            if let i = existing {
                values[i] = v
            } else {
                positions?[k] = names.count
                names.append(k)
                values.append(v)
            }
        }
        self.init(schema: Schema(names), values: values)
    }

    public var keys: [String] { schema.names }
    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }

    public subscript(key: String) -> Value? {
        get {
            guard let slot = schema.slot(of: key) else { return nil }
            return values[slot]
        }
        set {
            if let slot = schema.names.firstIndex(of: key) {
                if let newValue {
                    values[slot] = newValue
                } else {
                    var names = schema.names
                    names.remove(at: slot)
                    values.remove(at: slot)
                    schema = Schema(names, caseInsensitiveFallback: schema.caseInsensitiveFallback)
                }
            } else if let newValue {
                schema = schema.appending(key)
                values.append(newValue)
            }
        }
    }

    /// Pairs in order.
    public var pairs: [(String, Value)] { Array(zip(schema.names, values)) }

    /// This dict with `other`'s keys set over it (new keys appended in `other`'s order).
    public func merging(_ other: Dict) -> Dict {
        var result = self
        for (k, v) in other.pairs { result[k] = v }
        return result
    }
}
