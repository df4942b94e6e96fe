/// One compiled glob expression: brace alternatives expanded, split into path components, each a
/// literal name, a wildcard pattern (`*`, `?`, `[…]`) or a recursive `**N`.
struct GlobPattern: Sendable {
    enum Component: Sendable {
        case literal([UInt8])
        case pattern([Token])
        /// `**` (depth 30) or `**N`: any number of directory levels up to the depth.
        case recursive(Int)
    }

    enum Token: Sendable {
        case byte(UInt8)
        case any
        case star
        case set(ranges: [ClosedRange<UInt8>], negated: Bool)
    }

    static let defaultDepth = 30

    /// The text the user wrote (reported in the Globs column).
    let source: String
    let components: [Component]

    /// Compiles a glob (after brace expansion) into components. Absolute; relative globs are
    /// made absolute against `root` by the caller.
    init(_ text: [UInt8], source: String) {
        self.source = source
        let parts = text.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        components = parts.map { GlobPattern.component(Array($0)) }
    }

    static func component(_ part: [UInt8]) -> Component {
        if part.count >= 2 && part[0] == UInt8(ascii: "*") && part[1] == UInt8(ascii: "*") {
            let rest = part.dropFirst(2)
            if rest.isEmpty { return .recursive(defaultDepth) }
            if rest.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
               let n = Int(String(decoding: rest, as: UTF8.self)) {
                return .recursive(max(1, n))
            }
        }
        var tokens: [Token] = []
        var literal = true
        var i = 0
        while i < part.count {
            let c = part[i]
            switch c {
            case UInt8(ascii: "*"):
                literal = false
                if case .star = tokens.last {} else { tokens.append(.star) }
            case UInt8(ascii: "?"):
                literal = false
                tokens.append(.any)
            case UInt8(ascii: "\\") where i + 1 < part.count:
                i += 1
                tokens.append(.byte(part[i]))
            case UInt8(ascii: "["):
                if let (token, end) = parseSet(part, from: i) {
                    literal = false
                    tokens.append(token)
                    i = end
                } else {
                    tokens.append(.byte(c))
                }
            default:
                tokens.append(.byte(c))
            }
            i += 1
        }
        if literal {
            return .literal(tokens.compactMap { if case .byte(let b) = $0 { return b } else { return nil } })
        }
        return .pattern(tokens)
    }

    /// Parses `[…]` starting at `start`; returns the token and the index of the closing `]`.
    static func parseSet(_ part: [UInt8], from start: Int) -> (Token, Int)? {
        var i = start + 1
        var negated = false
        if i < part.count && (part[i] == UInt8(ascii: "!") || part[i] == UInt8(ascii: "^")) {
            negated = true
            i += 1
        }
        var ranges: [ClosedRange<UInt8>] = []
        var first = true
        while i < part.count {
            var c = part[i]
            if c == UInt8(ascii: "]") && !first { return (.set(ranges: ranges, negated: negated), i) }
            first = false
            if c == UInt8(ascii: "\\") && i + 1 < part.count {
                i += 1
                c = part[i]
            }
            if i + 2 < part.count && part[i + 1] == UInt8(ascii: "-") && part[i + 2] != UInt8(ascii: "]") {
                let hi = part[i + 2]
                ranges.append(min(c, hi)...max(c, hi))
                i += 3
            } else {
                ranges.append(c...c)
                i += 1
            }
        }
        return nil
    }

    /// Wildcard match of one name against tokens (iterative, with star backtracking).
    static func matches(_ tokens: [Token], _ name: [UInt8]) -> Bool {
        var t = 0, n = 0
        var starT = -1, starN = 0
        while n < name.count {
            if t < tokens.count {
                switch tokens[t] {
                case .star:
                    starT = t
                    starN = n
                    t += 1
                    continue
                case .any:
                    t += 1
                    n += 1
                    continue
                case .byte(let b) where b == name[n]:
                    t += 1
                    n += 1
                    continue
                case .set(let ranges, let negated) where ranges.contains(where: { $0.contains(name[n]) }) != negated:
                    t += 1
                    n += 1
                    continue
                default: break
                }
            }
            guard starT >= 0 else { return false }
            t = starT + 1
            starN += 1
            n = starN
        }
        while t < tokens.count, case .star = tokens[t] { t += 1 }
        return t == tokens.count
    }

    /// Expands `{a,b}` alternatives (nested allowed), capped to keep pathological input bounded.
    static func expandBraces(_ text: [UInt8], limit: Int = 4096) -> [[UInt8]] {
        guard let open = text.firstIndex(of: UInt8(ascii: "{")) else { return [text] }
        var depth = 0
        var commas: [Int] = []
        var close: Int?
        for i in open..<text.count {
            switch text[i] {
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { close = i }
            case UInt8(ascii: ","): if depth == 1 { commas.append(i) }
            default: break
            }
            if close != nil { break }
        }
        guard let close else { return [text] }
        let prefix = Array(text[..<open])
        let suffix = Array(text[(close + 1)...])
        var bounds = [open] + commas + [close]
        var results: [[UInt8]] = []
        if commas.isEmpty { bounds = [open, close] }
        for k in 0..<(bounds.count - 1) {
            let alternative = Array(text[(bounds[k] + 1)..<bounds[k + 1]])
            for expanded in expandBraces(prefix + alternative + suffix, limit: limit) {
                results.append(expanded)
                if results.count >= limit { return results }
            }
        }
        return results
    }
}
