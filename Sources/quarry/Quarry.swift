import ArgumentParser
import Artifacts
import Foundation
import QuarryAccessors
import QuarryCollector
import QuarryDetect
import QuarryNet
import QuarryEvents
import QuarryHost
import QuarryResponse
import VQL

/// The one executable: ask the live host questions in VQL, collect artifacts, run a fleet.
@main
struct Quarry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarry",
        abstract: "Forensic queries over the live host in VQL.",
        version: QuarryVersion.current,
        subcommands: [
            ReplCommand.self, QueryCommand.self, MonitorCommand.self, ArtifactsCommand.self, CollectionCommand.self, CollectorCommand.self, PluginsCommand.self, FunctionsCommand.self, NamesCommand.self, DocsCommand.self,
            ConfigCommand.self, UserCommand.self, ServerCommand.self, ClientCommand.self, ClientsCommand.self, CollectClientCommand.self, FlowsCommand.self, HuntCommand.self, RespondCommand.self, AlertsCommand.self, MonitoringCommand.self, EventsCommand.self, PackageCommand.self,
        ],
        defaultSubcommand: ReplCommand.self
    )

    /// A quarry executable with a collector spec at its end is an offline collector: it runs the
    /// spec instead of the command line.
    static func main() {
        CollectorRunner.runIfEmbedded()
        main(nil)
    }
}

/// Everything `quarry` can call from VQL: the one explicit list of modules' declarations.
enum QuarryRegistry {
    static func make(repository: ArtifactRepository? = nil) -> Registry {
        let registry = CoreLibrary.registry()
        let artifacts = repository ?? ArtifactRepository.builtin()
        artifacts.install(into: registry)
        registry.add(plugins: [CollectPlugin.declaration(repository: artifacts)])
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: EventsLibrary.plugins, functions: EventsLibrary.functions)
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        registry.add(plugins: NetLibrary.plugins, functions: NetLibrary.functions)
        registry.add(plugins: ResponseLibrary.plugins, functions: ResponseLibrary.functions)
        registry.add(plugins: AccessorLibrary.plugins, functions: AccessorLibrary.functions, accessors: AccessorLibrary.accessors)
        registry.add(accessors: [CollectorAccessor(), CollectorAccessor(expandsSparse: false)])
        return registry
    }
}

/// Writes a message to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
}

/// NAME=VALUE options (`--env`, `--args`) as a dictionary; the last one of a name wins.
func keyValues(_ assignments: [String], option: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for assignment in assignments {
        guard let eq = assignment.firstIndex(of: "=") else { throw ValidationError("\(option) takes NAME=VALUE, got '\(assignment)'") }
        result[String(assignment[..<eq])] = String(assignment[assignment.index(after: eq)...])
    }
    return result
}
