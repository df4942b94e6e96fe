import Foundation
import VQL

/// Whether a parameter value given as text fits the parameter's declared type, checked where a
/// collection or hunt is requested (the console's forms and `/api/v1`), so a typo is a clear
/// error before anything reaches an agent rather than a silent 0 or an empty regex on every host.
/// The rules follow what the compiled artifact does with the value (`ArtifactCompiler.expression`):
/// an int must read as an integer, a choice must be one of the choices, a regex must compile, JSON
/// must parse. An empty value means "use the default" and is always accepted.
public enum ParameterCheck {
    /// Values a `bool` parameter accepts (case-insensitive), and what they mean.
    public static let trueWords: Set<String> = ["Y", "YES", "TRUE", "OK", "1"]
    public static let falseWords: Set<String> = ["N", "NO", "FALSE", "0"]

    /// The problem with `value` for `parameter`, or nil when it fits.
    public static func problem(_ parameter: Artifact.Parameter, _ value: String) -> String? {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return nil }
        switch parameter.type {
        case "int", "int64", "integer":
            return Int64(trimmed) == nil ? "\(parameter.name): '\(short(value))' is not a whole number" : nil
        case "float":
            return Double(trimmed) == nil ? "\(parameter.name): '\(short(value))' is not a number" : nil
        case "bool":
            let word = trimmed.uppercased()
            return trueWords.contains(word) || falseWords.contains(word) ? nil : "\(parameter.name): '\(short(value))' is not a yes/no value (Y or N)"
        case "choices":
            guard !parameter.choices.isEmpty, !parameter.choices.contains(value) else { return nil }
            return "\(parameter.name): '\(short(value))' is not one of \(parameter.choices.joined(separator: ", "))"
        case "multichoice":
            guard let list = try? JSONParser.parse(value), let items = list.listElements else {
                return "\(parameter.name): expected a JSON list of choices"
            }
            let unknown = items.compactMap(\.stringValue).filter { !parameter.choices.isEmpty && !parameter.choices.contains($0) }
            return unknown.isEmpty ? nil : "\(parameter.name): '\(short(unknown[0]))' is not one of \(parameter.choices.joined(separator: ", "))"
        case "regex":
            return regexProblem(parameter.name, value)
        case "regex_array":
            guard let list = try? JSONParser.parse(value), let items = list.listElements else {
                return "\(parameter.name): expected a JSON list of regular expressions"
            }
            return items.lazy.compactMap { $0.stringValue.flatMap { regexProblem(parameter.name, $0) } }.first
        case "json":
            return (try? JSONParser.parse(value)) == nil ? "\(parameter.name): not valid JSON" : nil
        case "json_array":
            guard let parsed = try? JSONParser.parse(value), parsed.listElements != nil else { return "\(parameter.name): expected a JSON list" }
            return nil
        case "timestamp":
            if Double(trimmed) != nil { return nil }
            return GoTime.parseAny(trimmed) == nil ? "\(parameter.name): '\(short(value))' is not a time (epoch seconds or RFC 3339)" : nil
        default:
            return nil
        }
    }

    /// Every problem of `values` for `artifact`: unknown parameter names and ill-typed values.
    public static func problems(_ artifact: Artifact, _ values: [String: String]) -> [String] {
        var out: [String] = []
        for key in values.keys.sorted() {
            guard let parameter = artifact.parameters.first(where: { $0.name == key }) else {
                var message = "\(artifact.name) has no parameter '\(key)'"
                if let s = NameSuggester.closest(to: key, in: artifact.parameters.map(\.name)) { message += " (did you mean '\(s)'?)" }
                out.append(message)
                continue
            }
            if let problem = problem(parameter, values[key] ?? "") { out.append(problem) }
        }
        return out
    }

    private static func regexProblem(_ name: String, _ pattern: String) -> String? {
        do {
            _ = try CompiledRegex(pattern, caseInsensitive: true)
            return nil
        } catch {
            return "\(name): the regular expression does not compile: \(error)"
        }
    }

    private static func short(_ text: String) -> String {
        text.count > 60 ? String(text.prefix(60)) + "…" : text
    }
}
