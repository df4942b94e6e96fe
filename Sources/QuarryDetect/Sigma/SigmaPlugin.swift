import Foundation
import VQL

/// `sigma()` and `sigma_log_sources()`: Sigma rules evaluated over the rows of VQL queries.
/// Each rule's `logsource` picks the query that feeds it ("category/product/service", "*" for a
/// part the rule leaves out); every row of that query is tested against every rule of the source,
/// and each match comes out as the event's row plus `_Rule` (and `Details`, `Enrichment`).
public enum SigmaPlugins {
    public static var plugins: [PluginDeclaration] { [sigma] }
    public static var functions: [FunctionDeclaration] { [logSources] }

    public static let sigma = PluginDeclaration(
        name: "sigma",
        summary: "Evaluates Sigma rules over the events of log-source queries; yields each matching event with the rule.",
        arguments: [
            ArgumentSpec("rules", .stringList, required: true, "Rule texts (each may hold several YAML documents)."),
            ArgumentSpec("log_sources", .any, required: true, "The queries per log source, from sigma_log_sources()."),
            ArgumentSpec("field_mapping", .dict, "Rule field name → lambda reading it from an event; unmapped fields are read from the event by name (dots walk into nested values)."),
            ArgumentSpec("debug", .bool, "Yield every event for every rule with _Match: what each search and condition gave."),
            ArgumentSpec("rule_filter", .lambda, "Called with each rule's _Rule value; rules for which it is false are dropped."),
            ArgumentSpec("default_details", .lambda, "Called with a matching row when its rule has no details: text; gives Details."),
        ],
        columns: [
            ColumnSpec("_Rule", .dict, "The matching rule: Title, ID, Level, Status, Description, Tags, Logsource, Detection, …"),
            ColumnSpec("Details", .string, "The rule's details text with %Field% filled in from the event (or default_details)."),
            ColumnSpec("Enrichment", .any, "What the rule's enrichment lambda returned for the event."),
            ColumnSpec("_Match", .dict, "With debug=TRUE: Match, SearchResults (per search) and ConditionResults."),
        ],
        examples: [
            """
            SELECT _Rule.Title AS Title, Cmd FROM sigma(
                rules='title: Curl to pipe\\nlogsource: {category: process_creation, product: linux}\\ndetection:\\n  sel: {Cmd|contains: curl}\\n  condition: sel',
                log_sources=sigma_log_sources(`process_creation/linux/*`={ SELECT 'curl x | sh' AS Cmd FROM scope() }))
            """,
        ],
        permissions: [.machineState, .execve, .filesystemRead, .filesystemWrite]
    ) { ctx in try SigmaRun(ctx).cursor() }

    public static let logSources = FunctionDeclaration(
        name: "sigma_log_sources",
        summary: "Names the query behind each Sigma log source: arguments are `category/product/service` (\"*\" for any part) = a query.",
        returns: .object,
        examples: ["SELECT sigma_log_sources(`*/linux/auditd`={ SELECT * FROM scope() }) AS Sources FROM scope()"],
        strictArguments: false
    ) { ctx in
        .object(SigmaLogSources(ctx.allArguments().map { (SigmaLogSourceKey.normalise($0.0), $0.1) }))
    }
}

/// The value `sigma_log_sources()` returns: source keys and their (not yet run) queries.
final class SigmaLogSources: HostObject, @unchecked Sendable {
    let sources: [(key: String, query: Value)]
    init(_ sources: [(String, Value)]) { self.sources = sources.map { (key: $0.0, query: $0.1) } }
    var typeName: String { "SigmaLogSources" }
    var memberNames: [String] { ["Sources"] }
    func member(_ name: String) -> Value? {
        name == "Sources" ? .list(sources.map { .string($0.key) }) : nil
    }
}

/// One call of sigma(): rules compiled and grouped by source, then sources run one after another.
final class SigmaRun {
    let ctx: CallContext
    let mapping: SigmaFieldMapping
    let debug: Bool
    let defaultDetails: Lambda?
    var plan: [(query: Value, rules: [SigmaRule])] = []
    var correlations: [SigmaCorrelationState] = []
    /// Base rule reference (name or id) → the correlations fed by its matches, with its position.
    var links: [String: [(correlation: Int, rule: Int)]] = [:]
    /// Rules whose matches only feed correlations (`generate: false`, Sigma's default).
    var quiet: Set<String> = []

