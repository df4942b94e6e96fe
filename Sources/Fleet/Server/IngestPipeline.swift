import FleetCore
import Foundation
import NIOConcurrencyHelpers

/// Group commit for result ingestion: batches from all agent connections wait here for a moment
/// and are stored together, a few thousand per datastore transaction, by `writers` tasks. Each
/// connection still gets the outcome of each of its own batches, in order, after the commit.
final class IngestPipeline: Sendable {
    private struct Job {
        var batches: [IngestBatch]
        var done: CheckedContinuation<[IngestOutcome], any Error>
    }

    private let store: any FleetStore
    private let queue = NIOLockedValueBox<[Job]>([])
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    /// Most batches stored in one transaction.
    let maxBatches: Int

    init(store: any FleetStore, writers: Int, maxBatches: Int = 4000) {
        self.store = store
        self.maxBatches = maxBatches
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let pipeline = self
        for _ in 0..<max(1, writers) { Task { await pipeline.write() } }
    }

    /// Stores the batches (with whatever else is waiting) and returns their outcomes in order.
    func submit(_ batches: [IngestBatch]) async throws -> [IngestOutcome] {
        guard !batches.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            queue.withLockedValue { $0.append(Job(batches: batches, done: continuation)) }
            ring.yield()
        }
    }

    private func take() -> [Job] {
        queue.withLockedValue { queue in
            var count = 0
            var taken = 0
            while taken < queue.count, count < maxBatches || taken == 0 {
                count += queue[taken].batches.count
                taken += 1
            }
            let jobs = Array(queue.prefix(taken))
            queue.removeFirst(taken)
            return jobs
        }
    }

    private func write() async {
        var iterator = doorbell.makeAsyncIterator()
        while true {
            let jobs = take()
            if jobs.isEmpty {
                guard await iterator.next() != nil else { return }
                continue
            }
            // More may be waiting than one transaction takes: let another writer (or this one) go on.
            ring.yield()
            let results = await store.ingest(groups: jobs.map(\.batches))
            for (job, result) in zip(jobs, results) { job.done.resume(with: result) }
        }
    }
}
