/// When a query that should run forever (a server event artifact) ended — an error, or a source
/// that gave up — it runs again after a pause that doubles with each quick end, up to a ceiling,
/// and starts over from the first pause once a run lasted long enough to count as healthy. A pure
/// state machine: the caller passes the times, so tests drive it with a fake clock.
public struct RestartBackoff: Sendable, Equatable {
    /// The pause after the first quick end, and the most a pause grows to.
    public let firstPause: Double
    public let lastPause: Double
    /// A run at least this long (seconds) was healthy: the pause starts over.
    public let healthyRun: Double
    /// Quick ends in a row so far.
    public private(set) var failures = 0
    /// The pause the next quick end will get.
    public private(set) var nextPause: Double

    public init(firstPause: Double = 1, lastPause: Double = 300, healthyRun: Double = 60) {
        self.firstPause = max(0, firstPause)
        self.lastPause = max(self.firstPause, lastPause)
        self.healthyRun = healthyRun
        nextPause = self.firstPause
    }

    /// A run that started at `startedAt` ended at `now`: when (seconds, same clock) to start it again.
    public mutating func ended(startedAt: Double, now: Double) -> Double {
        if now - startedAt >= healthyRun {
            failures = 0
            nextPause = firstPause
        }
        let pause = nextPause
        failures += 1
        nextPause = min(lastPause, max(firstPause, pause * 2))
        return now + pause
    }
}
