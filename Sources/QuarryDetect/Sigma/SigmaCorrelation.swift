import Foundation
import VQL

/// A Sigma correlation rule (Sigma 2): it watches the matches of other rules and fires when,
/// within `timespan` and per `group-by` value, enough of them happened (`event_count`), enough
/// distinct values of a field were seen (`value_count`), or every referenced rule matched
/// (`temporal`, or `temporal_ordered` in the listed order). Brute force, spraying and
/// multi-step attacks are found this way, not by any single event. The window logic is a pure
/// state machine over (time, rule, event) inputs, so it is tested with made-up times.
struct SigmaCorrelation {
    enum Kind: String {
        case eventCount = "event_count", valueCount = "value_count", temporal, temporalOrdered = "temporal_ordered"
    }

    let title: String
    let kind: Kind
    /// The referenced rules, by their `name` or `id`.
    let rules: [String]
    let groupBy: [String]
    let timespan: Double
    /// For counts: the comparison and its bound; `field` for value_count.
    let comparison: (op: String, bound: Double)?
    let field: String?
    /// The referenced rules also yield their own matches.
    let generate: Bool
    let metadata: Value

    static let maxEventsKept = 100

    init(_ rule: Dict) throws {
        title = rule["title"]?.stringValue ?? ""
        guard case .dict(let spec)? = rule["correlation"] else {
            throw SigmaRule.Problem(description: "rule '\(title)': correlation must be a map")
        }
        guard let type = spec["type"]?.stringValue, let kind = Kind(rawValue: type) else {
            throw SigmaRule.Problem(description: "rule '\(title)': correlation type must be event_count, value_count, temporal or temporal_ordered")
        }
        self.kind = kind
        switch spec["rules"] {
        case .string(let one)?: rules = [one]
        case .list(let items)?: rules = items.compactMap(\.stringValue)
        default: throw SigmaRule.Problem(description: "rule '\(title)': correlation needs rules")
        }
        guard !rules.isEmpty else { throw SigmaRule.Problem(description: "rule '\(title)': correlation needs rules") }
        switch spec["group-by"] {
        case .string(let one)?: groupBy = [one]
        case .list(let items)?: groupBy = items.compactMap(\.stringValue)
        default: groupBy = []
        }
        guard let span = spec["timespan"]?.stringValue.flatMap(SigmaCorrelation.seconds) else {
            throw SigmaRule.Problem(description: "rule '\(title)': timespan must be a number with s, m, h or d (e.g. 5m)")
        }
        timespan = span
        generate = spec["generate"]?.isTruthy ?? rule["generate"]?.isTruthy ?? false
        if kind == .eventCount || kind == .valueCount {
            guard case .dict(let condition)? = spec["condition"] else {
                throw SigmaRule.Problem(description: "rule '\(title)': \(kind.rawValue) needs a condition such as {gte: 10}")
            }
            for op in ["lt", "lte", "neq"] where condition[op] != nil {
                throw SigmaRule.Problem(description: "rule '\(title)': '\(op)' needs the end of a window and is not supported (use gt, gte or eq)")
            }
            let ops = ["gt", "gte", "eq"]
            guard let op = ops.first(where: { condition[$0] != nil }), let bound = condition[op]?.doubleValue ?? condition[op]?.stringValue.flatMap(Double.init) else {
                throw SigmaRule.Problem(description: "rule '\(title)': the condition needs one of gt, gte or eq with a number")
            }
            comparison = (op, bound)
            field = condition["field"]?.stringValue
            if kind == .valueCount && field == nil {
                throw SigmaRule.Problem(description: "rule '\(title)': value_count needs condition.field")
            }
        } else {
            comparison = nil
            field = nil
        }
        var shown = Dict()
        shown["Title"] = .string(title)
        for (key, name) in [("id", "ID"), ("name", "Name"), ("status", "Status"), ("description", "Description"), ("author", "Author"),
                            ("level", "Level"), ("tags", "Tags"), ("references", "References")] {
            if let value = rule[key], !value.isNull { shown[name] = value }
        }
        shown["Correlation"] = .dict(spec)
        metadata = .dict(shown)
    }

    /// "30s", "5m", "1h", "2d" (a bare number is seconds).
    static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let last = trimmed.last else { return nil }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let unit = units[last], let n = Double(trimmed.dropLast()), n > 0 { return n * unit }
        if let n = Double(trimmed), n > 0 { return n }
        return nil
    }

    func holds(_ count: Int) -> Bool {
        guard let (op, bound) = comparison else { return false }
        let n = Double(count)
        switch op {
        case "gt": return n > bound
        case "gte": return n >= bound
        default: return n == bound
        }
    }
}

/// One base-rule match fed to a correlation: when, which rule (index into `rules`), the group,
/// the value counted (value_count) and the event as output carries it.
struct SigmaCorrelationInput {
    let time: Double
    let rule: Int
    let group: [String]
    let value: String?
    let event: Value
}

/// What fired: the group's values, the count or rule order, the events in the window.
struct SigmaCorrelationHit {
    let group: [String]
    let count: Int
    let first: Double
    let last: Double
    let events: [Value]
}

/// The windows of one correlation rule, per group. After a hit the group's window starts afresh,
/// so one burst gives one hit, not one per further event. Inputs are taken in arrival order.
struct SigmaCorrelationState {
    let correlation: SigmaCorrelation
    private var windows: [[String]: [SigmaCorrelationInput]] = [:]
    /// Bound on remembered groups (hostile or huge inputs): the stalest is forgotten first.
    static let maxGroups = 100_000

    init(_ correlation: SigmaCorrelation) { self.correlation = correlation }

    mutating func feed(_ input: SigmaCorrelationInput) -> SigmaCorrelationHit? {
        var window = windows[input.group] ?? []
        window.removeAll { $0.time < input.time - correlation.timespan }
        window.append(input)
        if window.count > SigmaCorrelation.maxEventsKept * 10 { window.removeFirst(window.count - SigmaCorrelation.maxEventsKept * 10) }
        if windows[input.group] == nil, windows.count >= Self.maxGroups {
            // Full: forget every group whose window has expired (one pass frees many), else the stalest.
            let horizon = input.time - correlation.timespan
            windows = windows.filter { ($0.value.last?.time ?? 0) >= horizon }
            if windows.count >= Self.maxGroups, let stalest = windows.min(by: { ($0.value.last?.time ?? 0) < ($1.value.last?.time ?? 0) })?.key {
                windows[stalest] = nil
            }
        }
        let fired: Bool
        let count: Int
        switch correlation.kind {
        case .eventCount:
            count = window.count
            fired = correlation.holds(count)
        case .valueCount:
            count = Set(window.compactMap(\.value)).count
            fired = correlation.holds(count)
        case .temporal:
            count = Set(window.map(\.rule)).count
            fired = count == correlation.rules.count
        case .temporalOrdered:
            var next = 0
            for item in window where next < correlation.rules.count && item.rule == next { next += 1 }
            count = next
            fired = next == correlation.rules.count
        }
        guard fired else {
            windows[input.group] = window
            return nil
        }
        windows[input.group] = []
        return SigmaCorrelationHit(group: input.group, count: count, first: window.first?.time ?? input.time, last: input.time,
                                   events: window.suffix(SigmaCorrelation.maxEventsKept).map(\.event))
    }
}
