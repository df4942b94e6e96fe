/// A pull-based stream of rows. Plugins return one; the engine pulls only as many rows as it
/// needs, so `LIMIT 1` stops a plugin after its first row. A row is a dict or a host object; any
/// other value is a one-column row named `_value`.
public protocol RowCursor: AnyObject {
    /// The next row, or nil at the end. Throws when the query is cancelled or fails as a whole.
    func next() throws -> Value?
    /// Releases resources early (LIMIT reached, query cancelled). Called at most once.
    func close()
}

extension RowCursor {
    public func close() {}

    /// Pulls every remaining row (used by ORDER BY, GROUP BY and `LET x <=`).
    public func drain(limit: Int = .max) throws -> [Value] {
        var rows: [Value] = []
        while rows.count < limit, let row = try next() { rows.append(row) }
        return rows
    }
}

/// Rows from an array already in memory.
public final class ArrayCursor: RowCursor {
    private let rows: [Value]
    private var position = 0

    public init(_ rows: [Value]) { self.rows = rows }

    public func next() -> Value? {
        guard position < rows.count else { return nil }
        defer { position += 1 }
        return rows[position]
    }
}

/// Rows produced by a closure on demand; the closure returns nil at the end.
public final class GeneratorCursor: RowCursor {
    private var produce: (() throws -> Value?)?
    private let onClose: (() -> Void)?

    public init(onClose: (() -> Void)? = nil, _ produce: @escaping () throws -> Value?) {
        self.produce = produce
        self.onClose = onClose
    }

    public func next() throws -> Value? {
        guard let produce else { return nil }
        if let row = try produce() { return row }
        self.produce = nil
        return nil
    }

    public func close() {
        produce = nil
        onClose?()
    }
}

/// The error a cursor throws when its query has been cancelled (Ctrl-C, timeout, collection cancel).
public struct QueryCancelled: Error, Sendable, CustomStringConvertible {
    public init() {}
    public var description: String { "query cancelled" }
}
