/// Turns an AST back into canonical VQL text. Unnamed columns are named by this text, so it
/// reproduces the reference formatter's spacing quirks (two spaces before AND and &&, and two
/// spaces after LIMIT n inside a sub-query brace).
public enum CanonicalPrinter {
    public static func print(_ statement: Statement) -> String {
        switch statement {
        case .select(let select): return print(select)
        case .explain(let select): return "EXPLAIN " + print(select)
        case .let(let l): return print(l)
        }
    }

    public static func print(_ l: LetStatement) -> String {
        var out = "LET " + printName(l.name, usableKeywords: Parser.keywordsUsableAsNames)
        if let parameters = l.parameters {
            out += "(" + parameters.map { p in
                p.defaultValue.map { "\(printName(p.name))=\(print($0))" } ?? printName(p.name)
            }.joined(separator: ", ") + ")"
        }
        out += l.materialized ? " <= " : " = "
        switch l.body {
        case .expression(let e): out += print(e)
        case .select(let s): out += print(s)
        }
        return out
    }

    public static func print(_ select: SelectStatement, inBraces: Bool = false) -> String {
        var out = "SELECT "
        out += select.columns.map { column -> String in
            switch column {
            case .star: return "*"
            case .expression(let e, let alias, let quoted):
                guard let alias else { return print(e) }
                return print(e) + " AS " + (quoted ? "`\(alias)`" : alias)
            }
        }.joined(separator: ", ")
        if let from = select.from {
            out += " FROM " + printDotted(from.name)
            if from.hasParentheses { out += "(" + printArguments(from.args) + ")" }
        }
        if let w = select.whereClause { out += " WHERE " + print(w) }
        if !select.groupBy.isEmpty { out += " GROUP BY " + select.groupBy.map { print($0) }.joined(separator: ", ") }
        if !select.orderBy.isEmpty {
            out += " ORDER BY " + select.orderBy.map { print($0.expression) + ($0.descending ? " DESC" : "") }
                .joined(separator: ", ")
        }
        if let limit = select.limit {
            out += " LIMIT \(limit)"
            if inBraces { out += " " }
        }
        return out
    }

    /// A name, backquoted when it would not lex as a bare name (`LET \`my var\` = …`); keywords
    /// in `usableKeywords` stand bare where the grammar takes them as names.
    static func printName(_ name: String, usableKeywords: Set<Keyword> = []) -> String {
        if Lexer.isBareName(name, keywordsAllowed: false) { return name }
        if let keyword = Keyword(rawValue: name.uppercased()), usableKeywords.contains(keyword) { return name }
        return "`\(name)`"
    }

    /// A dotted plugin or function name with each part backquoted when it would not lex as a bare
    /// name (`FROM D1.\`@Items\``), so the text parses back to the same name.
    /// The name is split on the '.' scalar, as the lexer splits it: split on characters, a dot
    /// followed by a combining mark (`a.\u{5B0}b`) is one grapheme and would stay unsplit.
    /// `usableKeywords` may stand bare as the first part (a call such as `group()`, which the
    /// parser reads as a call; backquoted, the name could not be called).
    static func printDotted(_ name: String, usableKeywords: Set<Keyword> = []) -> String {
        name.unicodeScalars.split(separator: ".", omittingEmptySubsequences: false).enumerated().map { index, scalars in
            let part = String(String.UnicodeScalarView(scalars))
            if index == 0, let keyword = Keyword(rawValue: part.uppercased()), usableKeywords.contains(keyword) { return part }
            return Lexer.isBareName(part, keywordsAllowed: index > 0) ? part : "`\(part)`"
        }.joined(separator: ".")
    }

    static func printArguments(_ args: [CallArgument]) -> String {
        args.map { arg -> String in
            switch arg.kind {
            case .named(let name, let quoted): return (quoted ? "`\(name)`" : name) + "=" + print(arg.value)
            case .unpack: return "**" + print(arg.value)
            }
        }.joined(separator: ", ")
    }

    public static func print(_ e: Expression) -> String {
        switch e.kind {
        case .null(let text): return text.uppercased()
        case .bool(_, let text): return text
        case .integer(_, let text), .float(_, let text): return text
        case .string(_, let raw): return raw
        case .symbol(let name, let quoted): return quoted ? "`\(name)`" : name
        case .member(let base, let name, let quoted): return print(base) + "." + (quoted ? "`\(name)`" : name)
        case .index(let base, let i): return print(base) + "[" + print(i) + "]"
        case .slice(let base, let lower, let upper):
            return print(base) + "[" + (lower.map { print($0) } ?? "") + ":" + (upper.map { print($0) } ?? "") + "]"
        case .call(let name, let args): return printDotted(name, usableKeywords: Parser.keywordsUsableAsNames) + "(" + printArguments(args) + ")"
        case .list(let items): return "[" + items.map { print($0) }.joined(separator: ", ") + "]"
        case .tuple(let items, let trailing):
            return "(" + items.map { print($0) }.joined(separator: ", ") + (trailing ? ", " : "") + ")"
        case .parenthesized(let inner): return "(" + print(inner) + ")"
        case .subquery(let select): return "{ " + print(select, inBraces: true) + " }"
        case .negate(let inner): return "-" + print(inner)
        case .not(let inner): return "NOT " + print(inner)
        case .binary(let op, let left, let right, let text):
            switch op {
            case .and, .valueAnd: return print(left) + "  " + text + " " + print(right)
            case .or, .valueOr: return print(left) + " " + text + " " + print(right)
            case .in: return print(left) + " IN " + print(right)
            default: return print(left) + " " + op.rawValue + " " + print(right)
            }
        }
    }
}
