/// `overlay`: several directories seen as one, the first that has a name winning — Velociraptor's
/// accessor for "look in /bin, then /usr/bin". The directories and the accessor that reads them
/// come from the scope variable `OVERLAY_ACCESSOR_DELEGATES` (`dict(accessor=, paths=[…])`), so a
/// query sets them once and every glob, stat and read through `overlay` uses them. Listing a
/// directory merges the entries of all the directories that have it.
public struct OverlayAccessor: Accessor {
    public init() {}
    public var name: String { "overlay" }
    public var summary: String { "Several directories (OVERLAY_ACCESSOR_DELEGATES: dict(accessor=, paths=[…])) merged, the first having a name winning." }

    static let variable = "OVERLAY_ACCESSOR_DELEGATES"

    /// The delegate accessor and its base paths.
    func delegates(_ scope: AccessorScope) throws -> (any Accessor, [OSPath]) {
        guard let value = scope.env?.lookup(Self.variable)?.reduced(), case .dict(let settings) = value else {
            throw AccessorError.invalid("overlay accessor: set \(Self.variable) to dict(accessor=..., paths=[...]) first")
        }
        let accessor = try scope.accessor(settings["accessor"]?.reduced().stringValue ?? "auto")
        if accessor.name == name { throw AccessorError.invalid("overlay accessor: its delegate cannot be overlay itself") }
        let paths: [OSPath]
        switch settings["paths"]?.reduced() {
        case .list(let items)?: paths = items.compactMap { PathValues.path($0, for: accessor) }
        case let single?: paths = PathValues.path(single, for: accessor).map { [$0] } ?? []
        case nil: paths = []
        }
        if paths.isEmpty { throw AccessorError.invalid("overlay accessor: \(Self.variable) names no paths") }
        return (accessor, paths)
    }

    private func here(_ components: [[UInt8]]) -> OSPath { OSPath(OSPath.render(components, type: .linux)) }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let (accessor, bases) = try delegates(scope)
        let components = path.components
        var last: Error = AccessorError.notFound(String(decoding: path.path, as: UTF8.self))
        for base in bases {
            do {
                var info = try accessor.stat(base.appending(components), follow: follow, in: try scope.deeper())
                info.path = here(components)
                return info
            } catch {
                last = error
            }
        }
        throw last
    }

    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] {
        let (accessor, bases) = try delegates(scope)
        let components = path.components
        var entries: [FileInfo] = []
        var seen = Set<[UInt8]>()
        var found = false
        for base in bases {
            guard let listed = try? accessor.list(base.appending(components), in: try scope.deeper()) else { continue }
            found = true
            for var info in listed where seen.insert(info.name).inserted {
                info.path = here(components + [info.name])
                entries.append(info)
            }
        }
        if !found { throw AccessorError.notFound(String(decoding: path.path, as: UTF8.self)) }
        return entries
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let (accessor, bases) = try delegates(scope)
        let components = path.components
        var last: Error = AccessorError.notFound(String(decoding: path.path, as: UTF8.self))
        for base in bases {
            do {
                return try accessor.open(base.appending(components), in: try scope.deeper())
            } catch {
                last = error
            }
        }
        throw last
    }

    public func localPath(_ path: OSPath, in scope: AccessorScope) -> [UInt8]? {
        guard let (accessor, bases) = try? delegates(scope) else { return nil }
        for base in bases {
            let candidate = base.appending(path.components)
            if (try? accessor.stat(candidate, follow: true, in: scope)) != nil { return accessor.localPath(candidate, in: scope) }
        }
        return nil
    }
}
