import FleetCore
import Foundation
import Testing

/// The watchdog's rules, driven by made-up samples and a fake clock.
@Suite struct AgentWatchdogTests {
    static let mb: Int64 = 1_000_000

    static func limits(_ change: (inout AgentLimits) -> Void = { _ in }) -> AgentLimits {
        var limits = AgentLimits()
        limits.cpuWindowSeconds = 10
        change(&limits)
        return limits
    }

    /// Feeds one sample per second from `from` to `to`, the collection using `percent` of a core and
    /// the process the same plus `extra`; returns every verdict that was not `.ok`, with its time.
    static func run(
        _ watchdog: inout AgentWatchdog, _ id: String = "F1", from: Int, to: Int, percent: Double, resident: Int64 = 50 * mb,
        cpu: inout Double, process: inout Double, extra: Double = 0
    ) -> [(Int, WatchdogVerdict)] {
        var seen: [(Int, WatchdogVerdict)] = []
        for t in from...to {
            if t > from {
                cpu += percent / 100
                process += (percent + extra) / 100
            }
            let verdicts = watchdog.observe(WatchdogSample(time: Double(t), residentBytes: resident, processCPUSeconds: process, collectionCPUSeconds: [id: cpu]))
            if let verdict = verdicts[id], verdict != .ok { seen.append((t, verdict)) }
        }
        return seen
    }

    @Test func aCollectionUnderItsBudgetIsLeftAlone() {
        var watchdog = AgentWatchdog(limits: Self.limits())
        #expect(watchdog.admit("F1", artifacts: ["A"], at: 0) == .ok)
        var cpu = 0.0, process = 0.0
        #expect(Self.run(&watchdog, from: 0, to: 60, percent: 8, cpu: &cpu, process: &process).isEmpty)
        #expect(watchdog.finish("F1", at: 60) == nil)
    }

    @Test func aBusyCollectionIsThrottledThenCancelledAfterAFullWindowOverBudget() {
        var watchdog = AgentWatchdog(limits: Self.limits())
        _ = watchdog.admit("F1", artifacts: ["A"], at: 0)
        var cpu = 0.0, process = 0.0
        let seen = Self.run(&watchdog, from: 0, to: 30, percent: 95, cpu: &cpu, process: &process)
        // Throttled at the first sample over budget (to 80% of 10%), cancelled one window after that, once.
        #expect(seen.count == 2)
        #expect(seen.first.map { $0.0 == 1 && $0.1 == .throttle(percent: 8) } == true)
        guard seen.count == 2, case .cancel(let reason) = seen[1].1 else {
            Issue.record("no cancel: \(seen)")
            return
        }
        #expect(seen[1].0 == 11)
        #expect(reason == "cancelled: CPU budget 10% over 10 s exceeded (the collection used 95% of one core while throttled)")
        #expect(watchdog.finish("F1", at: 31) == reason)
    }

    @Test func aThrottledCollectionThatPacesItselfIsNotCancelled() {
        var watchdog = AgentWatchdog(limits: Self.limits())
        _ = watchdog.admit("F1", artifacts: ["A"], at: 0)
        var cpu = 0.0, process = 0.0
        // One second at full speed (the burst before the throttle), then paced to 8%.
        let burst = Self.run(&watchdog, from: 0, to: 1, percent: 100, cpu: &cpu, process: &process)
        #expect(burst.map(\.1) == [.throttle(percent: 8)])
        #expect(Self.run(&watchdog, from: 2, to: 60, percent: 8, cpu: &cpu, process: &process).isEmpty)
    }

