import Fleet
import Testing
import VQL

/// The server names' declarations: documented, with examples that parse and bind, and without
/// the server they fail with a clear message instead of a crash.
@Suite struct ServerDeclarationTests {
    static func registry() -> Registry {
        let registry = CoreLibrary.registry()
        registry.add(plugins: ServerPlugins.plugins, functions: ServerPlugins.functions)
        return registry
    }

    static var examples: [String] { ServerPlugins.plugins.flatMap(\.examples) + ServerPlugins.functions.flatMap(\.examples) }

    @Test(arguments: examples)
    func exampleBinds(_ example: String) throws {
        let problems = Binder.check(try Parser.parse(example), registry: Self.registry())
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func everyNameIsDocumentedOnce() {
        let names = ServerPlugins.plugins.map(\.name) + ServerPlugins.functions.map(\.name)
        #expect(Set(names).count == names.count)
        for plugin in ServerPlugins.plugins {
            #expect(!plugin.examples.isEmpty && !plugin.summary.isEmpty, "\(plugin.name)")
            for argument in plugin.arguments { #expect(!argument.doc.isEmpty, "\(plugin.name)(\(argument.name))") }
        }
        for function in ServerPlugins.functions {
            #expect(!function.examples.isEmpty && !function.summary.isEmpty, "\(function.name)")
            for argument in function.arguments { #expect(!argument.doc.isEmpty, "\(function.name)(\(argument.name))") }
        }
    }

    @Test func withoutAServerFunctionsAreNullAndPluginsFail() throws {
        let logger = MemoryLogger()
        let session = Session(registry: Self.registry(), logger: logger)
        let results = try session.run("SELECT whoami() AS Me, client_info(client_id='C.1') AS Info FROM scope()")
        guard case .dict(let row)? = results.last??.first else {
            Issue.record("no row")
            return
        }
        for key in ["Me", "Info"] {
            guard case .null? = row[key] else {
                Issue.record("\(key) is not NULL")
                continue
            }
        }
        #expect(logger.messages.contains { $0.contains("whoami") && $0.contains("--server") })
        #expect(throws: (any Error).self) { try session.run("SELECT * FROM clients()") }
    }
}
