/// An error or warning about query text, as a value: where it is, what kind, what was expected.
/// Rendered in one place (`render`) with the offending line and a caret under the position.
public struct Diagnostic: Error, Sendable, CustomStringConvertible {
    /// The family of problem; tools and tests match on it rather than on message text.
    public enum Kind: String, Sendable {
        case syntax
        case unknownPlugin = "unknown plugin"
        case unknownFunction = "unknown function"
        case argument
        case runtime
    }

    public var kind: Kind
    public var message: String
    public var range: SourceRange
    /// A replacement the user probably meant ("did you mean …").
    public var suggestion: String?

    public init(_ kind: Kind, _ message: String, range: SourceRange, suggestion: String? = nil) {
        self.kind = kind
        self.message = message
        self.range = range
        self.suggestion = suggestion
    }

    public var description: String {
        var text = "\(range.start): \(message)"
        if let suggestion { text += " (did you mean \(suggestion)?)" }
        return text
    }

    /// `error: message --> query:LINE:COL`, the source line, and a caret under the column.
    /// Characters of a source line shown at most.
    static let maxShownLine = 160

    public func render(source: String, name: String = "query") -> String {
        var out = "error: \(message)"
        if let suggestion { out += " (did you mean '\(suggestion)'?)" }
        out += "\n --> \(name):\(range.start.line):\(range.start.column)\n"
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        if range.start.line - 1 < lines.count {
            var line = Array(String(lines[range.start.line - 1]).replacingOccurrences(of: "\t", with: " "))
            let gutter = String(range.start.line)
            var caret = max(0, range.start.column - 1)
            var width = 1
            if range.end.line == range.start.line { width = max(1, range.end.column - range.start.column) }
            // A very long line (a generated or hostile text) is shown around the caret only.
            if line.count > Self.maxShownLine {
                let start = max(0, min(caret - Self.maxShownLine / 3, line.count - Self.maxShownLine))
                let end = min(line.count, start + Self.maxShownLine)
                line = (start > 0 ? ["…"] : []) + Array(line[start..<end]) + (end < line.count ? ["…"] : [])
                caret = caret - start + (start > 0 ? 1 : 0)
                width = max(1, min(width, line.count - caret))
            }
            out += "\(gutter) | \(String(line))\n"
            out += String(repeating: " ", count: gutter.count) + " | "
                + String(repeating: " ", count: caret)
                + String(repeating: "^", count: width) + "\n"
        }
        return out
    }
}

/// Finds the closest known name for "did you mean" hints (case-insensitive edit distance).
public enum NameSuggester {
    public static func closest(to name: String, in candidates: some Sequence<String>) -> String? {
        let target = Array(name.lowercased().utf8)
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(target, Array(candidate.lowercased().utf8))
            if let current = best, distance >= current.1 { continue }
            best = (candidate, distance)
        }
        guard let (candidate, distance) = best else { return nil }
        return distance <= max(2, target.count / 3) ? candidate : nil
    }

    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
