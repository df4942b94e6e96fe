import Synchronization

/// What `remap()` changed for the rest of a session: the accessors its queries reach by name, the
/// plugins and functions they may no longer call, and the host a dead-disk image pretends to be.
/// It lives on the `QueryContext` (Velociraptor applies a remapping to the root scope, so every
/// later statement of the session sees it) and is read on every accessor lookup, plugin open and
/// function call — through one relaxed atomic flag while nothing was remapped, so the live-host
/// path pays nothing.
public final class SessionRemapping: Sendable {
    /// The accessor table after a remapping.
    public struct Accessors: Sendable {
        /// Accessors by name that replace (or add to) the registry's.
        public var named: [String: any Accessor]
        /// True when only `named` exist (`remap(clear=TRUE)`): other names are unknown.
        public var cleared: Bool
        public init(named: [String: any Accessor], cleared: Bool) {
            self.named = named
            self.cleared = cleared
        }
    }

    /// The host a remapped session reports (`impersonation` remappings): info()'s OS and host
    /// name, and environment variables seen by environ() and expand().
    public struct Impersonation: Sendable, Equatable {
        public var os: String?
        public var hostname: String?
        public var environment: [String: String]
        public init(os: String? = nil, hostname: String? = nil, environment: [String: String] = [:]) {
            self.os = os
            self.hostname = hostname
            self.environment = environment
        }
    }

    private let active = Atomic<Bool>(false)
    private let state = Mutex<(accessors: Accessors?, disabled: Set<String>, impersonation: Impersonation?)>((nil, [], nil))

    public init() {}

    /// Whether any remapping was applied in this session.
    public var isActive: Bool { active.load(ordering: .relaxed) }

    /// The accessor `name` resolves to after the remapping: `.some(accessor)` when remapped,
    /// `.some(nil)` when the table was cleared and does not hold it, nil to use the registry.
    func lookup(_ name: String) -> (any Accessor)?? {
        guard isActive else { return nil }
        return state.withLock { state -> (any Accessor)?? in
            guard let accessors = state.accessors else { return nil }
            if let found = accessors.named[name] { return .some(found) }
            return accessors.cleared ? .some(nil) : nil
        }
    }

    /// Replaces the accessor table.
    public func setAccessors(_ accessors: Accessors) {
        state.withLock { $0.accessors = accessors }
        active.store(true, ordering: .relaxed)
    }

    /// The current table, if one was set.
    public var accessors: Accessors? { state.withLock { $0.accessors } }

    /// Plugins and functions that may no longer be called in this session.
    public func disable(_ names: some Sequence<String>) {
        state.withLock { $0.disabled.formUnion(names) }
        active.store(true, ordering: .relaxed)
    }

    /// Whether `name` (a plugin or function) was disabled (one relaxed load when nothing was remapped).
    @inline(__always)
    public func isDisabled(_ name: String) -> Bool {
        guard isActive else { return false }
        return state.withLock { $0.disabled.contains(name) }
    }

    public func impersonate(_ impersonation: Impersonation) {
        state.withLock { $0.impersonation = impersonation }
        active.store(true, ordering: .relaxed)
    }

    /// The impersonated host, when a remapping set one.
    public var impersonation: Impersonation? {
        guard isActive else { return nil }
        return state.withLock { $0.impersonation }
    }
}
