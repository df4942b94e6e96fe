import Testing
@testable import VQL

/// Every example in a core plugin or function declaration runs without error and yields rows:
/// the examples shown by `quarry plugins`, the REPL's `.describe` and docs/ are real.
@Suite struct DeclarationExampleTests {
    static var examples: [String] {
        CoreLibrary.plugins.flatMap(\.examples) + CoreLibrary.functions.flatMap(\.examples)
    }

    @Test(arguments: examples)
    func exampleRuns(_ example: String) throws {
        let logger = MemoryLogger()
        let session = Session(registry: CoreLibrary.registry(), logger: logger)
        let problems = Binder.check(try Parser.parse(example), registry: session.context.registry)
        #expect(problems.isEmpty, "\(problems)")
        let results = try session.run(example)
        #expect(!(results.last??.isEmpty ?? true), "no rows from: \(example)")
        #expect(!logger.messages.contains { $0.hasPrefix("ERROR") }, "\(logger.messages)")
    }

    @Test func everyDeclarationHasAnExampleAndDocs() {
        for p in CoreLibrary.plugins {
            #expect(!p.examples.isEmpty, "plugin \(p.name) has no example")
            #expect(!p.summary.isEmpty)
        }
        for f in CoreLibrary.functions {
            #expect(!f.examples.isEmpty, "function \(f.name) has no example")
            for a in f.arguments { #expect(!a.doc.isEmpty, "\(f.name)(\(a.name)) has no doc") }
        }
    }
}