    @Test func theBudgetIsTheAgentsMaximum() {
        var watchdog = AgentWatchdog(limits: Self.limits { $0.maxCPUPercent = 50 })
        _ = watchdog.admit("F1", artifacts: ["A"], at: 0)
        var cpu = 0.0, process = 0.0
        #expect(Self.run(&watchdog, from: 0, to: 30, percent: 45, cpu: &cpu, process: &process).isEmpty)
        let seen = Self.run(&watchdog, from: 31, to: 50, percent: 60, cpu: &cpu, process: &process)
        #expect(seen.first.map { $0.1 == .throttle(percent: 40) } == true)
        #expect(seen.contains { if case .cancel(let reason) = $0.1 { reason.hasPrefix("cancelled: CPU budget 50% over 10 s exceeded") } else { false } })
    }

    @Test func theWholeAgentOverBudgetCancelsTheHeaviestCollection() {
        // Two collections under their own budget of 10% each... with a lot of other agent work.
        var watchdog = AgentWatchdog(limits: Self.limits())
        _ = watchdog.admit("light", artifacts: ["L"], at: 0)
        _ = watchdog.admit("heavy", artifacts: ["H"], at: 0)
        var light = 0.0, heavy = 0.0, process = 0.0
        var cancelled: [String: String] = [:]
        for t in 0...20 {
            if t > 0 {
                light += 0.02
                heavy += 0.09
                process += 0.40
            }
            let verdicts = watchdog.observe(WatchdogSample(time: Double(t), residentBytes: 50 * Self.mb, processCPUSeconds: process, collectionCPUSeconds: ["light": light, "heavy": heavy]))
            for (id, verdict) in verdicts { if case .cancel(let reason) = verdict { cancelled[id] = reason } }
        }
        #expect(Array(cancelled.keys) == ["heavy"])
        #expect(cancelled["heavy"] == "cancelled: the agent's CPU budget 10% over 10 s exceeded (the agent used 40% of one core, this collection 9%)")
    }

    @Test func overTheMemoryCeilingTheCollectionThatGrewIsCancelledOnce() {
        var watchdog = AgentWatchdog(limits: Self.limits())
        // "old" began when an earlier collection had left the agent at 120 MB; memory was given back
        // before "hog" began.
        _ = watchdog.observe(WatchdogSample(time: 0, residentBytes: 120 * Self.mb, processCPUSeconds: 0))
        _ = watchdog.admit("old", artifacts: ["O"], at: 0)
        _ = watchdog.observe(WatchdogSample(time: 1, residentBytes: 45 * Self.mb, processCPUSeconds: 0, collectionCPUSeconds: ["old": 0]))
        _ = watchdog.admit("hog", artifacts: ["H"], at: 1)
        var verdicts = watchdog.observe(WatchdogSample(time: 2, residentBytes: 150 * Self.mb, processCPUSeconds: 0, collectionCPUSeconds: ["old": 0, "hog": 0]))
        #expect(verdicts == ["old": .ok, "hog": .ok])
        verdicts = watchdog.observe(WatchdogSample(time: 3, residentBytes: 230 * Self.mb, processCPUSeconds: 0, collectionCPUSeconds: ["old": 0, "hog": 0]))
        #expect(verdicts["old"] == .ok)
        #expect(verdicts["hog"] == .cancel(reason: "cancelled: memory ceiling 200 MB exceeded (the agent's resident memory reached 230 MB, 185 MB of it during this collection)"))
        // While the hog winds down, nothing else is cancelled for the ceiling.
        verdicts = watchdog.observe(WatchdogSample(time: 4, residentBytes: 240 * Self.mb, processCPUSeconds: 0, collectionCPUSeconds: ["old": 0, "hog": 0]))
        #expect(verdicts == ["old": .ok, "hog": .ok])
        #expect(watchdog.finish("hog", at: 5) != nil)
        #expect(watchdog.finish("old", at: 5) == nil)
        // Over the ceiling with only a collection that barely grew: reported, nothing cancelled.
        _ = watchdog.admit("new", artifacts: ["N"], at: 5)
        verdicts = watchdog.observe(WatchdogSample(time: 6, residentBytes: 250 * Self.mb, processCPUSeconds: 0, collectionCPUSeconds: ["new": 0]))
        #expect(verdicts == ["new": .ok])
        #expect(watchdog.overCeilingWithoutCulprit)
    }

