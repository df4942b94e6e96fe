import Fleet
import FleetCore
import Foundation
import Testing

/// rekey() in a real agent: Generic.Client.Rekey makes the agent drop its identity after the
/// wait, enrol again and come back as a new client, while its collection still finishes.
extension FleetTests {
    @Test func rekeyEnrolsTheAgentAsANewClient() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let old = try #require(fleet.clientId("a"))
        let collect = try fleet.cli(["collect", old, "Generic.Client.Rekey", "--args", "Wait=2"])
        try fleet.check(collect)
        let flow = collect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 30, "the rekey flow finishes") { try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state.isFinal }
        let rows = try await fleet.results(["flow_id": flow])
        #expect(rows.count == 1 && rows.first?.json.contains("\"Rekeyed\":true") == true)
        try await fleet.waitUntil(timeout: 60, "a new client id") { (fleet.clientId("a") ?? old) != old }
        let new = try #require(fleet.clientId("a"))
        #expect(new != old && new.hasPrefix("C."))
        try await fleet.waitForAgents(["a"])
        #expect(fleet.log("agent-a").contains("rekey: identity removed"))
    }
}
