import Foundation
import Testing
import VQL
@testable import Artifacts

/// verify(): artifacts given by name or as YAML, checked against the session's registry.
@Suite struct VerifyFunctionTests {
    @Test func aLoadedArtifactByNameIsClean() throws {
        let rows = try BuiltinArtifactTests.host("SELECT verify(artifact='Linux.Sys.Users') AS V FROM scope()").rows
        #expect(rows.first.map { JSONWriter.string($0.member("V")) } == #"{"Artifact":"Linux.Sys.Users","Errors":[],"Warnings":[],"Missing":[]}"#)
    }

    @Test func yamlWithUnknownNamesAndBadQueries() throws {
        let yaml = "name: Custom.Broken\nparameters:\n  - name: P\nsources:\n  - query: |\n      LET F(x) = x + 1\n      SELECT F(x=P), no_such_function() FROM no_such_plugin()\n"
        let rows = try BuiltinArtifactTests.host("SELECT verify(artifact=Y) AS V FROM scope()") { $0.root.set("Y", .string(yaml)) }.rows
        let v = rows.first?.member("V") ?? .null
        #expect(v.member("Artifact").stringValue == "Custom.Broken")
        #expect(JSONWriter.string(v.member("Missing")) == #"["no_such_function","no_such_plugin"]"#)
        #expect((v.member("Errors").listElements?.count ?? 0) == 2)
        let unparsable = "name: Custom.Bad\nsources:\n  - query: SELECT FROM WHERE\n"
        let bad = try BuiltinArtifactTests.host("SELECT verify(artifact=Y) AS V FROM scope()") { $0.root.set("Y", .string(unparsable)) }.rows
        #expect(bad.first?.member("V").member("Errors").listElements?.count == 1)
        #expect(bad.first?.member("V").member("Errors").listElements?.first?.stringValue?.isEmpty == false)
    }

    @Test func notYamlAndOverrides() throws {
        let bad = try BuiltinArtifactTests.host("SELECT verify(artifact='{{{ not yaml') AS V FROM scope()").rows
        #expect((bad.first?.member("V").member("Errors").listElements?.count ?? 0) == 1)
        let yaml = "name: Linux.Sys.Users\nsources:\n  - query: SELECT * FROM info()\n"
        let refused = try BuiltinArtifactTests.host("SELECT verify(artifact=Y, disable_override=TRUE) AS V FROM scope()") { $0.root.set("Y", .string(yaml)) }.rows
        #expect(refused.first?.member("V").member("Errors").listElements?.first?.stringValue?.contains("override") == true)
    }
}
