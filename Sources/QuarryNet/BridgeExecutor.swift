import Foundation

/// Threads of its own on which the network plugins' async work runs. A plugin is synchronous: it
/// blocks its calling thread until the request is done. When that thread belongs to Swift's task
/// pool (one thread per core; an agent or a test runs queries there), work queued on the same pool
/// could wait forever for a free thread — two plugins waiting on a two-core machine were enough to
/// hang. Work started with this executor as its preference never needs a pool thread.
final class BridgeExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = BridgeExecutor(threads: 4)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(threads: Int) {
        for index in 0..<threads {
            let thread = Thread { [self] in loop() }
            thread.name = "quarry-net-\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
