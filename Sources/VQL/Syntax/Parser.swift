import Synchronization

/// Node ids for lambdas parsed at run time: far above any query's ids, unique per lambda.
private let lambdaIDs = Atomic<Int>(1 << 40)

/// Recursive-descent parser following grammar/vql.ebnf. It builds the AST only: it never looks
/// at the plugin or function registry (names are bound later).
public struct Parser {
    private var tokens: [Token]
    private var index = 0
    private var nextID: Int
    /// How deep the parser has recursed (parentheses, brackets, braces, NOT, unary minus, SELECTs).
    private var nesting = 0

    /// Most levels of nesting a text may have. Every later stage (binder, compiler, evaluator,
    /// printer) recurses over the tree too: the limits keep all of them far from the end of a
    /// thread's stack, whatever text arrives (an agent runs what the server sends it).
    public static let maxNesting = 100
    /// Most levels an expression tree may have, long chains of operators (`a + b + c …`) included.
    public static let maxDepth = 500

    /// Parses a whole VQL text: zero or more statements separated by whitespace (or `;`).
    public static func parse(_ text: String) throws(Diagnostic) -> [Statement] {
        var parser = try Parser(text: text)
        return try parser.parseStatements()
    }

    /// Parses one expression (used for lambdas and `--env` values).
    public static func parseExpression(_ text: String, idBase: Int = 1_000_000) throws(Diagnostic) -> Expression {
        var parser = try Parser(text: text, idBase: idBase)
        let expression = try parser.parseExpression()
        try parser.expectEnd()
        return expression
    }

    /// Parses a lambda written as a string: `x => x.Size > 10` or `(a, b) => a + b`.
    public static func parseLambda(_ text: String) throws(Diagnostic) -> (parameters: [String], body: Expression) {
        let base = lambdaIDs.add(100_000, ordering: .relaxed).newValue
        var parser = try Parser(text: text, idBase: base)
        var parameters: [String] = []
        if parser.check(.symbol(.lparen)) {
            parser.index += 1
            while !parser.check(.symbol(.rparen)) {
                parameters.append(try parser.parseName("a lambda parameter").0)
                if !parser.accept(.symbol(.comma)) { break }
            }
            try parser.expect(.symbol(.rparen), "')'")
        } else {
            parameters.append(try parser.parseName("a lambda parameter").0)
        }
        try parser.expect(.symbol(.arrow), "'=>'")
        let body = try parser.parseExpression()
        try parser.expectEnd()
        return (parameters, body)
    }

    init(text: String, idBase: Int = 1) throws(Diagnostic) {
        self.tokens = try Lexer.tokenize(text)
        self.nextID = idBase
    }

    /// Keywords that may also be used as plain names where an expression or a name is expected.
    static let keywordsUsableAsNames: Set<Keyword> = [.group, .order, .by, .desc, .asc, .limit]

    // MARK: - Token helpers

    private var current: Token { tokens[index] }

    private func check(_ kind: Token.Kind) -> Bool { current.kind == kind }

    private func checkKeyword(_ keyword: Keyword) -> Bool { current.kind == .keyword(keyword) }

    private mutating func accept(_ kind: Token.Kind) -> Bool {
        if check(kind) {
            index += 1
            return true
        }
        return false
    }

    /// A new node, refused when the tree under it is deeper than `maxDepth`.
    private mutating func node(_ kind: ExpressionKind, range: SourceRange) throws(Diagnostic) -> Expression {
        let expression = Expression(kind, range: range, id: makeID())
        guard expression.depth <= Self.maxDepth else {
            throw Diagnostic(.syntax, "expression more than \(Self.maxDepth) levels deep (a chain of operators that long cannot be evaluated)", range: range)
        }
        return expression
    }

    /// One level deeper; refused past `maxNesting`.
    private mutating func enter() throws(Diagnostic) {
        nesting += 1
        guard nesting <= Self.maxNesting else {
            throw Diagnostic(.syntax, "nested more than \(Self.maxNesting) levels deep (parentheses, brackets, braces, NOT or sub-queries)", range: current.range)
        }
    }

