import Foundation

/// Runs async work from synchronous code (a VQL plugin, a command's `run()`) and returns its result.
/// The work runs on the task pool; the calling thread waits. Never call it from the task pool itself.
public func runBlocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.set(.success(try await work())) } catch { box.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try box.get()
}

/// Carries a result from a task (or a signal handler) back to a waiting thread.
public final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    public init() {}
    public func set(_ value: Result<T, any Error>) { lock.withLock { result = value } }
    /// The result, or nil if none was set yet.
    public var value: Result<T, any Error>? { lock.withLock { result } }
    public func get() throws -> T {
        guard let result = value else { throw CancellationError() }
        return try result.get()
    }
}
