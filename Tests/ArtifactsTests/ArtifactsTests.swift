import Foundation
import Testing
import VQL
@testable import Artifacts

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func run(_ text: String, repository: ArtifactRepository) throws -> (rows: [String], log: [String]) {
    let registry = CoreLibrary.registry()
    repository.install(into: registry)
    let logger = MemoryLogger()
    let session = Session(registry: registry, logger: logger)
    let results = try session.run(text)
    return (((results.last ?? nil) ?? []).map { JSONWriter.string($0) }, logger.messages)
}

@Suite struct ArtifactModelTests {
    let twoSources = """
        name: Test.Numbers
        description: Numbers in two sources.
        parameters:
          - name: Count
            type: int
            default: "3"
          - name: Loud
            type: bool
            default: Y
          - name: Label
            default: n
        sources:
          - name: Small
            query: SELECT format(format='%s%d', args=[Label, _value]) AS N, Loud FROM range(end=Count)
          - name: Big
            query: |
              SELECT _value * 100 AS N FROM range(end=2)
        """

    @Test func loadsAndRunsAsAPluginWithSourceColumn() throws {
        let repository = ArtifactRepository()
        #expect(repository.add(text: twoSources, file: "t.yaml"))
        let (rows, log) = try run("SELECT * FROM Artifact.Test.Numbers(Count=2)", repository: repository)
        #expect(rows == [
            #"{"N":"n0","Loud":true,"_Source":"Test.Numbers/Small"}"#, #"{"N":"n1","Loud":true,"_Source":"Test.Numbers/Small"}"#,
            #"{"N":0,"_Source":"Test.Numbers/Big"}"#, #"{"N":100,"_Source":"Test.Numbers/Big"}"#,
        ], "\(log)")
        let (one, _) = try run("SELECT N FROM Artifact.Test.Numbers(source='Big')", repository: repository)
        #expect(one == [#"{"N":0}"#, #"{"N":100}"#])
    }

    @Test func compilesParametersToTypedLets() throws {
        let repository = ArtifactRepository()
        repository.add(text: twoSources, file: "t.yaml")
        let artifact = try #require(repository.artifact(named: "Test.Numbers"))
        let compiled = try ArtifactCompiler.compile(artifact, parameters: ["Loud": "no"], repository: repository)
        #expect(compiled.prelude == "LET Count <= int(int='''3''')\nLET Loud <= FALSE\nLET Label <= '''n'''\n")
        #expect(throws: ArtifactProblem.self) { try ArtifactCompiler.compile(artifact, parameters: ["Cuont": "1"], repository: repository) }
    }

    @Test func preconditionsGateSources() throws {
        let repository = ArtifactRepository()
        repository.add(text: """
            name: Test.Gated
            sources:
              - name: Never
                precondition: SELECT * FROM scope() WHERE FALSE
                query: SELECT 'never' AS X FROM scope()
              - name: Always
                precondition: SELECT * FROM scope()
                query: SELECT 'always' AS X FROM scope()
            """, file: "g.yaml")
        repository.add(text: "name: Test.Off\nprecondition: SELECT * FROM scope() WHERE 1 = 2\nsources:\n  - query: SELECT 1 AS X FROM scope()\n", file: "o.yaml")
        #expect(try run("SELECT X FROM Artifact.Test.Gated()", repository: repository).rows == [#"{"X":"always"}"#])
        #expect(try run("SELECT X FROM Artifact.Test.Off()", repository: repository).rows.isEmpty)
    }

    @Test func exportsAndImportsComeFirst() throws {
        let repository = ArtifactRepository()
        repository.add(text: "name: Test.Lib\nexport: |\n  LET Double(x) = x * 2\nsources:\n  - query: SELECT 1 AS X FROM scope()\n", file: "lib.yaml")
        repository.add(text: "name: Test.User\nimports: [Test.Lib]\nsources:\n  - query: SELECT Double(x=21) AS Y FROM scope()\n", file: "user.yaml")
        #expect(try run("SELECT * FROM Artifact.Test.User()", repository: repository).rows == [#"{"Y":42}"#])
    }

    @Test func badFilesAreReportedWithFileLineAndColumn() throws {
        let repository = ArtifactRepository()
        repository.add(text: "name: Bad.Yaml\nsources: [\n", file: "yaml.yaml")
        repository.add(text: "name: Bad.Query\nsources:\n  - query: |\n      SELECT * FROM\n      WHERE\n", file: "query.yaml")
        repository.add(text: "name: Bad.Type\nparameters:\n  - name: P\n    type: wibble\nsources: []\n", file: "type.yaml")
        repository.add(text: "description: no name\n", file: "noname.yaml")
        repository.load(directory: try duplicateFolder())
        let messages = repository.problems.filter { !$0.isWarning }.map(\.description)
        #expect(messages.contains { $0.hasPrefix("yaml.yaml:") && $0.contains("YAML") })
        #expect(messages.contains { $0.hasPrefix("query.yaml:5:") && $0.contains("expected") })
        #expect(messages.contains { $0.hasPrefix("type.yaml:4:") && $0.contains("wibble") })
        #expect(messages.contains { $0.hasPrefix("noname.yaml:") && $0.contains("missing 'name'") })
        #expect(messages.contains { $0.contains("duplicate artifact name Dup.One") })
    }

    func duplicateFolder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-dup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in ["a.yaml", "b.yaml"] {
            try "name: Dup.One\nsources:\n  - query: SELECT 1 AS X FROM scope()\n".write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        return dir
    }

    @Test func missingDependenciesAndCyclesAreFound() throws {
        let repository = ArtifactRepository()
        repository.add(text: "name: Cyc.A\nsources:\n  - query: SELECT * FROM Artifact.Cyc.B()\n", file: "a.yaml")
        repository.add(text: "name: Cyc.B\nsources:\n  - query: SELECT * FROM Artifact.Cyc.A()\n", file: "b.yaml")
        repository.add(text: "name: Needs.Missing\nsources:\n  - query: SELECT * FROM Artifact.Not.There()\n", file: "m.yaml")
        let problems = repository.dependencyProblems().map(\.description)
        #expect(problems.contains { $0.contains("dependency cycle") && $0.contains("Cyc.A") })
        #expect(problems.contains { $0.contains("missing artifact Not.There") })
    }

    @Test func unknownKeysAreKeptAndWarned() throws {
        let repository = ArtifactRepository()
        repository.add(text: "name: Has.Extra\nfrobnicate: yes\nsources:\n  - query: SELECT 1 AS X FROM scope()\n", file: "x.yaml")
        #expect(repository.artifact(named: "Has.Extra")?.unknownKeys == ["frobnicate"])
        #expect(repository.problems.contains { $0.isWarning && $0.message.contains("frobnicate") })
    }

    /// The embedded library matches artifacts/ (regenerate with `make artifacts`).
    @Test func builtinLibraryIsCurrentAndLoads() throws {
        let source = packageRoot + "/artifacts"
        var onDisk: [String: String] = [:]
        if let enumerator = FileManager.default.enumerator(atPath: source) {
            while let relative = enumerator.nextObject() as? String {
                guard relative.hasSuffix(".yaml") else { continue }
                onDisk[relative] = try String(contentsOfFile: source + "/" + relative, encoding: .utf8)
            }
        }
        let embedded = Dictionary(BuiltinArtifacts.files, uniquingKeysWith: { a, _ in a })
        #expect(embedded == onDisk, "Sources/Artifacts/BuiltinArtifacts.swift is stale: run `make artifacts`")
        let repository = ArtifactRepository.builtin()
        #expect(repository.problems.filter { !$0.isWarning }.isEmpty, "\(repository.problems)")
        #expect(repository.names.count == onDisk.count)
    }

    /// Velociraptor's own artifact files: every one loads and every query parses.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: packageRoot + "/../shared/conformance/velociraptor-artifacts")))
    func velociraptorArtifactsLoadAndParse() throws {
        let repository = ArtifactRepository()
        repository.load(directory: packageRoot + "/../shared/conformance/velociraptor-artifacts")
        let errors = repository.problems.filter { !$0.isWarning }
        #expect(errors.isEmpty, "\(errors)")
        #expect(repository.names.count >= 60)
    }
}
