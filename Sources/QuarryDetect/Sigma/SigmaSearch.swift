import Foundation
import VQL

/// One named search of a rule's detection section: field tests (a map ANDs its fields; a list of
/// maps ORs them) or keywords (any one found in any of the event's text values).
enum SigmaSearch {
    case fields([[SigmaFieldTest]])
    case keywords([SigmaTextPattern])

    init(_ body: Value) throws {
        switch body {
        case .dict(let map):
            self = .fields([try map.pairs.map { try SigmaFieldTest(key: $0.0, value: $0.1) }])
        case .list(let items) where !items.isEmpty && items.allSatisfy({ if case .dict = $0 { true } else { false } }):
            self = .fields(try items.map { item in
                guard case .dict(let map) = item else { return [] }
                return try map.pairs.map { try SigmaFieldTest(key: $0.0, value: $0.1) }
            })
        case .list(let items):
            self = .keywords(try items.flatMap { try SigmaTextPattern.keyword($0) })
        case .string, .int, .double, .bool:
            self = .keywords(try SigmaTextPattern.keyword(body))
        default:
            throw SigmaRule.Problem(description: "a search must be a map, a list of maps or a list of keywords")
        }
    }

    func matches(_ event: SigmaEvent) -> Bool {
        switch self {
        case .fields(let alternatives):
            return alternatives.contains { tests in tests.allSatisfy { $0.matches(event) } }
        case .keywords(let patterns):
            let texts = event.allTexts
            return patterns.contains { pattern in texts.contains { pattern.matches($0) } }
        }
    }
}

/// `Field|modifier|…: value or [values]` — one field of a search map.
struct SigmaFieldTest {
    let field: String
    /// `|all`: every value must match (otherwise any one).
    let requireAll: Bool
    let tests: [SigmaValueTest]

    init(key: String, value: Value) throws {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        field = parts.first ?? ""
        let modifiers = parts.dropFirst().map { $0.lowercased() }
        requireAll = modifiers.contains("all")
        let values: [Value]
        if case .list(let items) = value { values = items.isEmpty ? [.null] : items } else { values = [value] }
        tests = try values.map { try SigmaValueTest($0, modifiers: Array(modifiers)) }
    }

    func matches(_ event: SigmaEvent) -> Bool {
        let value = event.field(field)
        if requireAll { return tests.allSatisfy { $0.matches(value, event: event) } }
        return tests.contains { $0.matches(value, event: event) }
    }
}

/// One value of a field test, compiled with the field's modifiers.
enum SigmaValueTest {
    /// `null`: the field is missing, null or empty.
    case isNull
    case exists(Bool)
    /// Any of these text patterns matches one of the field's texts.
    case text([SigmaTextPattern])
    case compare(op: String, Double)
    case cidr([IPNetwork])
    /// `|fieldref`: equal to another field of the same event.
    case fieldReference(String, caseSensitive: Bool)
    /// `|vql`: a VQL lambda over the field's value.
    case lambda(String)

    static let known: Set<String> = [
        "all", "contains", "startswith", "endswith", "re", "i", "m", "s", "cased", "base64", "base64offset", "wide",
        "utf16le", "utf16be", "utf16", "windash", "cidr", "lt", "lte", "gt", "gte", "exists", "fieldref", "vql", "expand",
    ]

