import VQL
import Yams

/// A problem with an artifact file, located as file:line:column.
public struct ArtifactProblem: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    public var isWarning: Bool

    public var description: String { "\(file):\(line):\(column): \(isWarning ? "warning" : "error"): \(message)" }
}

/// Reads artifact YAML (Yams) into `Artifact` values, checking what can be checked without
/// running anything: required keys, parameter types, and that every query parses.
public enum ArtifactLoader {
    static let knownKeys: Set<String> = [
        "name", "description", "author", "reference", "type", "aliases", "precondition", "parameters", "sources",
        "export", "imports", "tools", "resources", "column_types", "required_permissions", "implied_permissions",
        "reports", "level", "category",
    ]

    /// Parses one file. Returns the artifact and its warnings, or throws the first error.
    public static func load(text: String, file: String) throws -> (Artifact, [ArtifactProblem]) {
        var warnings: [ArtifactProblem] = []
        func problem(_ message: String, _ mark: Mark?, warning: Bool = false) -> ArtifactProblem {
            ArtifactProblem(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message, isWarning: warning)
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw problem("empty file", nil) }
            root = node
        } catch let error as ArtifactProblem {
            throw error
        } catch let error as YamlError {
            throw yamlProblem(error, file: file)
        }
        guard let mapping = root.mapping else { throw problem("an artifact must be a YAML mapping", root.mark) }
        var fields: [String: Node] = [:]
        var unknown: [String] = []
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            fields[name] = value
            if !knownKeys.contains(name) {
                unknown.append(name)
                warnings.append(problem("unknown key '\(name)' kept but not used", key.mark, warning: true))
            }
        }
        guard let name = fields["name"]?.string, !name.isEmpty else { throw problem("missing 'name'", root.mark) }
        let typeText = (fields["type"]?.string ?? "CLIENT").uppercased()
        guard let kind = Artifact.Kind(rawValue: typeText) else {
            throw problem("unknown artifact type '\(typeText)' (expected \(Artifact.Kind.allCases.map(\.rawValue).joined(separator: ", ")))", fields["type"]?.mark)
        }
        var parameters: [Artifact.Parameter] = []
        for node in fields["parameters"]?.sequence ?? [] {
            guard let p = node.mapping, let pname = p["name"]?.string else { throw problem("a parameter needs a name", node.mark) }
            let type = (p["type"]?.string ?? "string").lowercased()
            guard Artifact.parameterTypes.contains(type) else { throw problem("parameter '\(pname)' has unknown type '\(type)'", p["type"]?.mark) }
            parameters.append(Artifact.Parameter(
                name: pname, defaultValue: p["default"].flatMap(scalarText), description: p["description"]?.string, type: type,
                choices: (p["choices"]?.sequence ?? []).compactMap(\.string)))
        }
        var sources: [Artifact.Source] = []
        for node in fields["sources"]?.sequence ?? [] {
            guard let s = node.mapping else { throw problem("a source must be a mapping", node.mark) }
            var query = s["query"]?.string
            if query == nil, let queries = s["queries"]?.sequence { query = queries.compactMap(\.string).joined(separator: "\n") }
            sources.append(Artifact.Source(
                name: s["name"]?.string, precondition: s["precondition"]?.string, query: query ?? "",
                notebook: (s["notebook"]?.sequence ?? []).compactMap { $0.mapping?["template"]?.string }))
        }
        // Every query must parse; report the position inside the YAML file.
        func checkVQL(_ text: String?, _ node: Node?, what: String) throws {
            guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
            do {
                _ = try Parser.parse(text)
            } catch {
                let base = node?.mark
                let blockOffset = (node?.scalar?.style == .literal || node?.scalar?.style == .folded) ? 1 : 0
                throw ArtifactProblem(
                    file: file, line: (base?.line ?? 1) + blockOffset + error.range.start.line - 1,
                    column: error.range.start.column, message: "\(what): \(error.message)", isWarning: false)
            }
        }
        try checkVQL(fields["precondition"]?.string, fields["precondition"], what: "precondition")
        try checkVQL(fields["export"]?.string, fields["export"], what: "export")
        for (i, node) in (fields["sources"]?.sequence ?? []).enumerated() {
            try checkVQL(node.mapping?["query"]?.string, node.mapping?["query"], what: "source \(sources[i].name ?? String(i))")
            try checkVQL(node.mapping?["precondition"]?.string, node.mapping?["precondition"], what: "source precondition")
        }
        var resources: [String: String] = [:]
        for (k, v) in fields["resources"]?.mapping ?? [:] { if let k = k.string { resources[k] = scalarText(v) } }
        var columnTypes: [String: String] = [:]
        for node in fields["column_types"]?.sequence ?? [] {
            if let n = node.mapping?["name"]?.string { columnTypes[n] = node.mapping?["type"]?.string ?? "" }
        }
        let artifact = Artifact(
            name: name, description: fields["description"]?.string, author: fields["author"]?.string,
            reference: stringList(fields["reference"]), type: kind, aliases: stringList(fields["aliases"]),
            precondition: fields["precondition"]?.string, parameters: parameters, sources: sources, export: fields["export"]?.string,
            imports: stringList(fields["imports"]), tools: (fields["tools"]?.sequence ?? []).compactMap { $0.mapping?["name"]?.string },
            resources: resources, columnTypes: columnTypes, requiredPermissions: stringList(fields["required_permissions"]),
            impliedPermissions: stringList(fields["implied_permissions"]), unknownKeys: unknown, origin: file, text: text)
        return (artifact, warnings)
    }

    static func scalarText(_ node: Node) -> String? {
        if let s = node.scalar { return s.string }
        if let seq = node.sequence { return seq.compactMap(\.string).joined(separator: "\n") }
        return nil
    }

    static func stringList(_ node: Node?) -> [String] {
        guard let node else { return [] }
        if let s = node.string { return [s] }
        return (node.sequence ?? []).compactMap(\.string)
    }

    static func yamlProblem(_ error: YamlError, file: String) -> ArtifactProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ArtifactProblem(file: file, line: mark.line, column: mark.column, message: "YAML: \(problem)", isWarning: false)
        default:
            return ArtifactProblem(file: file, line: 1, column: 1, message: "YAML: \(error)", isWarning: false)
        }
    }
}
