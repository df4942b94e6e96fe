import ArgumentParser
import Fleet
import Artifacts
import Foundation
import VQL

/// `quarry artifacts list|show|verify`: the artifact library.
struct ArtifactsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifacts", abstract: "List, show and verify artifacts.",
        subcommands: [ListArtifacts.self, ShowArtifact.self, VerifyArtifacts.self, CollectArtifacts.self])
}

/// Options shared by the artifact commands.
struct DefinitionOptions: ParsableArguments {
    @Option(name: .customLong("definitions"), help: "Also load artifact definitions from this folder (repeatable; later ones override).")
    var directories: [String] = []

    func repository() -> ArtifactRepository {
        let repository = ArtifactRepository.builtin()
        for directory in directories { repository.load(directory: directory) }
        return repository
    }
}

struct ListArtifacts: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List artifacts whose name matches a regex.")
    @Argument(help: "A regular expression (case-insensitive).") var pattern: String?
    @OptionGroup var definitions: DefinitionOptions

    func run() throws {
        let repository = definitions.repository()
        let regex = try pattern.map { try CompiledRegex($0, caseInsensitive: true) }
        for artifact in repository.artifacts where regex?.matches(artifact.name) ?? true {
            let summary = (artifact.description ?? "").split(separator: "\n").first.map(String.init) ?? ""
            print("\(artifact.name)\t\(artifact.type.rawValue)\t\(summary)")
        }
        for problem in repository.problems { printError(problem.description) }
    }
}

struct ShowArtifact: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show an artifact's YAML and parameters, or the VQL it compiles to.")
    @Argument(help: "The artifact name.") var name: String
    @Flag(help: "Print the compiled VQL of each source instead.") var compiled = false
    @Option(name: .customLong("args"), help: "Parameter override Name=Value (repeatable).") var arguments: [String] = []
    @OptionGroup var definitions: DefinitionOptions

    func run() throws {
        let repository = definitions.repository()
        guard let artifact = repository.artifact(named: name) else {
            let hint = NameSuggester.closest(to: name, in: repository.names).map { " (did you mean \($0)?)" } ?? ""
            throw ValidationError("no artifact named \(name)\(hint)")
        }
        if compiled {
            let overrides = try keyValues(arguments, option: "--args")
            let result = try ArtifactCompiler.compile(artifact, parameters: overrides, repository: repository)
            for source in result.sources {
                print("-- \(artifact.name)\(source.name.map { "/" + $0 } ?? "")")
                print(result.text(for: source))
                print()
            }
            return
        }
        print(artifact.text)
        if !artifact.parameters.isEmpty {
            print("Parameters:")
            for p in artifact.parameters {
                print("  \(p.name) (\(p.type)) default=\(p.defaultValue.map { "'\($0)'" } ?? "none")  \(p.description ?? "")")
            }
        }
    }
}

struct VerifyArtifacts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Load every artifact in the folders (default: the built-in set), parse every query, and report the plugins and functions Quarry lacks.")
    @Argument(help: "Folders of artifact YAML files.") var directories: [String] = []

    func run() throws {
        let repository: ArtifactRepository
        if directories.isEmpty {
            repository = ArtifactRepository.builtin()
        } else {
            repository = ArtifactRepository.builtin()
            for d in directories { repository.load(directory: d) }
        }
        let registry = QuarryRegistry.make(repository: repository)
        // Server artifacts run with the server's names too (as `quarry query --server` offers them).
        let serverRegistry = QuarryRegistry.make(repository: repository)
        serverRegistry.add(plugins: ServerPlugins.plugins, functions: ServerPlugins.functions)
        var failed = 0
        var missingCounts: [String: Int] = [:]
        let loadedFromFolders = repository.artifacts.filter { a in directories.isEmpty || directories.contains { a.origin.hasPrefix($0) } }
        for artifact in loadedFromFolders {
            let names = artifact.type == .server || artifact.type == .serverEvent ? serverRegistry : registry
            let missing = ArtifactVerifier.check(artifact, registry: names).missing
            for name in missing { missingCounts[name, default: 0] += 1 }
            print("\(artifact.name): loaded" + (missing.isEmpty ? "" : "; uses what Quarry lacks: " + missing.joined(separator: ", ")))
        }
        for problem in repository.problems where !problem.isWarning {
            failed += 1
            print("FAILED \(problem)")
        }
        for problem in repository.dependencyProblems() where !problem.isWarning {
            failed += 1
            print("FAILED \(problem)")
        }
        print("\(loadedFromFolders.count) loaded, \(failed) failed")
        if !missingCounts.isEmpty {
            print("missing plugins/functions (artifacts using each): " + missingCounts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// `--client-config`: run as the agent of a fleet would, so queries see that agent's `config`
/// (its frontends and labels; `ClientScope`) — what Velociraptor's `--config client.yaml` gives.
struct ClientScopeOptions: ParsableArguments {
    @Option(name: .customLong("client-config"), help: "An agent's client.yaml: queries see its frontends and labels as config.server_urls and config.Labels.")
    var path: String?

    /// The `config` variable: this fleet agent's, or the program's own without a fleet.
    func config() throws -> Value {
        // The command line keeps local state under ~/.quarry/local (made 0700 when missing).
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? NSHomeDirectory()
        let local = ClientScope.localStorage(home + "/.quarry").flatMap { _ in ClientScope.localStorage(home + "/.quarry/local") }
        guard let path else { return ClientScope.config(localStorage: local) }
        let client = try ConfigFile.load(ClientConfig.self, from: path)
        return ClientScope.config(serverURLs: client.serverURLs, labels: client.labels, caCertificate: client.caCertificate, localStorage: local)
    }
}
