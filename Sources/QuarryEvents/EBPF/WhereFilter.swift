import VQL

/// The parts of a `watch_ebpf` query's WHERE that the kernel filter can test, turned into that
/// filter: `System.EventName` (= or IN) narrows the event types, `System.ProcessName` the process
/// names (the kernel's comm, which is what that column holds), `System.UserID` the uids, and
/// `EventData.pathname =~ '^/literal/prefix'` the path prefixes. The WHERE still runs on every row,
/// so each derived filter only has to let through at least what the WHERE keeps: where that cannot
/// be promised (a regex that is not an anchored literal, an alternation, a value of the wrong
/// type), the condition is simply not used.
public struct WhereFilter: Equatable, Sendable {
    public var eventNames: Set<String>?
    public var comms: [String]?
    public var uids: [UInt32]?
    public var pathPrefixes: [String]?

    /// Case variants allowed per prefix: VQL's `=~` ignores case and the kernel compares bytes, so
    /// `^/etc/` becomes `/etc/`, `/Etc/`, … (the kernel table holds 16 prefixes in all).
    static let maxVariants = 8

    public init(eventNames: Set<String>? = nil, comms: [String]? = nil, uids: [UInt32]? = nil, pathPrefixes: [String]? = nil) {
        self.eventNames = eventNames
        self.comms = comms
        self.uids = uids
        self.pathPrefixes = pathPrefixes
    }

    public init(_ constraints: [ColumnConstraint]) {
        for constraint in constraints {
            switch (constraint.dottedPath, constraint.test) {
            case ("System.EventName", .oneOf(let values)):
                let names = values.compactMap { value -> String? in if case .string(let s) = value { return s } else { return nil } }
                guard names.count == values.count else { continue }
                eventNames = (eventNames ?? Set(names)).intersection(names)
            case ("System.ProcessName", .oneOf(let values)):
                let names = values.compactMap { value -> String? in if case .string(let s) = value { return s } else { return nil } }
                guard names.count == values.count else { continue }
                comms = comms.map { $0.filter(names.contains) } ?? names
            case ("System.UserID", .oneOf(let values)):
                let ids = values.compactMap { value -> UInt32? in
                    switch value {
                    case .int(let n): return UInt32(exactly: n)
                    case .string(let s): return UInt32(s)
                    default: return nil
                    }
                }
                guard ids.count == values.count else { continue }
                uids = uids.map { $0.filter(ids.contains) } ?? ids
            case ("EventData.pathname", .matches(let pattern)):
                // Kernel paths are absolute (a memfd's row path drops its leading slash).
                guard let prefixes = Self.prefixes(ofRegex: pattern), prefixes.allSatisfy({ $0.hasPrefix("/") }) else { continue }
                // Two prefix conditions: a path must meet both; keep the first (a superset either way).
                if pathPrefixes == nil { pathPrefixes = prefixes }
            default:
                continue
            }
        }
    }

    /// The literal prefix every match of `pattern` starts with, in each ASCII case variant unless
    /// the pattern turns case-insensitivity off (`(?-i)`); nil when there is no usable prefix.
    static func prefixes(ofRegex pattern: String) -> [String]? {
        var scalars = Array(pattern.unicodeScalars)
        var caseSensitive = false
        if scalars.starts(with: "(?-i)".unicodeScalars) {
            caseSensitive = true
            scalars.removeFirst(5)
        }
        guard scalars.first == "^" else { return nil }
        // An alternation anywhere could make the anchor apply to one branch only.
        var escaped = false
        for scalar in scalars {
            if escaped { escaped = false; continue }
            if scalar == "\\" { escaped = true } else if scalar == "|" { return nil }
        }
        var literal: [Unicode.Scalar] = []
        var i = 1
        let metacharacters = Set(".[]()*+?{}|^$\\".unicodeScalars)
        let quantifiers = Set("*?{".unicodeScalars)
        while i < scalars.count {
            var next: Unicode.Scalar
            var width = 1
            if scalars[i] == "\\" {
                // An escaped punctuation mark is itself; \d, \w, \s … are classes: stop.
                guard i + 1 < scalars.count, !scalars[i + 1].properties.isAlphabetic, !("0"..."9").contains(scalars[i + 1]) else { break }
                next = scalars[i + 1]
                width = 2
            } else if metacharacters.contains(scalars[i]) {
                break
            } else {
                next = scalars[i]
            }
            // A quantifier after this character makes it optional: it is not part of the prefix.
            if i + width < scalars.count, quantifiers.contains(scalars[i + width]) { break }
            // Letters beyond ASCII have case rules the kernel's byte compare cannot follow.
            if !caseSensitive && !next.isASCII && next.properties.changesWhenCaseMapped { break }
            literal.append(next)
            i += width
            if i < scalars.count, scalars[i] == "+" { break }
        }
        guard !literal.isEmpty else { return nil }
        if caseSensitive { return [String(String.UnicodeScalarView(literal))] }
        // Every case variant, cutting the prefix where they would pass the table's share.
        var variants: [[Unicode.Scalar]] = [[]]
        for scalar in literal {
            let lower = Unicode.Scalar(String(scalar).lowercased()) ?? scalar
            let upper = Unicode.Scalar(String(scalar).uppercased()) ?? scalar
            if lower == upper {
                variants = variants.map { $0 + [scalar] }
            } else {
                guard variants.count * 2 <= maxVariants else { break }
                variants = variants.flatMap { [$0 + [lower], $0 + [upper]] }
            }
        }
        guard let first = variants.first, !first.isEmpty else { return nil }
        return variants.map { String(String.UnicodeScalarView($0)) }
    }
}
