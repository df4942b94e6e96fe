import Foundation
import Synchronization

/// Keeps a collection under a CPU budget (`--cpu-limit PCT`, percent of one core): plugins that
/// walk the disk or read file content call `pace()` in their loops, and it sleeps whenever the
/// process has used more CPU than the budget since the last check.
///
/// The budget may be lowered while the collection runs (`lower(toPercent:)`): the fleet agent's
/// watchdog does so for a collection that uses more CPU than the agent allows.
public final class CPUThrottle: Sendable {
    private let fraction: Mutex<Double>
    private let state: Mutex<(wall: Double, cpu: Double, calls: Int)>
    private let cpuClock: @Sendable () -> Double

    /// `cpuClock` measures the CPU to budget: the whole process by default.
    public init(percent: Double, cpuClock: @escaping @Sendable () -> Double = CPUThrottle.cpuSeconds) {
        self.fraction = Mutex(max(0.01, percent / 100))
        self.cpuClock = cpuClock
        self.state = Mutex((CPUThrottle.wallSeconds(), cpuClock(), 0))
    }

    /// The budget now, in percent of one core.
    public var percent: Double { fraction.withLock { $0 } * 100 }

    /// Lowers the budget (never raises it: a request's own limit stays the most it may use).
    public func lower(toPercent percent: Double) {
        fraction.withLock { $0 = min($0, max(0.01, percent / 100)) }
    }

    static func wallSeconds() -> Double { Date().timeIntervalSince1970 }
    /// CPU time of the whole process (ISO C clock()).
    public static func cpuSeconds() -> Double { Double(clock()) / Double(CLOCKS_PER_SEC) }

    public func pace() {
        let delay: Double = state.withLock { s in
            s.calls += 1
            guard s.calls % 16 == 0 else { return 0 }
            let wall = CPUThrottle.wallSeconds()
            let cpu = cpuClock()
            let usedWall = wall - s.wall
            let usedCPU = cpu - s.cpu
            guard usedWall >= 0.05 else { return 0 }
            // Sleep long enough that usedCPU / elapsed falls back to the budget.
            let needed = usedCPU / fraction.withLock({ $0 }) - usedWall
            s.wall = wall + max(0, needed)
            s.cpu = cpu
            return max(0, min(needed, 2))
        }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
    }
}
