/// An expression node. Every node keeps its source range (for diagnostics) and a unique id
/// (aggregate functions such as count() keep their state per call site, keyed by this id).
public struct Expression: Sendable {
    public var kind: ExpressionKind
    public var range: SourceRange
    public var id: Int
    /// Levels of the tree under and including this node (1 for a leaf). Everything that walks
    /// expressions recurses, so the parser refuses trees deeper than `Parser.maxDepth`.
    public let depth: Int

    public init(_ kind: ExpressionKind, range: SourceRange, id: Int) {
        self.kind = kind
        self.range = range
        self.id = id
        self.depth = 1 + kind.childDepth
    }
}

extension ExpressionKind {
    /// The depth of the deepest child (0 for a leaf).
    var childDepth: Int {
        switch self {
        case .null, .bool, .integer, .float, .string, .symbol: return 0
        case .member(let e, _, _), .parenthesized(let e), .negate(let e), .not(let e): return e.depth
        case .index(let a, let b), .binary(_, let a, let b, _): return max(a.depth, b.depth)
        case .slice(let e, let lo, let hi): return max(e.depth, lo?.depth ?? 0, hi?.depth ?? 0)
        case .call(_, let args): return args.reduce(0) { max($0, $1.value.depth) }
        case .list(let items), .tuple(let items, _): return items.reduce(0) { max($0, $1.depth) }
        case .subquery(let select): return select.depth
        }
    }
}

/// Binary operators, from the loosest (AND) to the tightest (`*`), as VQL orders them.
public enum BinaryOperator: String, Sendable {
    case and = "AND", valueAnd = "&&", or = "OR", valueOr = "||"
    case equal = "=", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case regexMatch = "=~", `in` = "IN"
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%"
}

/// One `name=value` argument, or `**dict` unpacking all of a dict's keys as arguments.
public struct CallArgument: Sendable {
    public enum Kind: Sendable {
        case named(String, quoted: Bool)
        case unpack
    }
    public var kind: Kind
    public var value: Expression
    public var range: SourceRange
}

/// The shapes an expression can take.
public indirect enum ExpressionKind: Sendable {
    case null(text: String)
    case bool(Bool, text: String)
    case integer(Int64, text: String)
    case float(Double, text: String)
    case string([UInt8], raw: String)
    /// A name looked up in the current row, then the scope.
    case symbol(String, quoted: Bool)
    /// `base.name`: member access (maps over lists and queries).
    case member(Expression, String, quoted: Bool)
    case index(Expression, Expression)
    case slice(Expression, Expression?, Expression?)
    /// `name(args)`: a built-in function, a LET function, or a stored query called with arguments.
    case call(name: String, args: [CallArgument])
    /// `[a, b]` literal.
    case list([Expression])
    /// `(a, b)` literal; `trailingComma` records `(a, )` for the canonical printer.
    case tuple([Expression], trailingComma: Bool)
    case parenthesized(Expression)
    case subquery(SelectStatement)
    case negate(Expression)
    case not(Expression)
    /// `text` keeps the operator as written (`and`/`AND`) for the canonical printer.
    case binary(BinaryOperator, Expression, Expression, text: String)
}

/// `*`, or an expression with an optional alias.
public enum SelectColumn: Sendable {
    case star(SourceRange)
    case expression(Expression, alias: String?, aliasQuoted: Bool)
}

/// The source of rows after FROM: a plugin, a stored query or a LET function, possibly dotted.
public struct PluginCall: Sendable {
    public var name: String
    public var args: [CallArgument]
    public var hasParentheses: Bool
    public var range: SourceRange
}

/// ORDER BY term.
public struct OrderTerm: Sendable {
    public var expression: Expression
    public var descending: Bool
}

/// A SELECT statement, the heart of VQL.
public struct SelectStatement: Sendable {
    public var columns: [SelectColumn]
    public var from: PluginCall?
    public var whereClause: Expression?
    public var groupBy: [Expression]
    public var orderBy: [OrderTerm]
    public var limit: Int64?
    public var range: SourceRange
    /// Unique id; stored-query invocations key aggregate state by it.
    public var id: Int

    /// Levels of expression tree in the statement (its deepest expression, plus one).
    public var depth: Int {
        var deepest = 0
        for column in columns { if case .expression(let e, _, _) = column { deepest = max(deepest, e.depth) } }
        for arg in from?.args ?? [] { deepest = max(deepest, arg.value.depth) }
        if let w = whereClause { deepest = max(deepest, w.depth) }
        for e in groupBy { deepest = max(deepest, e.depth) }
        for term in orderBy { deepest = max(deepest, term.expression.depth) }
        return deepest + 1
    }
}

/// A parameter of a LET function: `LET F(a, b=2) = …`.
public struct LetParameter: Sendable {
    public var name: String
    public var defaultValue: Expression?
}

/// The right-hand side of a LET.
public enum LetBody: Sendable {
    case expression(Expression)
    case select(SelectStatement)
}

/// `LET name = …` (lazy), `LET name <= …` (materialized now), `LET name(params) = …`.
public struct LetStatement: Sendable {
    public var name: String
    public var parameters: [LetParameter]?
    public var materialized: Bool
    public var body: LetBody
    public var range: SourceRange
}

/// One top-level statement of a VQL text.
public enum Statement: Sendable {
    case select(SelectStatement)
    case `let`(LetStatement)
    case explain(SelectStatement)

    public var range: SourceRange {
        switch self {
        case .select(let s), .explain(let s): return s.range
        case .let(let l): return l.range
        }
    }
}
