import Fleet
import FleetCore
import Foundation
import Testing

/// The agent holds itself to its memory ceiling and CPU budget: a real agent process, tight limits,
/// a CPU burner and a memory hog.
extension FleetTests {
    static func watchdogLimits() -> AgentLimits {
        var limits = AgentLimits()
        limits.maxMemoryMB = 150
        limits.maxCPUPercent = 10
        limits.cpuWindowSeconds = 8
        limits.sampleIntervalSeconds = 0.5
        limits.cooldownSeconds = 300
        limits.strikes = 2
        return limits
    }

    /// Starts a collection and waits for its final state; returns the flow.
    static func collectAndWait(_ fleet: FleetHarness, _ client: String, _ arguments: [String]) async throws -> FlowRecord {
        let collect = try fleet.cli(["collect", client] + arguments + ["--timeout", "300"])
        try fleet.check(collect)
        let flow = collect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 120, "flow \(flow) of \(arguments) ends") {
            try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state.isFinal
        }
        return try await fleet.get("/flows/\(flow)", as: FlowView.self).flow
    }

    @Test func collectionsOverTheAgentsLimitsAreCancelledAndRepeatOffendersRefused() async throws {
        let fleet = try FleetHarness(agentLimits: Self.watchdogLimits())
        try await fleet.startServer()
        let agent = try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))

        // A query that burns CPU without pacing itself: throttled, then cancelled one window later.
        let started = Date()
        let burn = try await Self.collectAndWait(fleet, id, ["Test.Burn"])
        let burnSeconds = Date().timeIntervalSince(started)
        #expect(burn.state == .error)
        #expect(burn.errors.first?.hasPrefix("cancelled: CPU budget 10% over 8 s exceeded (the collection used ") == true, "\(burn.errors)")
        #expect(burnSeconds < 60, "the burner ran \(burnSeconds) s")
        #expect(fleet.log("agent-a").contains("over its CPU budget, paced to 8.0% of one core"))

        // A query that holds a huge list in memory (50,000 rows of 20 kB, 1 GB whole): cancelled at
        // the ceiling, long before it is whole.
        let hog = try await Self.collectAndWait(fleet, id, ["Test.Hog", "--args", "Count=50000"])
        let peak = Self.peakRSS(agent.processIdentifier)
        #expect(hog.state == .error)
        // Memory grows fast here: by the next sample it may be past the ceiling or past the
        // collection's own limit (150 MB of growth, the ceiling by default); either cancels it.
        let memoryReasons = ["cancelled: memory ceiling 150 MB exceeded (the agent's resident memory reached ", "cancelled: collection memory limit 150 MB exceeded (the agent's resident memory grew by "]
        #expect(memoryReasons.contains { hog.errors.first?.hasPrefix($0) == true }, "\(hog.errors)")
        // Sampled twice a second, the ceiling is overshot by what the query allocates between two
        // samples (467 MiB peak seen on an idle machine); the whole hog would take well over 1 GiB.
        #expect(peak < 768 * 1024, "agent peak RSS \(peak / 1024) MiB")
        print("watchdog: burner ended after \(Int(burnSeconds)) s: \(burn.errors.first ?? ""); hog: \(hog.errors.first ?? ""); agent peak RSS \(peak / 1024) MiB")

        // The agent is alive and serves the next collection in full.
        #expect(agent.isRunning)
        let rows = try await Self.collectAndWait(fleet, id, ["Test.Rows", "--args", "Count=1000"])
        #expect(rows.state == .finished && rows.rows == 1000, "\(rows.state) \(rows.rows) \(rows.errors)")

        // A second cancellation of the same artifact, then it is refused for the cool-down, with the reason.
        let again = try await Self.collectAndWait(fleet, id, ["Test.Burn"])
        #expect(again.errors.first?.hasPrefix("cancelled: CPU budget") == true, "\(again.errors)")
        let refused = try await Self.collectAndWait(fleet, id, ["Test.Burn"])
        #expect(refused.state == .error)
        #expect(refused.errors.first?.hasPrefix("refused: Test.Burn was cancelled by the agent's limits 2 times in the last 300 s (last time: cancelled: CPU budget 10%") == true, "\(refused.errors)")
        #expect(refused.rows == 0)

        // Other artifacts still run, and the agent is still the same process.
        let after = try await Self.collectAndWait(fleet, id, ["Test.Rows", "--args", "Count=10"])
        #expect(after.state == .finished && after.rows == 10)
        #expect(agent.isRunning && fleet.agents["a"]?.processIdentifier == agent.processIdentifier)
    }

    /// An event artifact is held to the same limits: one that burns CPU is cancelled and logged,
    /// started again, and held back once it has been cancelled `strikes` times.
    @Test func eventArtifactsOverTheLimitsAreStoppedAndHeldBack() async throws {
        let fleet = try FleetHarness(agentLimits: Self.watchdogLimits())
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        try fleet.check(fleet.cli(["monitoring", "add", "Test.BurnEvents"]))
        try await fleet.waitUntil(timeout: 120, "the burning event artifact is stopped twice and held back") {
            let log = fleet.log("agent-a")
            return log.components(separatedBy: "monitoring: Test.BurnEvents stopped by the agent's limits").count > 2
                && log.contains("monitoring: Test.BurnEvents held back")
        }
        let log = fleet.log("agent-a")
        #expect(log.contains("CPU budget"), "the reason names the budget")
        try fleet.check(fleet.cli(["monitoring", "rm", "Test.BurnEvents"]))
    }
}
