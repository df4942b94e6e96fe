/// A position in query text: what diagnostics point at with a caret.
public struct SourcePosition: Sendable, Hashable, CustomStringConvertible {
    /// Byte offset from the start of the text.
    public var offset: Int
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in bytes.
    public var column: Int

    public init(offset: Int, line: Int, column: Int) {
        self.offset = offset
        self.line = line
        self.column = column
    }

    public static let start = SourcePosition(offset: 0, line: 1, column: 1)
    public var description: String { "\(line):\(column)" }
}

/// The span of text a token or AST node came from.
public struct SourceRange: Sendable, Hashable {
    public var start: SourcePosition
    public var end: SourcePosition

    public init(start: SourcePosition, end: SourcePosition) {
        self.start = start
        self.end = end
    }

    public static let none = SourceRange(start: .start, end: .start)
}