    private mutating func makeID() -> Int {
        nextID += 1
        return nextID
    }

    private func describe(_ token: Token) -> String {
        token.kind == .end ? "end of query" : "'\(token.text)'"
    }

    private func error(expected: String) -> Diagnostic {
        Diagnostic(.syntax, "expected \(expected), found \(describe(current))", range: current.range)
    }

    private mutating func expect(_ kind: Token.Kind, _ what: String) throws(Diagnostic) {
        guard accept(kind) else { throw error(expected: what) }
    }

    private mutating func expectEnd() throws(Diagnostic) {
        if current.kind != .end { throw error(expected: "end of expression") }
    }

    private func range(from start: SourcePosition) -> SourceRange {
        let end = index > 0 ? tokens[index - 1].range.end : start
        return SourceRange(start: start, end: end)
    }

    /// An identifier, a `quoted` identifier, or a keyword used as a name (after `.`, as an argument name).
    private mutating func parseName(_ what: String, allowKeywords: Bool = false) throws(Diagnostic) -> (String, Bool) {
        switch current.kind {
        case .identifier(let name):
            index += 1
            return (name, false)
        case .quotedIdentifier(let name):
            index += 1
            return (name, true)
        case .keyword where allowKeywords:
            let text = current.text
            index += 1
            return (text, false)
        default:
            throw error(expected: what)
        }
    }

    // MARK: - Statements

    mutating func parseStatements() throws(Diagnostic) -> [Statement] {
        var statements: [Statement] = []
        while true {
            while accept(.symbol(.semicolon)) {}
            if current.kind == .end { return statements }
            statements.append(try parseStatement())
        }
    }

    private mutating func parseStatement() throws(Diagnostic) -> Statement {
        switch current.kind {
        case .keyword(.select):
            return .select(try parseSelect())
        case .keyword(.let):
            return .let(try parseLet())
        case .keyword(.explain):
            index += 1
            guard checkKeyword(.select) else { throw error(expected: "SELECT after EXPLAIN") }
            return .explain(try parseSelect())
        default:
            throw error(expected: "SELECT, LET or EXPLAIN")
        }
    }

    private mutating func parseLet() throws(Diagnostic) -> LetStatement {
        let start = current.range.start
        try expect(.keyword(.let), "LET")
        let name: String
        if case .keyword(let k) = current.kind, Parser.keywordsUsableAsNames.contains(k) {
            name = current.text
            index += 1
        } else {
            (name, _) = try parseName("a name after LET")
        }
        var parameters: [LetParameter]?
        if accept(.symbol(.lparen)) {
            var list: [LetParameter] = []
            while !check(.symbol(.rparen)) {
                let (param, _) = try parseName("a parameter name")
                var defaultValue: Expression?
                if accept(.symbol(.equal)) { defaultValue = try parseExpression() }
                list.append(LetParameter(name: param, defaultValue: defaultValue))
                if !accept(.symbol(.comma)) { break }
            }
            try expect(.symbol(.rparen), "',' or ')' after the parameters")
            parameters = list
        }
        let materialized: Bool
        if accept(.symbol(.equal)) {
            materialized = false
        } else if accept(.symbol(.lessEqual)) {
            materialized = true
        } else {
            throw error(expected: "'=' or '<=' after LET \(name)")
        }
        let body: LetBody
        if checkKeyword(.select) {
            body = .select(try parseSelect())
        } else {
            body = .expression(try parseExpression())
        }
        return LetStatement(
            name: name, parameters: parameters, materialized: materialized, body: body, range: range(from: start))
    }

