import Synchronization

/// What `mock()` put in place of plugins and functions for the rest of a session, so an
/// artifact's logic can be tested without the host it was written for (Velociraptor's own
/// artifact tests mock `info()`, `execve()` and friends this way). Each call of a mocked name
/// takes the next of its results: for a plugin, a list is that call's rows and anything else one
/// row; for a function, the value itself; past the end a plugin yields nothing and a function
/// NULL. Calls are counted for `mock_check()`. Read on every plugin open and function call
/// through one relaxed atomic flag, so a session without mocks pays nothing.
public final class SessionMocks: Sendable {
    public enum Kind: String, Sendable { case plugin, function }

    struct Mock: Sendable {
        var results: [Value]
        var calls = 0
    }

    private let active = Atomic<Bool>(false)
    private let table = Mutex<[String: Mock]>([:])

    public init() {}

    static func key(_ kind: Kind, _ name: String) -> String { kind.rawValue + ":" + name }

    public func install(_ kind: Kind, _ name: String, results: [Value]) {
        table.withLock { $0[Self.key(kind, name)] = Mock(results: results) }
        active.store(true, ordering: .relaxed)
    }

    /// The next result of a mocked name (counting the call), or nil when `name` is not mocked.
    public func take(_ kind: Kind, _ name: String) -> Value?? {
        guard active.load(ordering: .relaxed) else { return nil }
        return table.withLock { table -> Value?? in
            let key = Self.key(kind, name)
            guard var mock = table[key] else { return nil }
            let result: Value? = mock.calls < mock.results.count ? mock.results[mock.calls] : nil
            mock.calls += 1
            table[key] = mock
            return .some(result)
        }
    }

    /// How many times a mocked name was called, or nil when it is not mocked.
    public func calls(_ kind: Kind, _ name: String) -> Int? {
        table.withLock { $0[Self.key(kind, name)]?.calls }
    }

    /// Starts a mock's results from the first again.
    public func rewind(_ kind: Kind, _ name: String) -> Bool {
        table.withLock { table in
            guard table[Self.key(kind, name)] != nil else { return false }
            table[Self.key(kind, name)]?.calls = 0
            return true
        }
    }

    public func remove(_ kind: Kind, _ name: String) {
        table.withLock { $0[Self.key(kind, name)] = nil }
    }

    public func removeAll() {
        table.withLock { $0.removeAll() }
    }

    /// The rows one call of a mocked plugin yields for `result`.
    static func rows(_ result: Value?) -> [Value] {
        switch result {
        case nil, .null?: return []
        case .list(let items)?: return items
        case let value?: return [value]
        }
    }
}
