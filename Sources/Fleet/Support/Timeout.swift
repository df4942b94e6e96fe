/// The value of `work`, or nil when it has none after `seconds` (0: wait as long as it takes);
/// `work` is cancelled then, and must give up when it is.
func withTimeout<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async -> T?) async -> T? {
    guard seconds > 0 else { return await work() }
    return await withTaskGroup(of: T?.self) { group in
        group.addTask { await work() }
        group.addTask {
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