    @Test func aCollectionThatGrowsPastItsOwnLimitIsCancelled() {
        var watchdog = AgentWatchdog(limits: Self.limits { $0.maxCollectionMemoryMB = 50 })
        _ = watchdog.observe(WatchdogSample(time: 0, residentBytes: 40 * Self.mb, processCPUSeconds: 0))
        _ = watchdog.admit("F1", artifacts: ["A"], at: 0)
        #expect(watchdog.observe(WatchdogSample(time: 1, residentBytes: 80 * Self.mb, processCPUSeconds: 0, collectionCPUSeconds: ["F1": 0]))["F1"] == .ok)
        let verdict = watchdog.observe(WatchdogSample(time: 2, residentBytes: 95 * Self.mb, processCPUSeconds: 0, collectionCPUSeconds: ["F1": 0]))["F1"]
        #expect(verdict == .cancel(reason: "cancelled: collection memory limit 50 MB exceeded (the agent's resident memory grew by 55 MB during this collection, to 95 MB)"))
    }

    @Test func repeatedOffendersAreRefusedForTheCoolDown() {
        var watchdog = AgentWatchdog(limits: Self.limits { $0.cooldownSeconds = 100 })
        var cpu = 0.0, process = 0.0
        for (index, start) in [0, 20].enumerated() {
            let id = "F\(index)"
            #expect(watchdog.admit(id, artifacts: ["Burn"], at: Double(start)) == .ok)
            cpu = 0
            _ = Self.run(&watchdog, id, from: start, to: start + 12, percent: 100, cpu: &cpu, process: &process)
            #expect(watchdog.finish(id, at: Double(start + 13))?.hasPrefix("cancelled: CPU budget") == true)
        }
        // Second strike at 33: refused until 133; other artifacts still run.
        guard case .refuse(let until, let reason) = watchdog.admit("F2", artifacts: ["Other", "Burn"], at: 40) else {
            Issue.record("not refused")
            return
        }
        #expect(until == 133)
        #expect(reason.hasPrefix("refused: Burn was cancelled by the agent's limits 2 times in the last 100 s (last time: cancelled: CPU budget 10%"))
        #expect(reason.hasSuffix("it is refused for 93 s more"))
        #expect(watchdog.collections.isEmpty)
        #expect(watchdog.admit("F3", artifacts: ["Other"], at: 40) == .ok)
        #expect(watchdog.admit("F4", artifacts: ["Burn"], at: 133) == .ok)
    }

    @Test func disabledLimitsNeverAct() {
        var watchdog = AgentWatchdog(limits: Self.limits { $0.enabled = false })
        _ = watchdog.admit("F1", artifacts: ["A"], at: 0)
        var cpu = 0.0, process = 0.0
        #expect(Self.run(&watchdog, from: 0, to: 40, percent: 100, resident: 900 * Self.mb, cpu: &cpu, process: &process).isEmpty)
    }

    @Test func limitsDecodeWithDefaultsAndChecks() throws {
        let limits = try JSONDecoder().decode(AgentLimits.self, from: Data(#"{"max_memory_mb": 300, "cpu_window_seconds": 5}"#.utf8))
        #expect(limits.maxMemoryMB == 300 && limits.cpuWindowSeconds == 5 && limits.maxCPUPercent == 10 && limits.strikes == 2 && limits.enabled)
        #expect(AgentLimits().maxMemoryMB == 200 && AgentLimits().maxCPUPercent == 10)
        #expect(throws: AgentLimitsError.self) { try JSONDecoder().decode(AgentLimits.self, from: Data(#"{"max_cpu_percent": 0}"#.utf8)) }
        #expect(throws: AgentLimitsError.self) { try JSONDecoder().decode(AgentLimits.self, from: Data(#"{"sample_interval_seconds": 60}"#.utf8)) }
    }
}