    init(_ ctx: CallContext) throws {
        self.ctx = ctx
        mapping = SigmaFieldMapping(ctx.value("field_mapping"))
        debug = ctx.bool("debug") ?? false
        defaultDetails = ctx.lambda("default_details")
        let filter = ctx.lambda("rule_filter")
        var rules: [SigmaRule] = []
        var refused = 0
        for text in ctx.strings("rules") ?? [] {
            for parsed in SigmaRule.parseAll(text) {
                switch parsed {
                case .success(.rule(let rule)):
                    if let filter, !filter.call([rule.metadata], in: ctx.env).isTruthy { continue }
                    rules.append(rule)
                case .success(.correlation(let correlation)):
                    if let filter, !filter.call([correlation.metadata], in: ctx.env).isTruthy { continue }
                    correlations.append(SigmaCorrelationState(correlation))
                case .failure(let problem):
                    refused += 1
                    ctx.log(.warning, "sigma: rule refused: \(problem.description)")
                }
            }
        }
        let known = Set(rules.flatMap(\.references))
        for (index, state) in correlations.enumerated() {
            for (position, reference) in state.correlation.rules.enumerated() {
                guard known.contains(reference) else {
                    ctx.log(.warning, "sigma: correlation '\(state.correlation.title)' refers to '\(reference)', which no rule is named or identified by")
                    continue
                }
                links[reference, default: []].append((index, position))
                if !state.correlation.generate { quiet.insert(reference) }
            }
        }
        guard case .object(let object)? = ctx.value("log_sources"), let sources = object as? SigmaLogSources else {
            throw SigmaUsage(description: "sigma(): log_sources must come from sigma_log_sources()")
        }
        var byKey: [String: [SigmaRule]] = [:]
        for rule in rules { byKey[rule.logSource.description, default: []].append(rule) }
        var served = Set<String>()
        for source in sources.sources {
            guard let matching = byKey[source.key], !served.contains(source.key) else { continue }
            served.insert(source.key)
            plan.append((source.query, matching))
        }
        let unserved = byKey.filter { !served.contains($0.key) }
        if !unserved.isEmpty {
            let keys = unserved.keys.sorted().map { "\($0) (\(unserved[$0]?.count ?? 0))" }.joined(separator: ", ")
            ctx.log(.info, "sigma: no log source for rules of: \(keys)")
        }
        let correlated = correlations.isEmpty ? "" : " and \(correlations.count) correlations"
        ctx.log(.info, "sigma: \(rules.count) rules\(correlated) over \(plan.count) log sources\(refused > 0 ? ", \(refused) refused" : "")")
    }

    func cursor() -> RowCursor {
        var index = 0
        var current: RowCursor?
        var pending: [Value] = []
        var pendingIndex = 0
        return GeneratorCursor(onClose: { current?.close() }) { [self] in
            while true {
                if pendingIndex < pending.count {
                    defer { pendingIndex += 1 }
                    return pending[pendingIndex]
                }
                pending.removeAll(keepingCapacity: true)
                pendingIndex = 0
                if let source = current {
                    guard let row = try source.next() else {
                        source.close()
                        current = nil
                        continue
                    }
                    try ctx.checkCancelled()
                    pending = evaluate(row.reduced(), rules: plan[index - 1].rules)
                    continue
                }
                guard index < plan.count else { return nil }
                current = try Rows.cursor(for: plan[index].query)
                index += 1
            }
        }
    }

