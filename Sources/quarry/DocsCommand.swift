import ArgumentParser
import VQL

/// `quarry docs`: the VQL reference in Markdown, generated from the plugin and function
/// declarations (docs/reference.md is this output; a test keeps it current).
struct DocsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "docs", abstract: "Print the VQL reference (Markdown) generated from the declarations.")

    func run() {
        let registry = QuarryRegistry.make()
        print(Describe.markdown(plugins: Array(registry.plugins.values), functions: Array(registry.functions.values),
                                accessors: Array(registry.accessors.values)), terminator: "")
    }
}