    mutating func parseSelect() throws(Diagnostic) -> SelectStatement {
        try enter()
        defer { nesting -= 1 }
        let start = current.range.start
        try expect(.keyword(.select), "SELECT")
        var columns: [SelectColumn] = []
        repeat {
            if check(.symbol(.star)) {
                columns.append(.star(current.range))
                index += 1
            } else {
                let expression = try parseExpression()
                var alias: String?
                var quoted = false
                if accept(.keyword(.as)) {
                    (alias, quoted) = try parseName("a column name after AS", allowKeywords: true)
                }
                columns.append(.expression(expression, alias: alias, aliasQuoted: quoted))
            }
        } while accept(.symbol(.comma))
        var from: PluginCall?
        if accept(.keyword(.from)) {
            from = try parsePluginCall()
        }
        var whereClause: Expression?
        if accept(.keyword(.where)) {
            whereClause = try parseExpression()
        }
        var groupBy: [Expression] = []
        if accept(.keyword(.group)) {
            try expect(.keyword(.by), "BY after GROUP")
            repeat { groupBy.append(try parseExpression()) } while accept(.symbol(.comma))
        }
        var orderBy: [OrderTerm] = []
        if accept(.keyword(.order)) {
            try expect(.keyword(.by), "BY after ORDER")
            repeat {
                let expression = try parseExpression()
                var descending = false
                if accept(.keyword(.desc)) {
                    descending = true
                } else {
                    _ = accept(.keyword(.asc))
                }
                orderBy.append(OrderTerm(expression: expression, descending: descending))
            } while accept(.symbol(.comma))
        }
        var limit: Int64?
        if accept(.keyword(.limit)) {
            guard case .integer(let n) = current.kind else { throw error(expected: "a number after LIMIT") }
            index += 1
            limit = n
        }
        return SelectStatement(
            columns: columns, from: from, whereClause: whereClause, groupBy: groupBy, orderBy: orderBy,
            limit: limit, range: range(from: start), id: makeID())
    }

    private mutating func parsePluginCall() throws(Diagnostic) -> PluginCall {
        let start = current.range.start
        var (name, _) = try parseName("a plugin name after FROM")
        while accept(.symbol(.dot)) {
            let (part, _) = try parseName("a name after '.'", allowKeywords: true)
            name += "." + part
        }
        var args: [CallArgument] = []
        var hasParentheses = false
        if accept(.symbol(.lparen)) {
            hasParentheses = true
            args = try parseArguments()
        }
        return PluginCall(name: name, args: args, hasParentheses: hasParentheses, range: range(from: start))
    }

    /// Arguments after '(' up to and including ')'.
    private mutating func parseArguments() throws(Diagnostic) -> [CallArgument] {
        var args: [CallArgument] = []
        while !check(.symbol(.rparen)) {
            let start = current.range.start
            if accept(.symbol(.doubleStar)) {
                let value = try parseExpression()
                args.append(CallArgument(kind: .unpack, value: value, range: range(from: start)))
            } else {
                let (name, quoted) = try parseName("an argument name (arguments are written name=value)", allowKeywords: true)
                try expect(.symbol(.equal), "'=' after argument name '\(name)'")
                let value: Expression
                if checkKeyword(.select) {
                    let selectStart = current.range.start
                    let select = try parseSelect()
                    value = try node(.subquery(select), range: range(from: selectStart))
                } else {
                    value = try parseExpression()
                }
                args.append(CallArgument(kind: .named(name, quoted: quoted), value: value, range: range(from: start)))
            }
            if !accept(.symbol(.comma)) { break }
        }
        try expect(.symbol(.rparen), "',' or ')' in the argument list")
        return args
    }

    // MARK: - Expressions (loosest first: AND, OR, NOT, comparison, + -, * /, unary, postfix)

    mutating func parseExpression() throws(Diagnostic) -> Expression {
        try enter()
        defer { nesting -= 1 }
        return try parseAnd()
    }

    private mutating func parseAnd() throws(Diagnostic) -> Expression {
        var left = try parseOr()
        while true {
            let op: BinaryOperator
            if checkKeyword(.and) {
                op = .and
            } else if check(.symbol(.ampAmp)) {
                op = .valueAnd
            } else {
                return left
            }
            let text = current.text
            index += 1
            let right = try parseOr()
            left = try binary(op, left, right, text: text)
        }
    }

