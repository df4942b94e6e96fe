import VQL

/// Checks an artifact against a registry: its YAML loads, every query parses, and every plugin
/// and function it calls exists (names the artifact defines itself with LET, in any of its
/// texts, and its parameters do not count as missing). `quarry artifacts verify` and the VQL
/// function `verify()` both report through it.
public enum ArtifactVerifier {
    /// The outcome for one artifact.
    public struct Report: Sendable {
        public var name: String
        public var errors: [String]
        public var warnings: [String]
        /// Plugins and functions the artifact calls that the registry lacks, sorted.
        public var missing: [String]
    }

    /// Parse errors and missing names of an artifact already loaded.
    public static func check(_ artifact: Artifact, registry: Registry) -> Report {
        var report = Report(name: artifact.name, errors: [], warnings: [], missing: [])
        let texts = [artifact.export, artifact.precondition].compactMap { $0 } + artifact.sources.flatMap { [$0.query, $0.precondition].compactMap { $0 } }
        var parsed: [[Statement]] = []
        var known = Set(artifact.parameters.map(\.name))
        for text in texts {
            do {
                let statements = try Parser.parse(text)
                parsed.append(statements)
                for case .let(let definition) in statements { known.insert(definition.name) }
            } catch {
                report.errors.append("\(error)")
            }
        }
        var missing = Set<String>()
        for statements in parsed {
            for problem in Binder.check(statements, registry: registry, knownNames: known)
            where problem.kind == .unknownPlugin || problem.kind == .unknownFunction {
                if let name = problem.message.split(separator: "'").dropFirst().first { missing.insert(String(name)) }
            }
        }
        report.missing = missing.sorted()
        report.errors += report.missing.map { "uses \($0), which this build does not have" }
        return report
    }

    /// `verify(artifact=...)`: an artifact given as YAML text or by name, checked against the
    /// calling session's registry.
    static func function(repository: ArtifactRepository) -> FunctionDeclaration {
        FunctionDeclaration(
            name: "verify",
            summary: "Checks an artifact (its YAML text, or the name of a loaded one): loading, query parsing and the plugins and functions it needs. Returns {Artifact, Errors, Warnings, Missing}.",
            arguments: [
                ArgumentSpec("artifact", .string, required: true, "YAML text of an artifact, or the name of a loaded artifact."),
                ArgumentSpec("repository", .string, "Accepted for compatibility (the session's artifacts are used)."),
                ArgumentSpec("disable_override", .bool, "Refuse YAML that redefines an artifact already loaded."),
            ],
            returns: .dict,
            examples: ["SELECT verify(artifact='name: Custom.Demo\\nsources:\\n  - query: SELECT * FROM info()') AS V FROM scope()"]
        ) { ctx in
            guard let given = ctx.string("artifact"), !given.isEmpty else {
                ctx.log(.error, "verify(): artifact is required")
                return .null
            }
            let artifact: Artifact
            var warnings: [String] = []
            if let loaded = repository.artifact(named: given) {
                artifact = loaded
            } else {
                do {
                    let (parsed, problems) = try ArtifactLoader.load(text: given, file: "verify()")
                    artifact = parsed
                    warnings = problems.map(\.message)
                } catch {
                    return result(name: "", errors: ["\(error)"], warnings: [], missing: [])
                }
                if ctx.bool("disable_override") == true, repository.artifact(named: artifact.name) != nil {
                    return result(name: artifact.name, errors: ["\(artifact.name) would override an artifact already loaded"], warnings: warnings, missing: [])
                }
            }
            let report = check(artifact, registry: ctx.context.registry)
            return result(name: report.name, errors: report.errors, warnings: warnings + report.warnings, missing: report.missing)
        }
    }

    static func result(name: String, errors: [String], warnings: [String], missing: [String]) -> Value {
        .dict(Dict([
            ("Artifact", .string(name)),
            ("Errors", .list(errors.map { .string($0) })),
            ("Warnings", .list(warnings.map { .string($0) })),
            ("Missing", .list(missing.map { .string($0) })),
        ]))
    }
}
