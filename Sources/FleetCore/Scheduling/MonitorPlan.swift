/// What must change so that the monitors running (on an agent, or rules in the server) match a
/// monitoring table: stop those removed or whose parameters changed, start those new or changed.
/// Both the agent and the server's rule runner decide with this one pure function; they only
/// differ in how they start and stop a monitor.
public struct MonitorPlan: Equatable, Sendable {
    /// Artifacts to stop, in name order.
    public var stop: [String]
    /// Entries to start, in artifact order (a changed entry is in both lists).
    public var start: [MonitoringEntry]

    public init(stop: [String], start: [MonitoringEntry]) {
        self.stop = stop
        self.start = start
    }

    /// `running`: artifact → the parameters it runs with. `wanted`: artifact → its table entry.
    public static func plan(running: [String: [String: String]], wanted: [String: MonitoringEntry]) -> MonitorPlan {
        let stop = running.keys.filter { wanted[$0]?.parameters != running[$0] }.sorted()
        let start = wanted.values
            .filter { running[$0.artifact] == nil || stop.contains($0.artifact) }
            .sorted { $0.artifact < $1.artifact }
        return MonitorPlan(stop: stop, start: start)
    }
}
