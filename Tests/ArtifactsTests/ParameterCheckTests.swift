import Artifacts
import Testing

/// ParameterCheck: what each declared parameter type accepts, as the console's forms and the API
/// use it before anything reaches an agent.
@Suite struct ParameterCheckTests {
    static func artifact() throws -> Artifact {
        let text = """
            name: Test.Types
            parameters:
              - {name: N, type: int}
              - {name: F, type: float}
              - {name: B, type: bool}
              - {name: C, type: choices, choices: [a, b]}
              - {name: M, type: multichoice, choices: [x, y]}
              - {name: R, type: regex}
              - {name: RA, type: regex_array}
              - {name: J, type: json}
              - {name: JA, type: json_array}
              - {name: T, type: timestamp}
              - {name: S}
            sources:
              - query: SELECT * FROM scope()
            """
        return try ArtifactLoader.load(text: text, file: "test.yaml").0
    }

    @Test(arguments: [
        ("N", "42", true), ("N", "-7", true), ("N", "4.2", false), ("N", "many", false), ("N", "", true),
        ("F", "0.25", true), ("F", "1e3", true), ("F", "half", false),
        ("B", "Y", true), ("B", "yes", true), ("B", "FALSE", true), ("B", "0", true), ("B", "perhaps", false),
        ("C", "a", true), ("C", "c", false), ("C", "A", false),
        ("M", #"["x","y"]"#, true), ("M", #"["z"]"#, false), ("M", "x", false),
        ("R", "^a+$", true), ("R", "([", false),
        ("RA", #"["a", "b+"]"#, true), ("RA", #"["(["]"#, false), ("RA", "a", false),
        ("J", #"{"k": 1}"#, true), ("J", "{k", false),
        ("JA", "[1, 2]", true), ("JA", #"{"k": 1}"#, false),
        ("T", "1700000000", true), ("T", "2026-12-02T10:00:00Z", true), ("T", "yesterday-ish", false),
        ("S", "anything at all", true),
    ])
    func valuesFitTheirTypes(name: String, value: String, fits: Bool) throws {
        let problems = ParameterCheck.problems(try Self.artifact(), [name: value])
        #expect(problems.isEmpty == fits, "\(name)=\(value): \(problems)")
        if !fits { #expect(problems.first?.hasPrefix(name + ":") == true, "\(problems)") }
    }

    @Test func unknownNamesAreRefusedWithASuggestion() throws {
        #expect(ParameterCheck.problems(try Self.artifact(), ["Nn": "1"]) == ["Test.Types has no parameter 'Nn' (did you mean 'N'?)"])
    }
}
