/// One lexical unit of VQL. Comments and whitespace never become tokens.
public struct Token: Sendable, Equatable {
    /// What kind of token this is; keywords are recognised case-insensitively.
    public enum Kind: Sendable, Equatable {
        case identifier(String)
        /// A `backtick quoted` identifier: may hold any character except a backtick.
        case quotedIdentifier(String)
        case integer(Int64)
        case float(Double)
        /// A string literal's decoded bytes and how it was quoted (kept for the canonical printer).
        case string([UInt8], quote: QuoteStyle, raw: String)
        case keyword(Keyword)
        case symbol(Symbol)
        case end
    }

    public var kind: Kind
    public var range: SourceRange
    /// The exact source text of the token.
    public var text: String
}

/// How a string literal was written; the canonical printer keeps the original style.
public enum QuoteStyle: Sendable, Equatable {
    case single, double, triple
}

/// VQL's reserved words. Everything else that looks like a word is an identifier.
public enum Keyword: String, Sendable, CaseIterable {
    case select = "SELECT", from = "FROM", `where` = "WHERE", group = "GROUP", by = "BY"
    case order = "ORDER", desc = "DESC", asc = "ASC", limit = "LIMIT", `let` = "LET", `as` = "AS"
    case and = "AND", or = "OR", not = "NOT", `in` = "IN", `true` = "TRUE", `false` = "FALSE"
    case null = "NULL", explain = "EXPLAIN"
}

/// Punctuation and operators.
public enum Symbol: String, Sendable, CaseIterable {
    case lparen = "(", rparen = ")", lbracket = "[", rbracket = "]", lbrace = "{", rbrace = "}"
    case comma = ",", dot = ".", colon = ":", semicolon = ";"
    case equal = "=", equalEqual = "==", notEqual = "!=", lessGreater = "<>", less = "<"
    case lessEqual = "<=", greater = ">", greaterEqual = ">=", regexMatch = "=~"
    case plus = "+", minus = "-", star = "*", slash = "/", percent = "%"
    case doubleStar = "**", pipePipe = "||", ampAmp = "&&", arrow = "=>"
}
