/// The query-string language of index_search(), as Bleve's query strings read: clauses split on
/// white space, each `term`, `"a phrase"`, `prefix*`, `field:term`, `field:"phrase"` or a numeric
/// range `field:>N` (>=, <, <=). A leading `+` makes a clause required and `-` excludes; plain
/// clauses are alternatives (a document matches when it satisfies every required clause, no
/// excluded one, and — when there is no required clause — at least one alternative). Pure, so
/// tested without an index.
struct IndexQuery: Equatable {
    enum Occurrence: Equatable { case should, must, mustNot }

    enum Match: Equatable {
        /// Words that must appear (in order, when more than one: a phrase).
        case text(String, prefix: Bool)
        case compare(String, Double)
    }

    struct Clause: Equatable {
        var occurrence: Occurrence
        /// nil searches every field.
        var field: String?
        var match: Match
    }

    var clauses: [Clause]

    /// Why a query string could not be read.
    struct SyntaxError: Error, CustomStringConvertible {
        let description: String
    }

    static let maxClauses = 64

    static func parse(_ text: String) throws -> IndexQuery {
        var clauses: [Clause] = []
        var chars = Array(text)
        var i = 0
        func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }
        /// A bare word (up to white space) or a quoted phrase (backslash escapes the quote).
        func token() throws -> (String, quoted: Bool) {
            if i < chars.count, chars[i] == "\"" {
                i += 1
                var out = ""
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    out.append(chars[i])
                    i += 1
                }
                guard i < chars.count else { throw SyntaxError(description: "a phrase is not closed with \"") }
                i += 1
                return (out, true)
            }
            var out = ""
            while i < chars.count, !chars[i].isWhitespace {
                if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                out.append(chars[i])
                i += 1
            }
            return (out, false)
        }
        chars = chars.map { $0 == "\u{0}" ? " " : $0 }
        while true {
            skipSpace()
            guard i < chars.count else { break }
            var occurrence = Occurrence.should
            if chars[i] == "+" { occurrence = .must; i += 1 } else if chars[i] == "-" { occurrence = .mustNot; i += 1 }
            var field: String?
            // field: — a name made of word characters and dots, then a colon.
            var j = i
            while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "." { j += 1 }
            if j > i, j < chars.count, chars[j] == ":" {
                field = String(chars[i..<j])
                i = j + 1
            }
            var comparison: String?
            if field != nil {
                for op in [">=", "<=", ">", "<"] where chars[i...].starts(with: Array(op)) {
                    comparison = op
                    i += op.count
                    break
                }
            }
            let (word, quoted) = try token()
            guard !word.isEmpty else { throw SyntaxError(description: "an empty clause at character \(i)") }
            if let comparison, let field {
                guard let number = Double(word) else { throw SyntaxError(description: "\(field):\(comparison) needs a number, not \(word)") }
                let name = comparison
                clauses.append(Clause(occurrence: occurrence, field: field, match: .compare(name, number)))
            } else {
                let prefix = !quoted && word.hasSuffix("*")
                clauses.append(Clause(occurrence: occurrence, field: field, match: .text(prefix ? String(word.dropLast()) : word, prefix: prefix)))
            }
            guard clauses.count <= maxClauses else { throw SyntaxError(description: "more than \(maxClauses) clauses") }
        }
        guard !clauses.isEmpty else { throw SyntaxError(description: "the search is empty") }
        return IndexQuery(clauses: clauses)
    }

    /// The FTS5 MATCH expression for a text clause: its words as one quoted phrase (quotes
    /// doubled), `*` after it for a prefix. Nil when the text has no word.
    static func ftsExpression(_ text: String, prefix: Bool) -> String? {
        let words = text.split { !($0.isLetter || $0.isNumber || $0 == "_") }
        guard !words.isEmpty else { return nil }
        let phrase = "\"" + words.joined(separator: " ").replacingOccurrences(of: "\"", with: "\"\"") + "\""
        return prefix ? phrase + " *" : phrase
    }

    /// Which documents match, given each clause's matching set; ranked by how many clauses match.
    func combine(_ sets: [Set<Int64>]) -> [(Int64, Int)] {
        var required: Set<Int64>?
        var excluded = Set<Int64>()
        var alternatives = Set<Int64>()
        var score: [Int64: Int] = [:]
        for (clause, set) in zip(clauses, sets) {
            switch clause.occurrence {
            case .must: required = required.map { $0.intersection(set) } ?? set
            case .mustNot: excluded.formUnion(set)
            case .should: alternatives.formUnion(set)
            }
            if clause.occurrence != .mustNot { for id in set { score[id, default: 0] += 1 } }
        }
        let hasShould = clauses.contains { $0.occurrence == .should }
        var matching: Set<Int64>
        if let required {
            matching = required
        } else if hasShould {
            matching = alternatives
        } else {
            matching = [] // only exclusions: nothing to start from
        }
        matching.subtract(excluded)
        return matching.map { ($0, score[$0] ?? 0) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }
}
