import ArgumentParser
import Fleet
import Foundation
import QuarryNet
import VQL

/// `quarry names`: every name VQL can call here, as JSON, grouped by kind and by where it runs
/// (endpoint or `--server`). Feeds `make parity`, which compares it with Velociraptor's reference.
struct NamesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "names", abstract: "Print every plugin, function and accessor name as JSON (endpoint and server apart).")

    func run() {
        let endpoint = QuarryRegistry.make()
        let server = Registry()
        server.add(plugins: ServerPlugins.plugins + NetLibrary.serverPlugins, functions: ServerPlugins.functions)
        let names: [String: [String]] = [
            "plugins": endpoint.plugins.keys.sorted(),
            "functions": endpoint.functions.keys.sorted(),
            "server_plugins": server.plugins.keys.sorted(),
            "server_functions": server.functions.keys.sorted(),
            "accessors": endpoint.accessors.keys.sorted(),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: names, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    }
}
