import CSQLite3
import Foundation

/// Read-only connections to the datastore's file, so that reads neither wait for the writer's lock
/// nor hold it: in WAL mode each reader sees the last commit as of its BEGIN while writers go on.
///
/// Short reads take a free reader if there is one (`tryTake`) and otherwise read on the writer's
/// connection, as before the pool. Long reads (streamed results) wait for a reader without
/// blocking a thread (`takeForLongRead`), and at most `size - 1` of them hold readers at once, so
/// one reader is always left for short reads.
final class SQLiteReaderPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [SQLiteConnection]
    private var longReads = 0
    private var waiting: [CheckedContinuation<SQLiteConnection, Never>] = []
    let size: Int

    init(path: String, size: Int, busyTimeoutMilliseconds: Int32) throws {
        self.size = max(2, size)
        idle = try (0..<self.size).map { _ in
            let connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX)
            try connection.setBusyTimeout(busyTimeoutMilliseconds)
            return connection
        }
    }

    deinit {
        for connection in idle { connection.close() }
    }

    /// A free reader, or nil when all are in use.
    func tryTake() -> SQLiteConnection? {
        lock.withLock { idle.popLast() }
    }

    /// Returns a reader taken with `tryTake`.
    func giveBack(_ connection: SQLiteConnection) {
        let handoff = lock.withLock { () -> Handoff? in
            idle.append(connection)
            return readyWaiter()
        }
        if let handoff { handoff.waiter.resume(returning: handoff.connection) }
    }

    /// A reader for a long read; waits while `size - 1` long reads are running or no reader is free.
    func takeForLongRead() async -> SQLiteConnection {
        let taken = lock.withLock { () -> SQLiteConnection? in
            guard waiting.isEmpty, longReads < size - 1, let connection = idle.popLast() else { return nil }
            longReads += 1
            return connection
        }
        if let taken { return taken }
        return await withCheckedContinuation { continuation in
            let handoff = lock.withLock { () -> Handoff? in
                waiting.append(continuation)
                return readyWaiter()
            }
            // A reader came back meanwhile: the first waiter (maybe this one) goes now.
            if let handoff { handoff.waiter.resume(returning: handoff.connection) }
        }
    }

    /// Returns a reader taken with `takeForLongRead`.
    func giveBackFromLongRead(_ connection: SQLiteConnection) {
        lock.withLock { longReads -= 1 }
        giveBack(connection)
    }

    private struct Handoff {
        var waiter: CheckedContinuation<SQLiteConnection, Never>
        var connection: SQLiteConnection
    }

    /// Under the lock: the first waiting long read and a reader for it, if one may go now.
    private func readyWaiter() -> Handoff? {
        guard longReads < size - 1, !waiting.isEmpty, let connection = idle.popLast() else { return nil }
        longReads += 1
        return Handoff(waiter: waiting.removeFirst(), connection: connection)
    }
}