    init(_ value: Value, modifiers: [String]) throws {
        for modifier in modifiers where !SigmaValueTest.known.contains(modifier) {
            throw SigmaRule.Problem(description: "unknown modifier '\(modifier)'")
        }
        let set = Set(modifiers)
        if set.contains("exists") {
            self = .exists(value.isTruthy || value.stringValue?.lowercased() == "true")
            return
        }
        if set.contains("vql") {
            guard let text = value.stringValue else { throw SigmaRule.Problem(description: "|vql needs a lambda text") }
            self = .lambda(text)
            return
        }
        if case .null = value {
            self = .isNull
            return
        }
        for op in ["lt", "lte", "gt", "gte"] where set.contains(op) {
            guard let number = value.doubleValue ?? value.stringValue.flatMap(Double.init) else {
                throw SigmaRule.Problem(description: "|\(op) needs a number")
            }
            self = .compare(op: op, number)
            return
        }
        let text: String
        switch value {
        case .string(let s): text = s
        case .int(let i): text = String(i)
        case .double(let d): text = JSONWriter.plainDouble(d)
        case .bool(let b): text = b ? "true" : "false"
        default: throw SigmaRule.Problem(description: "values must be text, numbers, booleans or null")
        }
        if set.contains("cidr") {
            let ranges = try [text].map { range -> IPNetwork in
                guard let parsed = IPNetwork(range) else { throw SigmaRule.Problem(description: "bad CIDR '\(range)'") }
                return parsed
            }
            self = .cidr(ranges)
            return
        }
        if set.contains("fieldref") {
            self = .fieldReference(text, caseSensitive: set.contains("cased"))
            return
        }
        self = .text(try SigmaTextPattern.compile(text, modifiers: set))
    }

    func matches(_ value: Value?, event: SigmaEvent) -> Bool {
        switch self {
        case .isNull:
            guard let value else { return true }
            switch value {
            case .null: return true
            case .string(let s): return s.isEmpty
            default: return false
            }
        case .exists(let wanted):
            let present = value.map { !$0.isNull } ?? false
            return present == wanted
        case .text(let patterns):
            let texts = SigmaEvent.texts(of: value)
            return patterns.contains { pattern in texts.contains { pattern.matches($0) } }
        case .compare(let op, let bound):
            return SigmaEvent.numbers(of: value).contains { n in
                switch op {
                case "lt": return n < bound
                case "lte": return n <= bound
                case "gt": return n > bound
                default: return n >= bound
                }
            }
        case .cidr(let ranges):
            return SigmaEvent.texts(of: value).contains { text in
                guard let address = IPAddress.parse(text) else { return false }
                return ranges.contains { $0.contains(address) }
            }
        case .fieldReference(let other, let caseSensitive):
            let mine = SigmaEvent.texts(of: value)
            let theirs = SigmaEvent.texts(of: event.field(other))
            if caseSensitive { return mine.contains { theirs.contains($0) } }
            let lowered = Set(theirs.map { $0.lowercased() })
            return mine.contains { lowered.contains($0.lowercased()) }
        case .lambda(let text):
            return event.callLambda(text, value ?? .null)
        }
    }
}

/// Text matching with Sigma's rules: case-insensitive unless `|cased`, `*` and `?` wildcards
/// (a backslash escapes them), or a regular expression with `|re`.
enum SigmaTextPattern {
    case exact(String, caseSensitive: Bool)
    case contains(String, caseSensitive: Bool)
    case prefix(String, caseSensitive: Bool)
    case suffix(String, caseSensitive: Bool)
    case regex(CompiledRegex)

    /// A keyword: found anywhere in a text.
    static func keyword(_ value: Value) throws -> [SigmaTextPattern] {
        guard let text = value.stringValue ?? value.intValue.map(String.init) else {
            throw SigmaRule.Problem(description: "keywords must be text")
        }
        return try compile(text, modifiers: ["contains"])
    }

