/// A way of reaching files: the live file system, the bytes of a string, the members of a zip,
/// the files of an ext4 image. Every plugin and function that takes a path takes an
/// `accessor=` argument naming one of these, so one query vocabulary reads evidence wherever it
/// lives. Accessors that read inside a container get the container's bytes through a *delegate*
/// (another accessor and path, carried by the OSPath), which is how they nest.
public protocol Accessor: Sendable {
    /// The name used in `accessor=` arguments and in pathspecs' DelegateAccessor.
    var name: String { get }
    /// One line for `describe` and the docs.
    var summary: String { get }
    /// How string arguments are split into components for this accessor.
    var pathType: PathType { get }
    /// Whether `list` works (glob() refuses accessors that cannot list directories).
    var canList: Bool { get }

    /// Parses a path argument given as text (a JSON pathspec included).
    func parse(_ text: [UInt8]) -> OSPath
    /// Information about one file; `follow` follows a final symbolic link (stat rather than lstat).
    func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo
    /// The entries of a directory (any order; callers sort when they need to).
    func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo]
    /// Opens a file for reading at any offset.
    func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile
    /// The path the operating system knows the file by, when the accessor reads the live file
    /// system (libraries that open files themselves, SQLite and libmagic, use it); nil otherwise.
    func localPath(_ path: OSPath, in scope: AccessorScope) -> [UInt8]?
}

extension Accessor {
    public var pathType: PathType { .generic }
    public var canList: Bool { true }
    public func parse(_ text: [UInt8]) -> OSPath { OSPath.parse(text, type: pathType) }
    public func localPath(_ path: OSPath, in scope: AccessorScope) -> [UInt8]? { nil }

    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] {
        throw AccessorError.unsupported("the \(name) accessor cannot list directories")
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        // Accessors over plain byte streams describe a file by opening it.
        let file = try open(path, in: scope)
        defer { file.close() }
        return FileInfo(path: path, size: file.size ?? 0, mode: FileInfo.regularMode)
    }
}

/// A file opened through an accessor: positional reads (pread), a size when it is known, and
/// for sparse files (process memory) the ranges that hold data.
public protocol ReadableFile: AnyObject {
    /// Size in bytes; nil when unknown until read to the end (pipes, compressed streams).
    var size: Int64? { get }
    /// The ranges that hold data, for sparse files; nil when all of [0, size) does.
    var ranges: [Range<Int64>]? { get }
    /// True for files that may never end (character devices): readers bound how much they read.
    var mayNotEnd: Bool { get }
    /// Reads up to `buffer.count` bytes at `offset`; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
    /// Releases the file early (also done on deinit).
    func close()
}

extension ReadableFile {
    public var ranges: [Range<Int64>]? { nil }
    public var mayNotEnd: Bool { false }
    public func close() {}

    /// Up to `count` bytes at `offset` (fewer at the end).
    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = try out.withUnsafeMutableBytes { raw in
                try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]), at: offset + Int64(filled))
            }
            if n <= 0 { break }
            filled += n
        }
        out.removeSubrange(filled...)
        return out
    }

    /// The whole file from `offset`, at most `limit` bytes.
    public func readAll(from offset: Int64 = 0, limit: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var position = offset
        let chunk = 1 << 20
        while out.count < limit {
            let piece = try read(at: position, count: min(chunk, limit - out.count))
            if piece.isEmpty { break }
            out.append(contentsOf: piece)
            position += Int64(piece.count)
        }
        return out
    }
}

/// Bytes in memory as a file (the `data` and `scope` accessors, decompressed small members).
public final class MemoryFile: ReadableFile {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: Int64? { Int64(bytes.count) }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0, offset < Int64(bytes.count), let base = buffer.baseAddress else { return 0 }
        let start = Int(offset)
        let n = min(buffer.count, bytes.count - start)
        bytes.withUnsafeBytes { source in
            if let from = source.baseAddress { base.copyMemory(from: from + start, byteCount: n) }
        }
        return n
    }
}

/// A window `[start, start + length)` of another file, rebased to 0 (the `offset` accessor,
/// stored zip members, partitions).
public final class WindowFile: ReadableFile {
    let base: any ReadableFile
    let start: Int64
    let length: Int64?

    public init(_ base: any ReadableFile, start: Int64, length: Int64?) {
        self.base = base
        self.start = start
        self.length = length
    }

