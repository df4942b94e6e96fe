import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// The live file system as accessors: `file` (and its alias `auto`), `file_nocase` (case
/// folded lookups, for Windows trees unpacked on Linux) and `raw_file` (devices too, no
/// listing). All go through HostFS, so `--root` remapping, byte-exact names and the refusal to
/// open FIFOs and sockets hold for every plugin that takes a path.
public struct FileAccessor: Accessor {
    public enum Flavour: Sendable { case plain, caseInsensitive, raw }

    public let name: String
    public let flavour: Flavour

    public init(name: String = "file", flavour: Flavour = .plain) {
        self.name = name
        self.flavour = flavour
    }

    public static var all: [any Accessor] {
        [FileAccessor(), FileAccessor(name: "auto"), FileAccessor(name: "file_nocase", flavour: .caseInsensitive),
         FileAccessor(name: "raw_file", flavour: .raw)]
    }

    public var summary: String {
        switch flavour {
        case .plain: return name == "auto" ? "The live file system (on Linux the same as file)." : "The live file system, through the operating system (devices are read only up to a bound)."
        case .caseInsensitive: return "The live file system with case-insensitive names (Windows trees copied to Linux)."
        case .raw: return "Files and devices read raw (disks, partitions); no directory listing."
        }
    }

    public var pathType: PathType { .linux }
    public var canList: Bool { flavour != .raw }

    /// The glob() fast path (GlobWalker) serves this accessor.
    var isPlain: Bool { flavour == .plain }

    /// The logical (as-seen-by-the-query) path bytes.
    static func logical(_ path: OSPath) -> [UInt8] { path.raw ?? path.path }

    /// The host path of a logical path: under `--root`, resolved inside the root; for
    /// file_nocase, each component matched case-insensitively when the exact name is missing.
    func host(_ path: OSPath, in scope: AccessorScope, followLast: Bool = true) -> (logical: [UInt8], host: [UInt8]) {
        var logical = FileAccessor.logical(path)
        let root = HostFS.root(scope.context)
        if flavour == .caseInsensitive { logical = FileAccessor.foldCase(logical, root: root) }
        return (logical, HostFS.resolve(logical, root: root, followLast: followLast))
    }

