import VQL

/// A rule's `condition:` compiled to a tree over its search names: and, or, not, parentheses,
/// `1 of NAME*`, `all of NAME*`, `1 of them`, `all of them`. Aggregations (`| count() …`) were
/// dropped from Sigma in favour of correlation rules and are refused with that reason.
indirect enum SigmaCondition: Equatable {
    case search(String)
    case and([SigmaCondition])
    case or([SigmaCondition])
    case not(SigmaCondition)
    /// `1 of …` (any) or `all of …` over these searches.
    case anyOf([String])
    case allOf([String])

    static let maxDepth = 64

    static func parse(_ text: String, searches: [String]) throws -> SigmaCondition {
        var parser = Parser(tokens: try tokenize(text), searches: searches.sorted(), text: text)
        let condition = try parser.expression(depth: 0)
        if parser.position < parser.tokens.count {
            throw SigmaRule.Problem(description: "condition '\(text)': unexpected '\(parser.tokens[parser.position])'")
        }
        return condition
    }

    func evaluate(_ search: (String) -> Bool) -> Bool {
        switch self {
        case .search(let name): return search(name)
        case .and(let parts): return parts.allSatisfy { $0.evaluate(search) }
        case .or(let parts): return parts.contains { $0.evaluate(search) }
        case .not(let inner): return !inner.evaluate(search)
        case .anyOf(let names): return names.contains { search($0) }
        case .allOf(let names): return !names.isEmpty && names.allSatisfy { search($0) }
        }
    }

    static func tokenize(_ text: String) throws -> [String] {
        var tokens: [String] = []
        var current = ""
        for c in text {
            if c == "(" || c == ")" || c.isWhitespace {
                if !current.isEmpty { tokens.append(current); current = "" }
                if !c.isWhitespace { tokens.append(String(c)) }
            } else if c == "|" {
                throw SigmaRule.Problem(description: "condition '\(text)': aggregations ('|') are not supported; use a correlation rule")
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    /// Recursive descent with a depth limit: hostile rules cannot exhaust the stack.
    struct Parser {
        let tokens: [String]
        let searches: [String]
        let text: String
        var position = 0

        init(tokens: [String], searches: [String], text: String) {
            self.tokens = tokens
            self.searches = searches
            self.text = text
        }

        func problem(_ message: String) -> SigmaRule.Problem {
            SigmaRule.Problem(description: "condition '\(text)': \(message)")
        }

        var peek: String? { position < tokens.count ? tokens[position].lowercased() : nil }

        mutating func expression(depth: Int) throws -> SigmaCondition {
            guard depth < SigmaCondition.maxDepth else { throw problem("nested more than \(SigmaCondition.maxDepth) levels") }
            var parts = [try conjunction(depth: depth)]
            while peek == "or" {
                position += 1
                parts.append(try conjunction(depth: depth))
            }
            return parts.count == 1 ? parts[0] : .or(parts)
        }

        mutating func conjunction(depth: Int) throws -> SigmaCondition {
            var parts = [try negation(depth: depth)]
            while peek == "and" {
                position += 1
                parts.append(try negation(depth: depth))
            }
            return parts.count == 1 ? parts[0] : .and(parts)
        }

        mutating func negation(depth: Int) throws -> SigmaCondition {
            guard depth < SigmaCondition.maxDepth else { throw problem("nested more than \(SigmaCondition.maxDepth) levels") }
            if peek == "not" {
                position += 1
                return .not(try negation(depth: depth + 1))
            }
            return try primary(depth: depth)
        }

        mutating func primary(depth: Int) throws -> SigmaCondition {
            guard let token = peek else { throw problem("ends too early") }
            if token == "(" {
                position += 1
                let inner = try expression(depth: depth + 1)
                guard peek == ")" else { throw problem("missing ')'") }
                position += 1
                return inner
            }
            if token == ")" || token == "and" || token == "or" { throw problem("unexpected '\(token)'") }
            if position + 1 < tokens.count, tokens[position + 1].lowercased() == "of" {
                let quantifier = token
                position += 2
                guard let target = position < tokens.count ? tokens[position] : nil else { throw problem("'of' needs a target") }
                position += 1
                let names = try expand(target)
                switch quantifier {
                case "all": return .allOf(names)
                case "1", "any": return .anyOf(names)
                default: throw problem("'\(quantifier) of' is not supported (use '1 of' or 'all of')")
                }
            }
            let name = tokens[position]
            position += 1
            guard searches.contains(name) else {
                var message = "no search named '\(name)'"
                if let suggestion = NameSuggester.closest(to: name, in: searches) { message += " (did you mean '\(suggestion)'?)" }
                throw problem(message)
            }
            return .search(name)
        }

        /// `them` (every search not starting with "_") or a name pattern with `*` wildcards.
        func expand(_ target: String) throws -> [String] {
            if target.lowercased() == "them" { return searches.filter { !$0.hasPrefix("_") } }
            let pieces = target.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
            let names = searches.filter { SigmaCondition.wildcard(pieces, matches: $0) }
            guard !names.isEmpty else { throw problem("no search matches '\(target)'") }
            return names
        }
    }

    /// `sel*`-style name patterns: the pieces between stars appear in order.
    static func wildcard(_ pieces: [String], matches name: String) -> Bool {
        guard pieces.count > 1 else { return pieces.first == name }
        guard let first = pieces.first, let last = pieces.last, name.hasPrefix(first) else { return false }
        var rest = Substring(name.dropFirst(first.count))
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let range = rest.range(of: piece) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.hasSuffix(last) && rest.count >= last.count
    }
}
