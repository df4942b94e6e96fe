import VQL

/// What Tab offers in the REPL: plugin names after FROM, function names, argument names inside a
/// call (`glob(gl` → `globs=`), LET variables, artifact names after `Artifact.`, and the column
/// names of the last result.
struct Completion {
    let registry: Registry
    let variables: [String]
    let lastColumns: [String]
    let artifactNames: [String]

    private static let keywords = ["SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT", "LET", "EXPLAIN", "DESC", "AND", "OR", "NOT", "AS"]

    static func isWordCharacter(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_" || c == "."
    }

    func complete(_ before: String) -> (wordStart: Int, candidates: [String]) {
        let chars = Array(before)
        var start = chars.count
        while start > 0 && Completion.isWordCharacter(chars[start - 1]) { start -= 1 }
        let word = String(chars[start...])
        let candidates = candidateList(chars: chars, wordStart: start, word: word)
        let matching = candidates.filter { $0.lowercased().hasPrefix(word.lowercased()) }
        var unique: [String] = []
        for c in matching where !unique.contains(c) { unique.append(c) }
        return (start, unique.sorted())
    }

    private func candidateList(chars: [Character], wordStart: Int, word: String) -> [String] {
        if word.hasPrefix("Artifact.") { return artifactNames.map { "Artifact." + $0 + "(" } }
        // Inside a call at an argument-name position?
        if let callee = calleeAtArgumentPosition(chars, wordStart) {
            if let plugin = registry.plugin(callee) { return plugin.arguments.map { $0.name + "=" } }
            if let function = registry.function(callee) { return function.arguments.map { $0.name + "=" } }
        }
        let previous = previousWord(chars, wordStart).uppercased()
        if previous == "FROM" {
            return registry.plugins.keys.map { $0 + "(" } + variables
        }
        return registry.functions.keys.map { $0 + "(" } + variables + lastColumns + Completion.keywords
    }

    private func previousWord(_ chars: [Character], _ end: Int) -> String {
        var i = end
        while i > 0 && chars[i - 1].isWhitespace { i -= 1 }
        var j = i
        while j > 0 && Completion.isWordCharacter(chars[j - 1]) { j -= 1 }
        return String(chars[j..<i])
    }

    /// The callee when the word starts right after '(' or ',' of an unclosed call.
    private func calleeAtArgumentPosition(_ chars: [Character], _ wordStart: Int) -> String? {
        var i = wordStart
        while i > 0 && chars[i - 1].isWhitespace { i -= 1 }
        guard i > 0, chars[i - 1] == "(" || chars[i - 1] == "," else { return nil }
        // Walk back to the unclosed '(' (skipping nested brackets and quoted text).
        var depth = 0
        var k = i - 1
        var quote: Character?
        while k >= 0 {
            let c = chars[k]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == ")" || c == "]" || c == "}" {
                depth += 1
            } else if c == "(" || c == "[" || c == "{" {
                if depth == 0 {
                    guard c == "(" else { return nil }
                    var e = k
                    while e > 0 && chars[e - 1].isWhitespace { e -= 1 }
                    var s = e
                    while s > 0 && Completion.isWordCharacter(chars[s - 1]) { s -= 1 }
                    return s < e ? String(chars[s..<e]) : nil
                }
                depth -= 1
            }
            k -= 1
        }
        return nil
    }
}

/// Decides whether the REPL has a whole statement: brackets and quotes balance and the text
/// parses (a parse error at the very end means "keep reading"). A SELECT without FROM waits for
/// more lines unless the text ends with ';'.
enum StatementCompleteness {
    static func isComplete(_ text: String) -> Bool {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty || trimmed.hasPrefix(".") { return true }
        guard balanced(trimmed) else { return false }
        do {
            let statements = try Parser.parse(trimmed)
            if trimmed.hasSuffix(";") { return true }
            if case .select(let s)? = statements.last, s.from == nil { return false }
            return true
        } catch {
            return !(error.message.hasSuffix("found end of query"))
        }
    }

    /// Quotes, comments and brackets balance.
    static func balanced(_ text: String) -> Bool {
        var depth = 0
        var chars = Array(text.utf8)
        chars.append(0)
        var i = 0
        while i < chars.count - 1 {
            let c = chars[i]
            if c == UInt8(ascii: "'") && i + 2 < chars.count && chars[i + 1] == c && chars[i + 2] == c {
                guard let end = find([c, c, c], in: chars, from: i + 3) else { return false }
                i = end + 3
                continue
            }
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") || c == UInt8(ascii: "`") {
                var j = i + 1
                while j < chars.count - 1 && chars[j] != c {
                    if chars[j] == UInt8(ascii: "\\") && c != UInt8(ascii: "`") { j += 1 }
                    j += 1
                }
                if j >= chars.count - 1 { return false }
                i = j + 1
                continue
            }
            if (c == UInt8(ascii: "-") && chars[i + 1] == c) || (c == UInt8(ascii: "/") && chars[i + 1] == c) {
                while i < chars.count - 1 && chars[i] != 0x0A { i += 1 }
                continue
            }
            if c == UInt8(ascii: "/") && chars[i + 1] == UInt8(ascii: "*") {
                guard let end = find([UInt8(ascii: "*"), UInt8(ascii: "/")], in: chars, from: i + 2) else { return false }
                i = end + 2
                continue
            }
            if c == UInt8(ascii: "(") || c == UInt8(ascii: "[") || c == UInt8(ascii: "{") { depth += 1 }
            if c == UInt8(ascii: ")") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") { depth -= 1 }
            i += 1
        }
        return depth <= 0
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        var i = from
        while i + needle.count <= haystack.count {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}