    /// The output rows one event gives: one per matching rule (every rule with debug).
    func evaluate(_ row: Value, rules: [SigmaRule]) -> [Value] {
        let shared = SigmaEvent(row: row, mapping: mapping, env: ctx.env)
        var out: [Value] = []
        for rule in rules {
            var event = shared
            if let text = rule.eventLambda, let lambda = ctx.context.lambda(text) {
                let built = lambda.call([row], in: ctx.env)
                if case .dict = built { event = SigmaEvent(row: built, mapping: mapping, env: ctx.env) }
                else if case .object = built { event = SigmaEvent(row: built, mapping: mapping, env: ctx.env) }
            }
            var results: [String: Bool] = [:]
            func search(_ name: String) -> Bool {
                if let known = results[name] { return known }
                let result = rule.searches[name]?.matches(event) ?? false
                results[name] = result
                return result
            }
            let conditionResults = rule.conditions.map { $0.evaluate(search) }
            let matched = conditionResults.contains(true)
            if matched { out += correlate(rule, event) }
            guard matched && !rule.references.contains(where: quiet.contains) || debug else { continue }
            var output = SigmaRun.fields(of: event.row)
            output["_Rule"] = rule.metadata
            if matched {
                if let details = rule.details {
                    output["Details"] = .string(SigmaRun.expand(details, event))
                } else if let defaultDetails {
                    output["Details"] = defaultDetails.call([.dict(output)], in: ctx.env)
                }
                if let text = rule.enrichmentLambda, let lambda = ctx.context.lambda(text) {
                    output["Enrichment"] = lambda.call([event.row], in: ctx.env)
                }
            }
            if debug {
                for name in rule.searches.keys where results[name] == nil { _ = search(name) }
                let searchResults = Dict(results.keys.sorted().map { ($0, Value.bool(results[$0] ?? false)) })
                output["_Match"] = .dict(Dict([
                    ("Match", .bool(matched)), ("SearchResults", .dict(searchResults)),
                    ("ConditionResults", .list(conditionResults.map { .bool($0) })),
                ]))
            }
            out.append(.dict(output))
        }
        return out
    }

    /// Feeds a match to the correlations that reference its rule; their hits as rows.
    func correlate(_ rule: SigmaRule, _ event: SigmaEvent) -> [Value] {
        var hits: [Value] = []
        for reference in rule.references {
            for link in links[reference] ?? [] {
                let correlation = correlations[link.correlation].correlation
                let group = correlation.groupBy.map { SigmaEvent.texts(of: event.field($0)).joined(separator: ",") }
                let value = correlation.field.map { SigmaEvent.texts(of: event.field($0)).joined(separator: ",") }
                let input = SigmaCorrelationInput(time: SigmaRun.time(of: event), rule: link.rule, group: group, value: value,
                                                  event: .dict(SigmaRun.fields(of: event.row)))
                guard let hit = correlations[link.correlation].feed(input) else { continue }
                var row = Dict()
                row["Timestamp"] = .timestamp(Timestamp(seconds: hit.last))
                row["FirstTimestamp"] = .timestamp(Timestamp(seconds: hit.first))
                for (name, value) in zip(correlation.groupBy, hit.group) { row[name] = .string(value) }
                row["Count"] = .from(hit.count)
                row["_Rule"] = correlation.metadata
                row["_Correlations"] = .list(hit.events)
                hits.append(.dict(row))
            }
        }
        return hits
    }

    /// An event's time for correlation windows: its Timestamp (or Time, EventTime, TimeCreated)
    /// field, else the time it is read.
    static func time(of event: SigmaEvent) -> Double {
        for name in ["Timestamp", "Time", "EventTime", "TimeCreated"] {
            guard let value = event.field(name) else { continue }
            if case .timestamp(let t)? = Timestamps.parse(value.reduced()) { return t.seconds }
        }
        return Date().timeIntervalSince1970
    }

    static func fields(of row: Value) -> Dict {
        switch row {
        case .dict(let d): return d
        case .object(let o): return o.materialized()
        default: return Dict([("_value", row)])
        }
    }

    /// `details:` text with each %Field% replaced by the event's value ("n/a" when missing).
    static func expand(_ template: String, _ event: SigmaEvent) -> String {
        var result = ""
        var rest = Substring(template)
        while let start = rest.firstIndex(of: "%") {
            result += rest[..<start]
            let after = rest.index(after: start)
            guard let end = rest[after...].firstIndex(of: "%") else {
                result += rest[start...]
                return result
            }
            let name = String(rest[after..<end])
            if name.isEmpty {
                result += "%"
            } else {
                let texts = SigmaEvent.texts(of: event.field(name))
                result += texts.isEmpty ? "n/a" : texts.joined(separator: ", ")
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }
}

/// A call of sigma() that cannot run (its arguments are of the wrong kind).
struct SigmaUsage: Error, CustomStringConvertible {
    let description: String
}
