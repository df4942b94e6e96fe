/// A condition from a query's WHERE that every row the query keeps must meet, offered to the
/// plugin in its FROM so the plugin can skip work it knows will be thrown away — `watch_ebpf`
/// moves it into the kernel, so unwanted events never reach user space.
///
/// Only conjuncts of the WHERE's top-level AND are offered, and only of the forms
/// `Column = literal`, `literal = Column`, `Column IN (literal, …)` and `Column =~ 'literal'`,
/// where `Column` is a name or a dotted member chain (`System.EventName`) that is not one of the
/// SELECT's aliases. The WHERE itself still runs on every row: a plugin that uses a constraint
/// must only ever produce a superset of the rows it describes, never drop one the WHERE would keep.
public struct ColumnConstraint: @unchecked Sendable {
    public enum Test {
        /// `=` or `IN`: the column equals one of these values.
        case oneOf([Value])
        /// `=~`: the column matches this regular expression (VQL's match: case-insensitive).
        case matches(String)
    }

    /// The column and the members under it (`["System", "EventName"]`).
    public let path: [String]
    public let test: Test

    /// The path written with dots, for lookups (`System.EventName`).
    public var dottedPath: String { path.joined(separator: ".") }
}

public enum ColumnConstraints {
    /// The constraints a WHERE clause offers (see `ColumnConstraint`); `aliases` are the SELECT's
    /// column names, which a WHERE may also mean and a plugin's rows do not have.
    public static func extract(_ condition: Expression, aliases: Set<String>) -> [ColumnConstraint] {
        var found: [ColumnConstraint] = []
        collect(condition, aliases: aliases, into: &found)
        return found
    }

    private static func collect(_ e: Expression, aliases: Set<String>, into found: inout [ColumnConstraint]) {
        switch e.kind {
        case .parenthesized(let inner):
            collect(inner, aliases: aliases, into: &found)
        case .binary(.and, let a, let b, _):
            collect(a, aliases: aliases, into: &found)
            collect(b, aliases: aliases, into: &found)
        case .binary(.equal, let a, let b, _):
            if let path = path(a, aliases), let value = literal(b) {
                found.append(ColumnConstraint(path: path, test: .oneOf([value])))
            } else if let path = path(b, aliases), let value = literal(a) {
                found.append(ColumnConstraint(path: path, test: .oneOf([value])))
            }
        case .binary(.in, let a, let b, _):
            guard let path = path(a, aliases) else { return }
            let items: [Expression]
            switch b.kind {
            case .list(let list), .tuple(let list, _): items = list
            case .parenthesized(let one): items = [one]
            default: return
            }
            let values = items.compactMap(literal)
            if values.count == items.count && !values.isEmpty { found.append(ColumnConstraint(path: path, test: .oneOf(values))) }
        case .binary(.regexMatch, let a, let b, _):
            if let path = path(a, aliases), case .string(let pattern)? = literal(b) {
                found.append(ColumnConstraint(path: path, test: .matches(pattern)))
            }
        default:
            return
        }
    }

    /// `Name` or `Name.Member…` with no index or call in between.
    private static func path(_ e: Expression, _ aliases: Set<String>) -> [String]? {
        switch e.kind {
        case .symbol(let name, _):
            return aliases.contains(name) ? nil : [name]
        case .member(let base, let name, _):
            return path(base, aliases).map { $0 + [name] }
        case .parenthesized(let inner):
            return path(inner, aliases)
        default:
            return nil
        }
    }

    private static func literal(_ e: Expression) -> Value? {
        switch e.kind {
        case .string(let bytes, _): return .string(bytes: bytes)
        case .integer(let n, _): return .int(n)
        case .float(let d, _): return .double(d)
        case .bool(let b, _): return .bool(b)
        case .parenthesized(let inner): return literal(inner)
        default: return nil
        }
    }
}