    private mutating func parseOr() throws(Diagnostic) -> Expression {
        var left = try parseNot()
        while true {
            let op: BinaryOperator
            if checkKeyword(.or) {
                op = .or
            } else if check(.symbol(.pipePipe)) {
                op = .valueOr
            } else {
                return left
            }
            let text = current.text
            index += 1
            let right = try parseNot()
            left = try binary(op, left, right, text: text)
        }
    }

    private mutating func binary(_ op: BinaryOperator, _ left: Expression, _ right: Expression, text: String) throws(Diagnostic) -> Expression {
        try node(.binary(op, left, right, text: text), range: SourceRange(start: left.range.start, end: right.range.end))
    }

    private mutating func parseNot() throws(Diagnostic) -> Expression {
        if checkKeyword(.not) {
            let start = current.range.start
            index += 1
            try enter()
            defer { nesting -= 1 }
            let operand = try parseNot()
            return try node(.not(operand), range: range(from: start))
        }
        return try parseComparison()
    }

    private mutating func parseComparison() throws(Diagnostic) -> Expression {
        let left = try parseAdditive()
        let op: BinaryOperator
        switch current.kind {
        case .symbol(.equal), .symbol(.equalEqual): op = .equal
        case .symbol(.notEqual), .symbol(.lessGreater): op = .notEqual
        case .symbol(.less): op = .less
        case .symbol(.lessEqual): op = .lessEqual
        case .symbol(.greater): op = .greater
        case .symbol(.greaterEqual): op = .greaterEqual
        case .symbol(.regexMatch): op = .regexMatch
        case .keyword(.in): op = .in
        default: return left
        }
        let text = current.text
        index += 1
        let right = try parseAdditive()
        return try binary(op, left, right, text: text)
    }

    private mutating func parseAdditive() throws(Diagnostic) -> Expression {
        var left = try parseMultiplicative()
        while true {
            let op: BinaryOperator
            switch current.kind {
            case .symbol(.plus): op = .add
            case .symbol(.minus): op = .subtract
            default: return left
            }
            let text = current.text
            index += 1
            let right = try parseMultiplicative()
            left = try binary(op, left, right, text: text)
        }
    }

    private mutating func parseMultiplicative() throws(Diagnostic) -> Expression {
        var left = try parseUnary()
        while true {
            let op: BinaryOperator
            switch current.kind {
            case .symbol(.star): op = .multiply
            case .symbol(.slash): op = .divide
            case .symbol(.percent): op = .modulo
            default: return left
            }
            let text = current.text
            index += 1
            let right = try parseUnary()
            left = try binary(op, left, right, text: text)
        }
    }

    private mutating func parseUnary() throws(Diagnostic) -> Expression {
        if check(.symbol(.minus)) {
            let start = current.range.start
            index += 1
            try enter()
            defer { nesting -= 1 }
            let operand = try parseUnary()
            // Fold negative number literals so that -1 is an integer, as the lexer of VQL does.
            switch operand.kind {
            case .integer(let n, let text) where operand.range.start.offset == start.offset + 1:
                return try node(.integer(0 &- n, text: "-" + text), range: range(from: start))
            case .float(let d, let text) where operand.range.start.offset == start.offset + 1:
                return try node(.float(-d, text: "-" + text), range: range(from: start))
            default:
                return try node(.negate(operand), range: range(from: start))
            }
        }
        return try parsePostfix()
    }

