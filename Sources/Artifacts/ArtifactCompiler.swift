import VQL

/// Turns an artifact and the caller's parameter values into plain VQL, as Velociraptor does:
/// each parameter becomes a typed LET ahead of the sources; the artifact's export and the exports
/// it imports come first.
public struct CompiledArtifact: Sendable {
    public struct Source: Sendable {
        public var name: String?
        public var precondition: String?
        public var query: String
    }

    public var name: String
    /// Parameter LETs, then exports.
    public var prelude: String
    public var precondition: String?
    public var sources: [Source]
    /// Sources share one scope unless some source has its own precondition (then each runs alone).
    public var sharedScope: Bool

    /// The VQL that runs for one source (what `quarry artifacts show --compiled` prints).
    public func text(for source: Source) -> String {
        var out = prelude
        if let p = precondition { out += "-- precondition: " + p.trimmingCharacters(in: .whitespacesAndNewlines) + "\n" }
        if let p = source.precondition { out += "-- source precondition: " + p.trimmingCharacters(in: .whitespacesAndNewlines) + "\n" }
        return out + source.query
    }
}

/// Compiles artifacts with parameters into VQL text.
public enum ArtifactCompiler {
    /// A VQL string literal for arbitrary text.
    public static func literal(_ text: String) -> String {
        if !text.contains("'''") && !text.hasSuffix("'") { return "'''" + text + "'''" }
        return "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            .replacingOccurrences(of: "\n", with: "\\n") + "'"
    }

    /// The typed expression for a parameter value.
    static func expression(for parameter: Artifact.Parameter, value: String) -> String {
        let lit = literal(value)
        switch parameter.type {
        case "int", "int64", "integer":
            return value.isEmpty ? "0" : "int(int=\(lit))"
        case "float":
            return Double(value).map { String($0) } ?? "0"
        case "bool":
            return ParameterCheck.trueWords.contains(value.uppercased()) ? "TRUE" : "FALSE"
        case "timestamp":
            return value.isEmpty ? "NULL" : "timestamp(epoch=\(lit))"
        case "csv":
            return "SELECT * FROM parse_csv(filename=\(lit), accessor='data')"
        case "json", "json_array":
            return value.isEmpty ? "NULL" : "parse_json(data=\(lit))"
        default:
            return lit
        }
    }

    /// `bound` names parameters whose values the caller already set in the scope as typed values
    /// (a list or dict passed to `Artifact.NAME(param=…)`): they get no LET, so the value is used
    /// as given rather than re-parsed from text, as Velociraptor does.
    public static func compile(
        _ artifact: Artifact, parameters overrides: [String: String] = [:], bound: Set<String> = [],
        repository: ArtifactRepository
    ) throws -> CompiledArtifact {
        for key in Set(overrides.keys).union(bound) where !artifact.parameters.contains(where: { $0.name == key }) {
            var message = "\(artifact.name): no parameter '\(key)'"
            if let s = NameSuggester.closest(to: key, in: artifact.parameters.map(\.name)) { message += " (did you mean '\(s)'?)" }
            throw ArtifactProblem(file: artifact.origin, line: 1, column: 1, message: message, isWarning: false)
        }
        var prelude = ""
        for p in artifact.parameters where !bound.contains(p.name) {
            let value = overrides[p.name] ?? p.defaultValue ?? ""
            prelude += "LET \(quoteName(p.name)) <= \(expression(for: p, value: value))\n"
        }
        for name in artifact.imports {
            guard let imported = repository.artifact(named: name) else {
                throw ArtifactProblem(file: artifact.origin, line: 1, column: 1, message: "imports unknown artifact \(name)", isWarning: false)
            }
            if let export = imported.export { prelude += export + "\n" }
        }
        if let export = artifact.export { prelude += export + "\n" }
        return CompiledArtifact(
            name: artifact.name, prelude: prelude, precondition: artifact.precondition,
            sources: artifact.sources.map { CompiledArtifact.Source(name: $0.name, precondition: $0.precondition, query: $0.query) },
            sharedScope: !artifact.sources.contains { $0.precondition != nil })
    }

    static func quoteName(_ name: String) -> String {
        let simple = name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && !(name.first?.isNumber ?? true)
        return simple ? name : "`" + name + "`"
    }
}
