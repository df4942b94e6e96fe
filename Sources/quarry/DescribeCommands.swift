import ArgumentParser
import Foundation
import VQL

/// `quarry plugins [pattern]`: what plugins exist, their arguments and columns.
struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plugins", abstract: "List plugins with their arguments and columns.")

    @Argument(help: "Only names containing this text.")
    var pattern: String?

    func run() {
        let registry = QuarryRegistry.make()
        for plugin in registry.plugins.values.sorted(by: { $0.name < $1.name })
        where pattern.map({ plugin.name.localizedCaseInsensitiveContains($0) }) ?? true {
            print(Describe.plugin(plugin))
        }
    }
}

/// `quarry functions [pattern]`: what functions exist and their arguments.
struct FunctionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "functions", abstract: "List functions with their arguments.")

    @Argument(help: "Only names containing this text.")
    var pattern: String?

    func run() {
        let registry = QuarryRegistry.make()
        for function in registry.functions.values.sorted(by: { $0.name < $1.name })
        where pattern.map({ function.name.localizedCaseInsensitiveContains($0) }) ?? true {
            print(Describe.function(function))
        }
    }
}
