import Foundation
import VQL
import Yams

/// One Sigma rule, compiled: its metadata (kept as the `_Rule` value rows carry), its log source,
/// its named searches and its condition. Sigma is the community's shared detection format, so
/// rules written for other tools run here unchanged; compiling once keeps per-event work to
/// matching only.
struct SigmaRule {
    let title: String
    /// The rule's `name` and `id`: what correlation rules refer to it by.
    let references: [String]
    let logSource: SigmaLogSourceKey
    let searches: [String: SigmaSearch]
    /// The rule's conditions; a rule matches when any of them does.
    let conditions: [SigmaCondition]
    /// Hayabusa-style `details:` text with %Field% placeholders.
    let details: String?
    /// Velociraptor's extensions: a lambda that builds the event before matching, and one that
    /// builds an enrichment object after a match.
    let eventLambda: String?
    let enrichmentLambda: String?
    /// The rule as rows show it (`_Rule`).
    let metadata: Value

    /// Why a rule could not be used; the plugin logs it and goes on with the other rules.
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// Every rule in a text (one or more YAML documents). Each entry is a rule or the reason one
    /// document was refused.
    static func parseAll(_ text: String) -> [Result<SigmaDocument, Problem>] {
        if let problem = DocumentParsers.nestingProblem(Array(text.utf8)) {
            return [.failure(Problem(description: problem))]
        }
        return documents(text).map { document in
            do {
                guard let node = try Yams.compose(yaml: document) else {
                    return .failure(Problem(description: "an empty document"))
                }
                var budget = DocumentParsers.maxNodes
                let value = try DocumentParsers.convert(node, depth: 0, budget: &budget)
                if case .dict(let map) = value, map["correlation"] != nil {
                    return .success(.correlation(try SigmaCorrelation(map)))
                }
                return .success(.rule(try SigmaRule(value)))
            } catch let problem as Problem {
                return .failure(problem)
            } catch let error as YamlError {
                return .failure(Problem(description: "not YAML: \(error)"))
            } catch {
                return .failure(Problem(description: "\(error)"))
            }
        }
    }

    /// The YAML documents of a text: split at `---` lines (and ended by `...` lines), so that one
    /// broken document is reported on its own.
    static func documents(_ text: String) -> [String] {
        var documents: [String] = []
        var current: [Substring] = []
        func flush() {
            let document = current.joined(separator: "\n")
            if !document.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { documents.append(document) }
            current.removeAll()
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "---" || trimmed.hasPrefix("--- ") || trimmed == "..." {
                flush()
                if trimmed.hasPrefix("--- ") { current.append(line.dropFirst(4)) }
                continue
            }
            current.append(line)
        }
        flush()
        return documents
    }

    init(_ document: Value) throws {
        guard case .dict(let rule) = document else { throw Problem(description: "a rule must be a YAML mapping") }
        func text(_ key: String) -> String? { rule[key]?.stringValue }
        title = text("title") ?? ""
        references = [text("name"), text("id")].compactMap { $0 }
        guard case .dict(let detection)? = rule["detection"] else {
            throw Problem(description: "rule '\(title)': no detection section")
        }
        var searches: [String: SigmaSearch] = [:]
        var conditionTexts: [String] = []
        for (name, body) in detection.pairs {
            if name == "condition" {
                switch body {
                case .string(let s): conditionTexts = [s]
                case .list(let items): conditionTexts = items.compactMap(\.stringValue)
                default: throw Problem(description: "rule '\(title)': condition must be text or a list of texts")
                }
                continue
            }
            if name == "timeframe" { continue }
            do {
                searches[name] = try SigmaSearch(body)
            } catch let problem as Problem {
                throw Problem(description: "rule '\(title)', search '\(name)': \(problem.description)")
            }
        }
        guard !conditionTexts.isEmpty else { throw Problem(description: "rule '\(title)': detection has no condition") }
        var conditions: [SigmaCondition] = []
        for conditionText in conditionTexts {
            do {
                conditions.append(try SigmaCondition.parse(conditionText, searches: Array(searches.keys)))
            } catch let problem as Problem {
                throw Problem(description: "rule '\(title)': \(problem.description)")
            }
        }
        self.searches = searches
        self.conditions = conditions
        let source = rule["logsource"].flatMap { value -> Dict? in
            if case .dict(let d) = value { return d }
            return nil
        } ?? Dict()
        logSource = SigmaLogSourceKey(category: source["category"]?.stringValue,
                                      product: source["product"]?.stringValue,
                                      service: source["service"]?.stringValue)
        details = text("details")
        eventLambda = text("vql")
        enrichmentLambda = text("enrichment")

        // The names rows carry, capitalised as Velociraptor's rule object shows them.
        var shown = Dict()
        shown["Title"] = .string(title)
        for (key, name) in [("id", "ID"), ("status", "Status"), ("description", "Description"), ("author", "Author"),
                            ("date", "Date"), ("modified", "Modified"), ("level", "Level")] {
            if let value = rule[key], !value.isNull { shown[name] = value }
        }
        for (key, name) in [("references", "References"), ("tags", "Tags"), ("falsepositives", "FalsePositives"),
                            ("fields", "Fields"), ("related", "Related")] {
            if let value = rule[key], !value.isNull { shown[name] = value }
        }
        var shownSource = Dict()
        if let v = logSource.category { shownSource["Category"] = .string(v) }
        if let v = logSource.product { shownSource["Product"] = .string(v) }
        if let v = logSource.service { shownSource["Service"] = .string(v) }
        shown["Logsource"] = .dict(shownSource)
        shown["Detection"] = .dict(detection)
        if let details { shown["Details"] = .string(details) }
        metadata = .dict(shown)
    }
}

/// One YAML document of a rule text: a detection rule or a correlation over such rules.
enum SigmaDocument {
    case rule(SigmaRule)
    case correlation(SigmaCorrelation)
}

/// A rule's `logsource` as the key of `sigma_log_sources()`: "category/product/service", with
/// "*" where the rule names no value.
struct SigmaLogSourceKey: Hashable, CustomStringConvertible {
    let category: String?
    let product: String?
    let service: String?

    var description: String {
        [category, product, service].map { part in
            part.flatMap { $0.isEmpty ? nil : $0.lowercased() } ?? "*"
        }.joined(separator: "/")
    }

    /// Normalises a key written by the user ("Process_Creation/Linux/*", missing parts as "*").
    static func normalise(_ key: String) -> String {
        var parts = key.split(separator: "/", omittingEmptySubsequences: false).map {
            let part = $0.trimmingCharacters(in: .whitespaces).lowercased()
            return part.isEmpty ? "*" : part
        }
        while parts.count < 3 { parts.append("*") }
        return parts.prefix(3).joined(separator: "/")
    }
}
