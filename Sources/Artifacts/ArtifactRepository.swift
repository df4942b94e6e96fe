import Foundation
import Synchronization
import VQL

/// The artifacts Quarry knows: the built-in set compiled into the binary plus `--definitions`
/// folders (a later definition of a name overrides an earlier one). Every bad file is kept as a
/// located problem instead of stopping the load.
public final class ArtifactRepository: @unchecked Sendable {
    private let state = Mutex<(byName: [String: Artifact], order: [String])>(([:], []))
    private var recordedProblems: [ArtifactProblem] = []
    /// The built-in set is parsed on first use, so commands that never touch an artifact do not
    /// pay for YAML parsing at start-up.
    private let pendingBuiltins = Mutex<Bool>(false)

    public init() {}

    /// Located problems found while loading (errors and warnings).
    public var problems: [ArtifactProblem] {
        loadBuiltinsIfNeeded()
        return recordedProblems
    }

    /// The built-in library (artifacts/ at build time), parsed lazily.
    public static func builtin() -> ArtifactRepository {
        let repository = ArtifactRepository()
        repository.pendingBuiltins.withLock { $0 = true }
        return repository
    }

    private func loadBuiltinsIfNeeded() {
        let pending = pendingBuiltins.withLock { p -> Bool in
            defer { p = false }
            return p
        }
        guard pending else { return }
        var batch: [String: String] = [:]
        for (file, text) in BuiltinArtifacts.files { addParsed(text: text, file: "builtin:" + file, batch: &batch) }
    }

    /// Adds one definition on its own (a later definition of the same name overrides).
    @discardableResult
    public func add(text: String, file: String) -> Bool {
        var batch: [String: String] = [:]
        return add(text: text, file: file, batch: &batch)
    }

    /// Adds one definition; returns false (and records the problem) when it does not load.
    /// `batch` collects the names loaded by one `load(directory:)` call: a name defined twice in
    /// one set of definitions is an error; a later set overrides an earlier one.
    @discardableResult
    public func add(text: String, file: String, batch: inout [String: String]) -> Bool {
        loadBuiltinsIfNeeded()
        return addParsed(text: text, file: file, batch: &batch)
    }

    @discardableResult
    private func addParsed(text: String, file: String, batch: inout [String: String]) -> Bool {
        do {
            let (artifact, warnings) = try ArtifactLoader.load(text: text, file: file)
            recordedProblems += warnings
            if let first = batch[artifact.name] {
                recordedProblems.append(ArtifactProblem(file: file, line: 1, column: 1, message: "duplicate artifact name \(artifact.name) (also in \(first))", isWarning: false))
                return false
            }
            batch[artifact.name] = file
            state.withLock { s in
                if s.byName[artifact.name] == nil { s.order.append(artifact.name) }
                s.byName[artifact.name] = artifact
                for alias in artifact.aliases where s.byName[alias] == nil { s.byName[alias] = artifact }
            }
            return true
        } catch let problem as ArtifactProblem {
            recordedProblems.append(problem)
            return false
        } catch {
            recordedProblems.append(ArtifactProblem(file: file, line: 1, column: 1, message: "\(error)", isWarning: false))
            return false
        }
    }