    /// The logical path with each component replaced by the entry whose name matches it
    /// case-insensitively, when the exact name does not exist.
    static func foldCase(_ logical: [UInt8], root: [UInt8]) -> [UInt8] {
        let absolute = logical.first == PathBytes.slash
        var resolved: [UInt8] = absolute ? [PathBytes.slash] : []
        for component in logical.split(separator: PathBytes.slash).map(Array.init) {
            let candidate = resolved.isEmpty ? component : PathBytes.join(resolved, component)
            if case .success = HostFS.stat(HostFS.resolve(candidate, root: root, followLast: false)) {
                resolved = candidate
                continue
            }
            let directory = resolved.isEmpty ? [UInt8(ascii: ".")] : resolved
            let wanted = component.lowercasedASCII
            let match = HostDirectory.names(HostFS.resolve(directory, root: root)).first { $0.lowercasedASCII == wanted }
            resolved = resolved.isEmpty ? (match ?? component) : PathBytes.join(resolved, match ?? component)
        }
        return resolved
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let (logical, host) = host(path, in: scope, followLast: follow)
        switch HostFS.stat(host, follow: follow) {
        case .success(let st): return FileAccessor.info(OSPath(logical), host: host, st)
        case .failure(let e): throw FileAccessor.error(logical, e)
        }
    }

    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] {
        guard canList else { throw AccessorError.unsupported("the \(name) accessor cannot list directories") }
        let (logical, host) = host(path, in: scope)
        guard case .success(let st) = HostFS.stat(host, follow: true) else { throw AccessorError.notFound(String(decoding: logical, as: UTF8.self)) }
        guard st.kind == .directory else { throw AccessorError.notDirectory(String(decoding: logical, as: UTF8.self)) }
        let base = OSPath(logical)
        return HostDirectory.names(host).compactMap { name in
            let entryHost = PathBytes.join(host, name)
            guard case .success(let st) = HostFS.stat(entryHost) else { return nil }
            return FileAccessor.info(base.appending([name]), host: entryHost, st)
        }
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let (logical, host) = host(path, in: scope)
        switch HostFS.openForReading(host, allowDevices: true) {
        case .success(let (fd, st)): return DescriptorFile(fd: fd, stat: st)
        case .failure(.system(let e)): throw FileAccessor.error(logical, e)
        case .failure(let e): throw AccessorError.io("\(String(decoding: logical, as: UTF8.self)): \(e)")
        }
    }

    public func localPath(_ path: OSPath, in scope: AccessorScope) -> [UInt8]? {
        guard path.delegate == nil else { return nil }
        return host(path, in: scope).host
    }

    static func error(_ logical: [UInt8], _ e: Errno) -> AccessorError {
        let name = String(decoding: logical, as: UTF8.self)
        if e.code == ENOENT || e.code == ENOTDIR { return .notFound(name) }
        return .io("\(name): \(e)")
    }

    /// A FileInfo from an lstat snapshot.
    static func info(_ path: OSPath, host: [UInt8], _ st: FileStat) -> FileInfo {
        var data = Dict()
        if st.kind == .characterDevice || st.kind == .blockDevice {
            data["DevMajor"] = .int(Int64(st.devMajor))
            data["DevMinor"] = .int(Int64(st.devMinor))
        }
        return FileInfo(
            path: path, size: st.size, mode: st.mode, mtime: st.mtime, atime: st.atime, ctime: st.ctime,
            btime: BirthTime.of(host) ?? st.ctime, uid: Int64(st.uid), gid: Int64(st.gid),
            link: st.kind == .symlink ? HostFS.readlink(host) : nil, data: data,
            sys: .dict(Dict([("Inode", .int(Int64(bitPattern: st.inode))), ("Device", .int(Int64(bitPattern: st.device)))])))
    }
}

/// Directory entry names, byte-exact (without . and ..).
enum HostDirectory {
    static func names(_ host: [UInt8]) -> [[UInt8]] {
        guard let dir = HostFS.withCPath(host, { opendir($0) }) else { return [] }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name: [UInt8] = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: UInt8.self, capacity: 256) { bytes in
                    Array(UnsafeBufferPointer(start: bytes, count: strnlen(UnsafeRawPointer(bytes).assumingMemoryBound(to: CChar.self), 256)))
                }
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            names.append(name)
        }
        return names
    }
}

/// An open file descriptor as a ReadableFile. Sequential reads use read(2) (so /proc files,
/// whose size is 0, read to their end); other offsets use pread(2). Block devices report
/// their size through lseek.
final class DescriptorFile: ReadableFile {
    private var fd: Int32
    private var position: Int64 = 0
    let size: Int64?
    let mayNotEnd: Bool

    init(fd: Int32, stat: FileStat) {
        self.fd = fd
        mayNotEnd = stat.kind == .characterDevice || stat.kind == .blockDevice
        switch stat.kind {
        case .regular: size = stat.size > 0 ? stat.size : nil
        case .blockDevice:
            let end = lseek(fd, 0, SEEK_END)
            _ = lseek(fd, 0, SEEK_SET)
            size = end > 0 ? Int64(end) : nil
        default: size = nil
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard fd >= 0, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = offset == position ? Glibc.read(fd, base, buffer.count) : pread(fd, base, buffer.count, off_t(offset))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return 0 }
                throw AccessorError.io(String(cString: strerror(errno)))
            }
            if offset == position { position += Int64(n) }
            return n
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

extension Array where Element == UInt8 {
    /// ASCII letters lowercased (names compared by file_nocase and zip_nocase).
    var lowercasedASCII: [UInt8] {
        map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }
    }
}
