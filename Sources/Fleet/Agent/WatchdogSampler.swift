import FleetCore
import Foundation
import NIOConcurrencyHelpers
import VQL

#if canImport(Glibc)
import Glibc
#endif

/// Feeds the agent's watchdog (`AgentWatchdog`, the pure rules) with real numbers and carries out
/// its verdicts. A small thread wakes every `sample_interval_seconds` and reads the agent's resident
/// memory (/proc/self/statm), its whole-process CPU time (getrusage) and each collection worker
/// thread's CPU time (its pthread CPU clock); a throttle verdict lowers the collection's CPU
/// throttle, a cancel verdict sets its cancellation flag (the query stops at its next check) and
/// keeps the reason for the flow's final status.
///
/// Only a collection's own worker thread is counted against its budget; threads a plugin starts
/// count in the whole-process budget.
final class WatchdogSampler: Sendable {
    /// A running collection as the sampler sees it.
    struct Worker {
        var clock: clockid_t
        /// Further threads of the same work (an event artifact's sources), counted with it.
        var threads: [clockid_t] = []
        var cancellation: CancellationFlag
        var throttle: CPUThrottle
    }

    struct State {
        var machine: AgentWatchdog
        var workers: [String: Worker] = [:]
        var reportedOverCeiling = false
    }

    let limits: AgentLimits
    private let state: NIOLockedValueBox<State>
    private let log: @Sendable (String) -> Void

    init(limits: AgentLimits, log: @escaping @Sendable (String) -> Void) {
        self.limits = limits
        self.log = log
        state = NIOLockedValueBox(State(machine: AgentWatchdog(limits: limits)))
    }

    /// Starts the sampling thread (not when the limits are disabled); it runs as long as the process.
    func start() {
        guard limits.enabled else { return }
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: limits.sampleIntervalSeconds)
                sampleOnce()
            }
        }
        thread.name = "quarry-watchdog"
        thread.start()
    }

    /// Asks whether a collection may start; `.ok` means it is watched from now on.
    func admit(flowId: String, request: CollectionRequest) -> WatchdogVerdict {
        state.withLockedValue { $0.machine.admit(flowId, artifacts: request.artifacts, at: Self.now()) }
    }

    /// Called on the collection's worker thread as it starts: registers the thread's CPU clock and
    /// returns the throttle the collection must use (nil when the limits are disabled). It starts at
    /// the request's own CPU limit, or unthrottled.
    func attach(flowId: String, cancellation: CancellationFlag, cpuLimit: Double?) -> CPUThrottle? {
        guard limits.enabled else { return nil }
        var clock = clockid_t()
        guard pthread_getcpuclockid(pthread_self(), &clock) == 0 else { return nil }
        let threadClock = clock
        let throttle = CPUThrottle(percent: cpuLimit ?? 100, cpuClock: { Self.seconds(of: threadClock) ?? 0 })
        state.withLockedValue { $0.workers[flowId] = Worker(clock: clock, cancellation: cancellation, throttle: throttle) }
        return throttle
    }

    /// Called on another thread of an attached worker (an event source): its CPU counts too.
    func attachThread(flowId: String) {
        guard limits.enabled else { return }
        var clock = clockid_t()
        guard pthread_getcpuclockid(pthread_self(), &clock) == 0 else { return }
        state.withLockedValue { $0.workers[flowId]?.threads.append(clock) }
    }

    /// Called on the worker thread when the collection ended (before the thread exits, so its clock
    /// is never read after). Returns why the watchdog cancelled it, if it did. Memory the collection
    /// freed is given back to the system at once, so the next collection starts from a low mark.
    func finish(flowId: String) -> String? {
        let reason = state.withLockedValue { state -> String? in
            state.workers[flowId] = nil
            return state.machine.finish(flowId, at: Self.now())
        }
        _ = Self.trimHeap?(0)
        return reason
    }

    /// glibc's malloc_trim (not in the Glibc module map): gives freed heap pages back to the system.
    static let trimHeap: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()

    /// One measurement, and the verdicts carried out. The clocks are read under the lock, so a
    /// worker cannot finish (and its thread end) in the middle.
    func sampleOnce() {
        let resident = Self.residentBytes()
        let processCPU = Self.processCPUSeconds()
        var messages: [String] = []
        state.withLockedValue { state in
            // A source thread that already ended no longer has a clock: it is skipped.
            let cpu = state.workers.compactMapValues { worker in
                Self.seconds(of: worker.clock).map { main in main + worker.threads.compactMap { Self.seconds(of: $0) }.reduce(0, +) }
            }
            let sample = WatchdogSample(time: Self.now(), residentBytes: resident, processCPUSeconds: processCPU, collectionCPUSeconds: cpu)
            for (flowId, verdict) in state.machine.observe(sample).sorted(by: { $0.key < $1.key }) {
                guard let worker = state.workers[flowId] else { continue }
                switch verdict {
                case .throttle(let percent):
                    worker.throttle.lower(toPercent: percent)
                    messages.append("flow \(flowId): over its CPU budget, paced to \(percent)% of one core")
                case .cancel(let reason):
                    worker.cancellation.cancel()
                    messages.append("flow \(flowId): \(reason)")
                case .ok, .refuse:
                    break
                }
            }
            let over = state.machine.overCeilingWithoutCulprit
            if over && !state.reportedOverCeiling {
                messages.append("watchdog: resident memory \(resident / 1_000_000) MB is over the \(Int(limits.maxMemoryMB)) MB ceiling, and no running collection grew it")
            }
            state.reportedOverCeiling = over
        }
        for message in messages { log(message) }
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    /// Seconds of CPU a thread's (or process's) clock shows; nil if it cannot be read.
    static func seconds(of clock: clockid_t) -> Double? {
        var time = timespec()
        guard clock_gettime(clock, &time) == 0 else { return nil }
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// User and system CPU time of the whole process.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    /// Resident memory of the process (the second field of /proc/self/statm, in pages).
    static func residentBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return 0 }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