    /// Loads every *.yaml / *.yml below a folder (sorted, so results do not depend on the file system).
    public func load(directory: String) {
        loadBuiltinsIfNeeded()
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else {
            recordedProblems.append(ArtifactProblem(file: directory, line: 1, column: 1, message: "cannot read the folder", isWarning: false))
            return
        }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            if relative.hasSuffix(".yaml") || relative.hasSuffix(".yml") { files.append(relative) }
        }
        var batch: [String: String] = [:]
        for relative in files.sorted() {
            let path = directory + "/" + relative
            guard let data = FileManager.default.contents(atPath: path) else {
                recordedProblems.append(ArtifactProblem(file: path, line: 1, column: 1, message: "cannot read", isWarning: false))
                continue
            }
            add(text: String(decoding: data, as: UTF8.self), file: path, batch: &batch)
        }
    }

    public func artifact(named name: String) -> Artifact? {
        loadBuiltinsIfNeeded()
        return state.withLock { $0.byName[name] }
    }

    /// Takes an artifact (and the aliases that name it) out of the repository; false when absent.
    @discardableResult
    public func remove(named name: String) -> Bool {
        loadBuiltinsIfNeeded()
        return state.withLock { s in
            guard let artifact = s.byName[name] else { return false }
            for key in [artifact.name] + artifact.aliases where s.byName[key]?.origin == artifact.origin { s.byName[key] = nil }
            s.order.removeAll { $0 == artifact.name }
            return true
        }
    }

    /// Names in load order.
    public var names: [String] {
        loadBuiltinsIfNeeded()
        return state.withLock { $0.order }
    }

    public var artifacts: [Artifact] {
        loadBuiltinsIfNeeded()
        return state.withLock { s in s.order.compactMap { s.byName[$0] } }
    }

    /// Artifacts this one needs: imports and `Artifact.X(` calls in its queries.
    public static func dependencies(of artifact: Artifact) -> [String] {
        var names = artifact.imports
        let texts = [artifact.export, artifact.precondition].compactMap { $0 } + artifact.sources.map(\.query)
        for text in texts {
            var rest = Substring(text)
            while let range = rest.range(of: "Artifact.") {
                let tail = rest[range.upperBound...]
                let name = tail.prefix { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }
                if tail.dropFirst(name.count).first == "(", !name.isEmpty { names.append(String(name)) }
                rest = tail
            }
        }
        return names
    }

    /// Missing dependencies and dependency cycles, as located problems.
    public func dependencyProblems() -> [ArtifactProblem] {
        var found: [ArtifactProblem] = []
        let all = artifacts
        for artifact in all {
            for dependency in Self.dependencies(of: artifact) where self.artifact(named: dependency) == nil {
                found.append(ArtifactProblem(file: artifact.origin, line: 1, column: 1, message: "\(artifact.name) depends on missing artifact \(dependency)", isWarning: true))
            }
        }
        var visiting = Set<String>()
        var done = Set<String>()
        func visit(_ name: String, _ path: [String]) {
            if done.contains(name) { return }
            if visiting.contains(name) {
                let cycle = (path.drop { $0 != name } + [name]).joined(separator: " → ")
                let origin = artifact(named: name)?.origin ?? name
                found.append(ArtifactProblem(file: origin, line: 1, column: 1, message: "dependency cycle: \(cycle)", isWarning: false))
                return
            }
            guard let a = artifact(named: name) else { return }
            visiting.insert(name)
            for d in Self.dependencies(of: a) where d != name { visit(d, path + [name]) }
            visiting.remove(name)
            done.insert(name)
        }
        for a in all { visit(a.name, []) }
        return found
    }

    /// Makes `Artifact.NAME(param=…, source=…)` callable from VQL, and `verify()` check artifacts.
    public func install(into registry: Registry) {
        registry.add(functions: [ArtifactVerifier.function(repository: self)])
        registry.addPluginResolver { [self] name in
            guard name.hasPrefix("Artifact."), let artifact = artifact(named: String(name.dropFirst("Artifact.".count))) else { return nil }
            return ArtifactPlugin.declaration(for: artifact, repository: self)
        }
    }
}

