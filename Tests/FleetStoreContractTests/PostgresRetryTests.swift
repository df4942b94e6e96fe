import Foundation
import PostgresNIO
import Testing

@testable import FleetCore
@testable import FleetPostgres

/// PostgreSQL only: a transaction that the server aborts as a deadlock runs again, invisibly.
@Suite struct PostgresRetryTests {
    @Test func deadlockedTransactionsAreRetried() async throws {
        try await withDatabase(.postgresql) { database in
            let store = try #require(try await database.migrated() as? PostgresFleetStore)
            for id in ["F.a", "F.b"] {
                try await store.addFlow(FlowRecord(flowId: id, clientId: "C.1", request: request, creator: "a", createdAt: 1))
            }
            let attempts = Counter()
            let firstLocks = Counter()
            // Two transactions lock the same two rows in opposite orders: PostgreSQL aborts one
            // (after deadlock_timeout, 1 s by default); it runs again and both commit. Each waits
            // until both hold their first row, so the deadlock happens however the tasks are
            // scheduled (a retry finds the count already reached and does not wait).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for order in [["F.a", "F.b"], ["F.b", "F.a"]] {
                    group.addTask {
                        try await store.transaction("deadlock test") { connection in
                            attempts.increment()
                            for (step, id) in order.enumerated() {
                                try await connection.perform("UPDATE flows SET row_count = row_count + 1 WHERE flow_id = \(id)")
                                guard step == 0 else { continue }
                                firstLocks.increment()
                                let deadline = Date().addingTimeInterval(30)
                                while firstLocks.value < 2, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(attempts.value == 3)
            #expect(try await store.flow("F.a")?.rows == 2)
            #expect(try await store.flow("F.b")?.rows == 2)
        }
    }
}

/// A thread-safe count.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}
