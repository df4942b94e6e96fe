import FleetCore
import Testing

/// The one decision behind the agent's and the server's monitoring: plain values in, plain values out.
@Suite struct MonitorPlanTests {
    func entry(_ name: String, _ parameters: [String: String] = [:]) -> MonitoringEntry {
        MonitoringEntry(artifact: name, parameters: parameters)
    }

    @Test func startsNewStopsRemovedAndRestartsChanged() {
        let running: [String: [String: String]] = ["A": [:], "B": ["X": "1"], "C": [:]]
        let wanted = ["B": entry("B", ["X": "2"]), "C": entry("C"), "D": entry("D")]
        let plan = MonitorPlan.plan(running: running, wanted: wanted)
        #expect(plan.stop == ["A", "B"])
        #expect(plan.start.map(\.artifact) == ["B", "D"])
        #expect(plan.start.first?.parameters == ["X": "2"])
    }

    @Test func anUnchangedTableChangesNothing() {
        let wanted = ["A": entry("A", ["K": "v"]), "B": entry("B")]
        #expect(MonitorPlan.plan(running: wanted.mapValues(\.parameters), wanted: wanted) == MonitorPlan(stop: [], start: []))
        #expect(MonitorPlan.plan(running: [:], wanted: [:]) == MonitorPlan(stop: [], start: []))
        #expect(MonitorPlan.plan(running: ["A": [:]], wanted: [:]) == MonitorPlan(stop: ["A"], start: []))
    }
}