/// Runs an artifact as a plugin: parameters from the arguments, preconditions checked, sources
/// run (sharing a scope unless some source has its own precondition), `_Source` on every row
/// of a multi-source artifact.
enum ArtifactPlugin {
    static func declaration(for artifact: Artifact, repository: ArtifactRepository) -> PluginDeclaration {
        PluginDeclaration(
            name: "Artifact." + artifact.name, summary: artifact.description ?? "",
            arguments: artifact.parameters.map { ArgumentSpec($0.name, .string, $0.description ?? "") }
                + [ArgumentSpec("source", .string, "Run only this source.")],
            strictArguments: true
        ) { ctx in
            // Text goes through the parameter's type conversion; a typed value (a list of
            // dicts for a csv parameter, a number, a bool) is bound in the scope as given.
            var overrides: [String: String] = [:]
            let scope = ctx.env.child()
            var bound = Set<String>()
            for name in ctx.argumentNames where name != "source" {
                guard let value = ctx.value(name)?.unwrappedScalar else { continue }
                if let text = value.stringValue {
                    overrides[name] = text
                } else if value.isNull {
                    overrides[name] = ""
                } else {
                    scope.set(name, value.materialized())
                    bound.insert(name)
                }
            }
            let compiled = try ArtifactCompiler.compile(artifact, parameters: overrides, bound: bound, repository: repository)
            return try run(compiled, only: ctx.string("source"), in: scope)
        }
    }

    /// Whether a precondition yields a row. The artifact's parameters (and exports) are bound in
    /// its scope first, as in Velociraptor: Linux.Sys.BashShell picks its source on `Stateful`.
    static func holds(_ condition: String?, prelude: String = "", in env: Env) throws -> Bool {
        guard let condition, !condition.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return true }
        let cursor = try StatementRunner.open(try Parser.parse(prelude + "\n" + condition), in: env.child())
        defer { cursor.close() }
        return try cursor.next() != nil
    }

    static func run(_ compiled: CompiledArtifact, only: String?, in env: Env) throws -> RowCursor {
        guard try holds(compiled.precondition, prelude: compiled.prelude, in: env.child()) else { return ArrayCursor([]) }
        let selected = compiled.sources.filter { only == nil || $0.name == only }
        if let only, selected.isEmpty {
            env.context.log(.error, "\(compiled.name): no source named \(only)")
            return ArrayCursor([])
        }
        let tagSources = compiled.sources.count > 1
        var index = 0
        var current: RowCursor?
        var label = ""
        let plan = try SourcePlan(compiled, in: env)
        return GeneratorCursor(onClose: { current?.close() }) {
            while true {
                if let cursor = current {
                    if let row = try cursor.next() {
                        guard tagSources else { return row }
                        if case .dict(var d) = row {
                            d["_Source"] = .string(label)
                            return .dict(d)
                        }
                        var d = Dict()
                        if case .object(let o) = row { d = o.materialized() } else { d["_value"] = row }
                        d["_Source"] = .string(label)
                        return .dict(d)
                    }
                    cursor.close()
                    current = nil
                }
                guard index < selected.count else { return nil }
                let source = selected[index]
                index += 1
                guard let step = try plan.prepare(source) else { continue }
                label = step.label
                current = try StatementRunner.open(step.statements, in: step.scope)
            }
        }
    }
}

/// How an artifact's sources run, one after another: in one shared scope (the prelude bound
/// once) when no source has its own precondition, otherwise each in a fresh scope with the
/// prelude. Used by `Artifact.NAME()` and by the collector, so both run sources the same way.
final class SourcePlan {
    struct Step {
        let label: String
        let statements: [Statement]
        let scope: Env
    }

    private let compiled: CompiledArtifact
    private let env: Env
    private let prelude: [Statement]
    private let shared: Env
    private var preludeBound = false

    init(_ compiled: CompiledArtifact, in env: Env) throws {
        self.compiled = compiled
        self.env = env
        self.prelude = try Parser.parse(compiled.prelude)
        self.shared = env.child()
    }

    /// The statements and scope for a source, or nil when its precondition does not hold.
    func prepare(_ source: CompiledArtifact.Source) throws -> Step? {
        let scope = compiled.sharedScope ? shared : env.child()
        guard try ArtifactPlugin.holds(source.precondition, prelude: compiled.prelude, in: scope) else { return nil }
        var statements = try Parser.parse(source.query)
        if !compiled.sharedScope || !preludeBound {
            statements = prelude + statements
            preludeBound = true
        }
        return Step(label: compiled.name + (source.name.map { "/" + $0 } ?? ""), statements: statements, scope: scope)
    }
}
