import Artifacts
import FuzzDriver

// The artifact loader on arbitrary YAML (what an agent is sent in a collection's definitions, and
// what `--definitions` folders hold); an artifact that loads is compiled to VQL with its defaults.
let repository = ArtifactRepository()

runFuzzer(samples: {
    [
        """
        name: Custom.Fuzz.Sample
        description: A sample.
        parameters:
          - name: Glob
            default: /etc/*
          - name: Count
            type: int
            default: "3"
          - name: Flag
            type: bool
        sources:
          - name: Files
            precondition: SELECT OS FROM info() WHERE OS = 'linux'
            query: |
              SELECT OSPath FROM glob(globs=Glob) LIMIT Count
        """,
    ].map { Array($0.utf8) }
}) { bytes in
    guard let (artifact, _) = try? ArtifactLoader.load(text: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") else { return }
    _ = try? ArtifactCompiler.compile(artifact, repository: repository)
}
