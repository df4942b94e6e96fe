import Foundation
import Synchronization

/// Where the query log goes: "Symbol not found", per-item plugin failures, `log()` calls.
public protocol QueryLogger: Sendable {
    func log(_ level: LogLevel, _ message: String)
}

/// Severity of a query-log message.
public enum LogLevel: String, Sendable, Comparable {
    case debug = "DEBUG", info = "INFO", warning = "WARN", error = "ERROR"

    private var rank: Int {
        switch self {
        case .debug: return 0
        case .info: return 1
        case .warning: return 2
        case .error: return 3
        }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// Collects log lines in memory (tests, golden files, the conformance runner).
public final class MemoryLogger: QueryLogger {
    private let lines = Mutex<[String]>([])
    public init() {}
    public func log(_ level: LogLevel, _ message: String) {
        lines.withLock { $0.append("\(level.rawValue): \(message)") }
    }
    public var messages: [String] { lines.withLock { $0 } }
}

/// Writes log lines to a file handle (stderr by default).
public final class StreamLogger: QueryLogger {
    private let handle: FileHandle
    private let minimum: LogLevel
    private let lock = Mutex<Void>(())
    public init(handle: FileHandle = .standardError, minimum: LogLevel = .info) {
        self.handle = handle
        self.minimum = minimum
    }
    public func log(_ level: LogLevel, _ message: String) {
        guard level >= minimum else { return }
        lock.withLock { _ in handle.write(Data("\(level.rawValue): \(message)\n".utf8)) }
    }
}

/// A cancellation flag shared by everything one query (or one session) runs. Plugins check it in
/// every loop that can run long.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public func reset() { flag.store(false, ordering: .relaxed) }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    public func check() throws {
        if flag.load(ordering: .relaxed) { throw QueryCancelled() }
    }
}

/// A typed name for a per-session service: the key fixes the type stored under it, so a reader
/// cannot ask for the wrong type.
public struct ServiceKey<T: Sendable>: Sendable {
    public let name: String
    public init(_ name: String) { self.name = name }
}

/// Everything shared by one run of VQL: the registry, the log, cancellation, the regex cache and
/// the host's permissions. Created once per session and handed to every scope.
public final class QueryContext: @unchecked Sendable {
    public let registry: Registry
    public let logger: QueryLogger
    public let cancellation: CancellationFlag
    /// What this session may do. Standalone `quarry query` holds all; a fleet collection holds
    /// only what its artifact declares and its requester's role allows.
    public var permissions: Set<Permission> = Set(Permission.allCases)
    /// When set, long-running plugins pace themselves to this CPU budget.
    public var throttle: CPUThrottle?
    /// Arbitrary per-session services that host modules attach (upload sink, root remapping, …).
    public let services = Mutex<[String: any Sendable]>([:])
    private let regexes = Mutex<[String: CompiledRegex]>([:])
    private let loggedOnce = Mutex<Set<String>>([])
    let lambdas = Mutex<[String: Lambda]>([:])
    /// cache()'s named stores, shared by every statement of the session.
    let caches = CacheStores()
    /// What `remap()` changed for the rest of the session (accessors, disabled names, impersonation).
    public let remapping = SessionRemapping()
    /// What `mock()` replaced for the rest of the session (plugins and functions by name).
    public let mocks = SessionMocks()
    /// Queries atexit() registered, run once by `runExitHooks()` when the session ends.
    let exitHooks = Mutex<[@Sendable () -> Void]>([])

    /// Runs (once) every query registered with atexit(), newest first.
    public func runExitHooks() {
        let hooks = exitHooks.withLock { hooks in
            defer { hooks = [] }
            return hooks
        }
        for hook in hooks.reversed() { hook() }
    }
    private let endActions = Mutex<[@Sendable () -> Void]>([])

    public init(registry: Registry, logger: QueryLogger = MemoryLogger(), cancellation: CancellationFlag = CancellationFlag()) {
        self.registry = registry
        self.logger = logger
        self.cancellation = cancellation
    }

    public func log(_ level: LogLevel, _ message: String) {
        Diagnostics.recordLog(level, message)
        logger.log(level, message)
    }

    /// Runs `action` when the session ends (temporary files and folders are removed this way).
    public func atEnd(_ action: @escaping @Sendable () -> Void) {
        endActions.withLock { $0.append(action) }
    }

    /// Runs the end-of-session actions now, latest first; also done when the context is released.
    public func finish() {
        let actions = endActions.withLock { actions -> [@Sendable () -> Void] in
            defer { actions.removeAll() }
            return actions
        }
        for action in actions.reversed() { action() }
    }

    deinit { finish() }

    /// Logs a message only the first time it is seen in this session (per-row problems).
    public func logOnce(_ level: LogLevel, _ message: String) {
        let first = loggedOnce.withLock { $0.insert(message).inserted }
        if first { log(level, message) }
    }

    /// Compiles a pattern once per session; later calls reuse it. Nil (and a logged error) when invalid.
    public func regex(_ pattern: String, caseInsensitive: Bool = true) -> CompiledRegex? {
        let key = (caseInsensitive ? "i:" : "c:") + pattern
        if let cached = regexes.withLock({ $0[key] }) { return cached }
        do {
            let compiled = try CompiledRegex(pattern, caseInsensitive: caseInsensitive)
            regexes.withLock { $0[key] = compiled }
            return compiled
        } catch {
            logOnce(.error, "regex: \(error)")
            return nil
        }
    }

    /// Logs and returns false when the session lacks a permission a plugin needs.
    public func require(_ permission: Permission, for name: String) -> Bool {
        if permissions.contains(permission) { return true }
        logOnce(.error, "\(name): permission denied (needs \(permission.rawValue))")
        return false
    }

    /// The accessor registered under `name` ("" means the default, `auto`).
    public func accessor(named name: String) -> (any Accessor)? {
        let key = name.isEmpty ? "auto" : name
        if let remapped = remapping.lookup(key) { return remapped }
        return registry.accessors[key]
    }

    /// A session service by its typed key.
    public func service<T: Sendable>(_ key: ServiceKey<T>) -> T? {
        services.withLock { $0[key.name] as? T }
    }

    /// The session service under `key`, created by `make` on first use (once, even when racing).
    public func service<T: Sendable>(_ key: ServiceKey<T>, orMake make: () -> T) -> T {
        services.withLock { services in
            if let existing = services[key.name] as? T { return existing }
            let made = make()
            services[key.name] = made
            return made
        }
    }

    public func setService<T: Sendable>(_ key: ServiceKey<T>, _ value: T) {
        services.withLock { $0[key.name] = value }
    }

    public func service<T: Sendable>(_ key: String, as type: T.Type) -> T? {
        services.withLock { $0[key] as? T }
    }

    public func setService(_ key: String, _ value: any Sendable) {
        services.withLock { $0[key] = value }
    }
}
