/// An accessor assembled from other accessors' subtrees: `remap()`'s `mount` remappings. Each
/// mount puts a directory of some accessor (the `from` side: an image's partition, a folder where
/// a dead disk is mounted, a zip) at a prefix of this accessor's namespace (the `on` side), so the
/// same artifacts that read `/etc/passwd` through `file` read it from the evidence instead.
///
/// A path is served by the mount with the longest prefix that covers it. Directories above mount
/// points exist virtually (listing `/` shows `etc` when something is mounted at `/etc`), and a
/// path no mount covers and no mount lies under does not exist: a mounted accessor shows only
/// what was mounted, never the live system behind it. Paths come back in this namespace.
public struct MountAccessor: Accessor {
    /// One subtree: `prefix` here is `source` (read through `accessor`) there.
    public struct Mount: Sendable {
        public var prefix: [[UInt8]]
        public var accessor: any Accessor
        public var source: OSPath
        /// The accessor names as they were when the mount was made (the source's delegates
        /// resolve through these, not through the remapped table).
        public var names: @Sendable (String) -> (any Accessor)?
        public init(prefix: [[UInt8]], accessor: any Accessor, source: OSPath, names: @escaping @Sendable (String) -> (any Accessor)?) {
            self.prefix = prefix
            self.accessor = accessor
            self.source = source
            self.names = names
        }
    }

    public let name: String
    public let pathType: PathType
    /// Longest prefix first, so the first match is the most specific.
    public let mounts: [Mount]

    public init(name: String, pathType: PathType, mounts: [Mount]) {
        self.name = name
        self.pathType = pathType
        self.mounts = mounts.sorted { $0.prefix.count > $1.prefix.count }
    }

    /// A copy with one more mount.
    public func adding(_ mount: Mount) -> MountAccessor {
        MountAccessor(name: name, pathType: pathType, mounts: mounts + [mount])
    }

    public var summary: String { "A namespace assembled by remap() from other accessors' subtrees (\(mounts.count) mounts)." }

    /// The mount serving `components` and the path to ask it for.
    private func resolve(_ components: [[UInt8]]) -> (Mount, OSPath)? {
        for mount in mounts where components.starts(with: mount.prefix) {
            return (mount, mount.source.appending(Array(components.dropFirst(mount.prefix.count))))
        }
        return nil
    }

    /// The names of mount points directly under `components` (virtual directories).
    private func mountPoints(under components: [[UInt8]]) -> [[UInt8]] {
        var names: [[UInt8]] = []
        for mount in mounts where mount.prefix.count > components.count && mount.prefix.starts(with: components) {
            let next = mount.prefix[components.count]
            if !names.contains(next) { names.append(next) }
        }
        return names
    }

    private func here(_ components: [[UInt8]]) -> OSPath {
        pathType == .linux ? OSPath(OSPath.render(components, type: .linux)) : OSPath(components: components, type: pathType)
    }

    private func checked(_ path: OSPath) throws -> [[UInt8]] {
        if path.delegate != nil { throw AccessorError.invalid("the \(name) accessor (remapped) takes plain paths, not pathspecs") }
        return path.components
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let components = try checked(path)
        if let (mount, source) = resolve(components) {
            do {
                var info = try mount.accessor.stat(source, follow: follow, in: try scope.deeper(names: mount.names))
                info.path = here(components)
                return info
            } catch {
                if mountPoints(under: components).isEmpty { throw error }
            }
        }
        if !mountPoints(under: components).isEmpty { return FileInfo(path: here(components), size: 0, mode: FileInfo.directoryMode) }
        throw AccessorError.notFound(String(decoding: path.path, as: UTF8.self))
    }

    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] {
        let components = try checked(path)
        var entries: [FileInfo] = []
        var seen = Set<[UInt8]>()
        var served = false
        let virtual = mountPoints(under: components)
        if let (mount, source) = resolve(components) {
            let listed: [FileInfo]
            do {
                listed = try mount.accessor.list(source, in: try scope.deeper(names: mount.names))
                served = true
            } catch {
                // A mount point deeper down still shows, whatever the outer mount holds here.
                if virtual.isEmpty { throw error }
                listed = []
            }
            for var info in listed {
                info.path = here(components + [info.name])
                seen.insert(info.name)
                entries.append(info)
            }
        }
        for name in virtual where !seen.contains(name) {
            // A mount point shows as what is mounted there (a file may be mounted, too).
            let path = here(components + [name])
            entries.append((try? stat(path, follow: false, in: scope)) ?? FileInfo(path: path, size: 0, mode: FileInfo.directoryMode))
        }
        if !served && virtual.isEmpty { throw AccessorError.notFound(String(decoding: path.path, as: UTF8.self)) }
        return entries
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let components = try checked(path)
        guard let (mount, source) = resolve(components) else {
            throw AccessorError.notFound(String(decoding: path.path, as: UTF8.self))
        }
        return try mount.accessor.open(source, in: try scope.deeper(names: mount.names))
    }

    public func localPath(_ path: OSPath, in scope: AccessorScope) -> [UInt8]? {
        guard path.delegate == nil, let (mount, source) = resolve(path.components) else { return nil }
        return mount.accessor.localPath(source, in: AccessorScope(context: scope.context, env: scope.env, depth: scope.depth, names: mount.names))
    }
}

/// Another accessor under a new name (`remap()`'s `shadow` remappings and `copy=`): the same
/// files, reached by the name the queries use.
public struct RenamedAccessor: Accessor {
    public let name: String
    public let base: any Accessor

    public init(name: String, base: any Accessor) {
        self.name = name
        self.base = base
    }

    public var summary: String { "The \(base.name) accessor under the name \(name) (remap)." }
    public var pathType: PathType { base.pathType }
    public var canList: Bool { base.canList }
    public func parse(_ text: [UInt8]) -> OSPath { base.parse(text) }
    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo { try base.stat(path, follow: follow, in: scope) }
    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] { try base.list(path, in: scope) }
    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile { try base.open(path, in: scope) }
    public func localPath(_ path: OSPath, in scope: AccessorScope) -> [UInt8]? { base.localPath(path, in: scope) }
}