    private mutating func parsePostfix() throws(Diagnostic) -> Expression {
        var expression = try parsePrimary()
        while true {
            let start = expression.range.start
            if accept(.symbol(.dot)) {
                let (name, quoted) = try parseName("a member name after '.'", allowKeywords: true)
                if check(.symbol(.lparen)), let dotted = dottedName(expression) {
                    index += 1
                    let args = try parseArguments()
                    expression = try node(.call(name: dotted + "." + name, args: args), range: range(from: start))
                } else {
                    expression = try node(.member(expression, name, quoted: quoted), range: range(from: start))
                }
            } else if accept(.symbol(.lbracket)) {
                var lower: Expression?
                if !check(.symbol(.colon)) { lower = try parseExpression() }
                if accept(.symbol(.colon)) {
                    var upper: Expression?
                    if !check(.symbol(.rbracket)) { upper = try parseExpression() }
                    try expect(.symbol(.rbracket), "']'")
                    expression = try node(.slice(expression, lower, upper), range: range(from: start))
                } else {
                    try expect(.symbol(.rbracket), "']' or ':'")
                    guard let lower else { throw error(expected: "an index") }
                    expression = try node(.index(expression, lower), range: range(from: start))
                }
            } else {
                return expression
            }
        }
    }

    /// `a.b.c` as a dotted name when every part is a plain symbol (for calls such as `Artifact.X()`).
    private func dottedName(_ expression: Expression) -> String? {
        switch expression.kind {
        case .symbol(let name, false): return name
        case .member(let base, let name, false): return dottedName(base).map { $0 + "." + name }
        default: return nil
        }
    }

    private mutating func parsePrimary() throws(Diagnostic) -> Expression {
        let token = current
        let start = token.range.start
        switch token.kind {
        case .integer(let n):
            index += 1
            return try node(.integer(n, text: token.text), range: token.range)
        case .float(let d):
            index += 1
            return try node(.float(d, text: token.text), range: token.range)
        case .string(let bytes, _, let raw):
            index += 1
            return try node(.string(bytes, raw: raw), range: token.range)
        case .keyword(.true):
            index += 1
            return try node(.bool(true, text: token.text), range: token.range)
        case .keyword(.false):
            index += 1
            return try node(.bool(false, text: token.text), range: token.range)
        case .keyword(.null):
            index += 1
            return try node(.null(text: token.text), range: token.range)
        case .identifier(let name), .quotedIdentifier(let name):
            index += 1
            let quoted: Bool
            if case .quotedIdentifier = token.kind { quoted = true } else { quoted = false }
            if !quoted, accept(.symbol(.lparen)) {
                let args = try parseArguments()
                return try node(.call(name: name, args: args), range: range(from: start))
            }
            return try node(.symbol(name, quoted: quoted), range: token.range)
        case .keyword(let keyword) where Parser.keywordsUsableAsNames.contains(keyword):
            // Velociraptor's artifacts use columns such as `Group`; in expression position these
            // clause keywords cannot start a clause, so they read as names.
            index += 1
            if accept(.symbol(.lparen)) {
                let args = try parseArguments()
                return try node(.call(name: token.text, args: args), range: range(from: start))
            }
            return try node(.symbol(token.text, quoted: false), range: token.range)
        case .symbol(.lbracket):
            index += 1
            var items: [Expression] = []
            while !check(.symbol(.rbracket)) {
                items.append(try parseExpression())
                if !accept(.symbol(.comma)) { break }
            }
            try expect(.symbol(.rbracket), "',' or ']' in the list")
            return try node(.list(items), range: range(from: start))
        case .symbol(.lparen):
            index += 1
            let first = try parseExpression()
            if accept(.symbol(.rparen)) {
                return try node(.parenthesized(first), range: range(from: start))
            }
            try expect(.symbol(.comma), "',' or ')'")
            var items = [first]
            var trailingComma = true
            while !check(.symbol(.rparen)) {
                items.append(try parseExpression())
                trailingComma = false
                if accept(.symbol(.comma)) {
                    trailingComma = true
                } else {
                    break
                }
            }
            try expect(.symbol(.rparen), "',' or ')' in the tuple")
            return try node(.tuple(items, trailingComma: trailingComma && items.count == 1), range: range(from: start))
        case .symbol(.lbrace):
            index += 1
            let select = try parseSelect()
            try expect(.symbol(.rbrace), "'}' to close the sub-query")
            return try node(.subquery(select), range: range(from: start))
        default:
            throw error(expected: "an expression")
        }
    }
}
