import Fleet
import FleetCore
import Foundation
import Testing

/// A collection on an agent sees that agent's configuration as `config` (Velociraptor's shape:
/// `server_urls` with a trailing slash, `Version`, `Labels`) without its secrets, and reaches its
/// own frontend over TLS through the CA the agent pins — what Linux.Remediation.Quarantine does to
/// check the server is still reachable.
extension FleetTests {
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetClientScopeTests {
    @Test func collectionsSeeTheAgentsConfigAndReachTheirFrontend() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let out = try fleet.cli(["collect", id, "Test.ClientConfig", "--wait", "--format", "jsonl"])
        #expect(out.status == 0, "\(out.stderr)")
        let line = try #require(out.stdout.split(separator: "\n").first { $0.contains("Urls") }, "\(out.stdout)")
        let row = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(row["Urls"] as? [String] == ["https://127.0.0.1:\(fleet.port)/"])
        #expect(row["Name"] as? String == "quarry")
        #expect(row["Host"] as? String == "127.0.0.1:\(fleet.port)")
        #expect(row["Secret"] is NSNull, "the enrolment secret must not reach queries")
        // A sub-query of one row reads as that row.
        let fetched = try #require(row["Fetched"] as? [String: Any], "\(line)")
        #expect(fetched["Response"] as? Int == 200, "\(line)")
        let certificate = try ConfigFile.load(ServerConfig.self, from: fleet.serverConfig).server.certificate
        #expect((fetched["Content"] as? String)?.trimmingCharacters(in: .whitespacesAndNewlines) == certificate.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
}