    static func compile(_ text: String, modifiers: Set<String>) throws -> [SigmaTextPattern] {
        let cased = modifiers.contains("cased")
        if modifiers.contains("re") {
            var flags = ""
            if modifiers.contains("m") { flags += "m" }
            if modifiers.contains("s") { flags += "s" }
            let pattern = flags.isEmpty ? text : "(?\(flags))" + text
            do {
                return [.regex(try CompiledRegex(pattern, caseInsensitive: modifiers.contains("i")))]
            } catch {
                throw SigmaRule.Problem(description: "\(error)")
            }
        }
        // Encodings turn the value into literal text; wildcards are not read inside them.
        var variants: [[SigmaGlobToken]]
        var windash = [text]
        if modifiers.contains("windash") { windash = SigmaEncoding.windashVariants(text) }
        let encodes = modifiers.contains("base64") || modifiers.contains("base64offset")
        if encodes {
            var encoded: [String] = []
            for variant in windash {
                let bytes = SigmaEncoding.encode(variant, modifiers: modifiers)
                if modifiers.contains("base64offset") {
                    encoded.append(contentsOf: SigmaEncoding.base64Offsets(bytes))
                } else {
                    encoded.append(Data(bytes).base64EncodedString())
                }
            }
            variants = encoded.map { $0.map { SigmaGlobToken.literal($0) } }
        } else {
            variants = windash.map(SigmaGlobToken.tokens)
        }
        let containsLike = modifiers.contains("contains") || modifiers.contains("base64offset")
        return try variants.map { tokens in
            var tokens = tokens
            if containsLike || modifiers.contains("endswith") { tokens.insert(.any, at: 0) }
            if containsLike || modifiers.contains("startswith") { tokens.append(.any) }
            return try from(tokens, caseSensitive: cased || encodes)
        }
    }

    /// The cheapest matcher for a token run: plain comparisons unless wildcards sit inside.
    static func from(_ tokens: [SigmaGlobToken], caseSensitive: Bool) throws -> SigmaTextPattern {
        var body = tokens[...]
        var leading = false, trailing = false
        while body.first == .any { leading = true; body = body.dropFirst() }
        while body.last == .any { trailing = true; body = body.dropLast() }
        if body.allSatisfy({ if case .literal = $0 { true } else { false } }) {
            var literal = String(body.compactMap { if case .literal(let c) = $0 { c } else { nil } })
            if !caseSensitive { literal = literal.lowercased() }
            switch (leading, trailing) {
            case (true, true): return .contains(literal, caseSensitive: caseSensitive)
            case (true, false): return .suffix(literal, caseSensitive: caseSensitive)
            case (false, true): return .prefix(literal, caseSensitive: caseSensitive)
            case (false, false): return .exact(literal, caseSensitive: caseSensitive)
            }
        }
        var pattern = "^(?s)"
        for token in tokens {
            switch token {
            case .any: pattern += ".*"
            case .one: pattern += "."
            case .literal(let c): pattern += SigmaGlobToken.escape(c)
            }
        }
        pattern += "$"
        return .regex(try CompiledRegex(pattern, caseInsensitive: !caseSensitive))
    }

    func matches(_ text: String) -> Bool {
        switch self {
        case .exact(let s, let cased): return (cased ? text : text.lowercased()) == s
        case .contains(let s, let cased): return s.isEmpty || (cased ? text : text.lowercased()).contains(s)
        case .prefix(let s, let cased): return (cased ? text : text.lowercased()).hasPrefix(s)
        case .suffix(let s, let cased): return (cased ? text : text.lowercased()).hasSuffix(s)
        case .regex(let r): return r.matches(text)
        }
    }
}

/// A Sigma value read as a wildcard pattern.
enum SigmaGlobToken: Equatable {
    case literal(Character)
    case any
    case one

    static func tokens(_ text: String) -> [SigmaGlobToken] {
        var result: [SigmaGlobToken] = []
        var escaped = false
        for c in text {
            if escaped {
                // A backslash only escapes the wildcards and itself; elsewhere it is literal.
                if c != "*" && c != "?" && c != "\\" { result.append(.literal("\\")) }
                result.append(.literal(c))
                escaped = false
                continue
            }
            switch c {
            case "\\": escaped = true
            case "*": result.append(.any)
            case "?": result.append(.one)
            default: result.append(.literal(c))
            }
        }
        if escaped { result.append(.literal("\\")) }
        return result
    }

    static func escape(_ c: Character) -> String {
        "\\^$.|?*+()[]{}/".contains(c) ? "\\" + String(c) : String(c)
    }
}