    public var size: Int64? {
        if let length { return length }
        return base.size.map { max(0, $0 - start) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0 else { return 0 }
        var count = buffer.count
        if let length {
            guard offset < length else { return 0 }
            count = Int(min(Int64(count), length - offset))
        }
        return try base.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: start + offset)
    }

    public func close() { base.close() }
}

/// Why an accessor call failed; rendered once into the query log by the caller.
public enum AccessorError: Error, Sendable, CustomStringConvertible {
    case notFound(String)
    case notDirectory(String)
    case unknownAccessor(String)
    case unsupported(String)
    case invalid(String)
    case tooDeep(Int)
    case io(String)

    public var description: String {
        switch self {
        case .notFound(let path): return "\(path): no such file or directory"
        case .notDirectory(let path): return "\(path): not a directory"
        case .unknownAccessor(let name): return "unknown accessor '\(name)'"
        case .unsupported(let message), .invalid(let message), .io(let message): return message
        case .tooDeep(let limit): return "pathspec delegates nest deeper than \(limit) levels"
        }
    }

    /// A missing file (routine when a glob or a list of candidates names files that may not exist).
    public var isNotFound: Bool {
        if case .notFound = self { return true }
        return false
    }
}

/// What an accessor call can reach: the query's context (registry, services, cancellation),
/// the calling scope (the `scope` and `pipe` accessors read variables) and how deep in nested
/// delegates the call is, so a pathspec that nests itself cannot recurse without end.
public struct AccessorScope {
    /// Nested delegates deeper than this are refused (a zip in a zip in … eight levels).
    public static let maximumDepth = 8

    public let context: QueryContext
    public let env: Env?
    public let depth: Int
    /// Where accessor names resolve when not through the session's current table: a remapped
    /// mount reads its source (and the source's delegates) with the accessors as they were when
    /// the mount was made, so mounting `file` onto `file` does not loop.
    public let names: (@Sendable (String) -> (any Accessor)?)?

    public init(context: QueryContext, env: Env?, depth: Int = 0, names: (@Sendable (String) -> (any Accessor)?)? = nil) {
        self.context = context
        self.env = env
        self.depth = depth
        self.names = names
    }

    /// The named accessor from the session's registry (or the table this scope was given).
    public func accessor(_ name: String) throws -> any Accessor {
        let key = name.isEmpty ? "auto" : name
        guard let accessor = names.map({ $0(key) }) ?? context.accessor(named: key) else { throw AccessorError.unknownAccessor(name) }
        return accessor
    }

    /// One level deeper; throws past `maximumDepth`.
    public func deeper() throws -> AccessorScope {
        guard depth + 1 < AccessorScope.maximumDepth else { throw AccessorError.tooDeep(AccessorScope.maximumDepth) }
        return AccessorScope(context: context, env: env, depth: depth + 1, names: names)
    }

    /// One level deeper, resolving names through `names` from there on.
    public func deeper(names: @escaping @Sendable (String) -> (any Accessor)?) throws -> AccessorScope {
        guard depth + 1 < AccessorScope.maximumDepth else { throw AccessorError.tooDeep(AccessorScope.maximumDepth) }
        return AccessorScope(context: context, env: env, depth: depth + 1, names: names)
    }

    /// The delegate's accessor and its path parsed by it; throws when `path` has no delegate.
    public func delegate(of path: OSPath) throws -> (any Accessor, OSPath, AccessorScope) {
        guard let delegate = path.delegate else {
            throw AccessorError.invalid("\(String(decoding: path.text, as: UTF8.self)): needs a pathspec with a delegate (DelegateAccessor, DelegatePath)")
        }
        let inner = try deeper()
        let accessor = try self.accessor(delegate.accessor.isEmpty ? "auto" : delegate.accessor)
        return (accessor, accessor.parse(delegate.path), inner)
    }

    /// Opens the file a delegated path reads its bytes from.
    public func openDelegate(of path: OSPath) throws -> any ReadableFile {
        let (accessor, inner, scope) = try delegate(of: path)
        return try accessor.open(inner, in: scope)
    }

    /// Stats the file a delegated path reads its bytes from.
    public func statDelegate(of path: OSPath) throws -> FileInfo {
        let (accessor, inner, scope) = try delegate(of: path)
        return try accessor.stat(inner, follow: true, in: scope)
    }

    /// Throws when the query has been cancelled.
    public func checkCancelled() throws { try context.cancellation.check() }
}
