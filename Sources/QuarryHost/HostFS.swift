import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Low-level file access shared by every file plugin: root remapping for dead-disk analysis,
/// byte-exact paths (file names need not be UTF-8), lstat/stat snapshots and bounded reads that
/// never open FIFOs or sockets and never read a device forever.
public enum HostFS {
    /// The directory the live `/` is mapped to (`quarry query --root DIR`); "/" when unset.
    public static func root(_ context: QueryContext) -> [UInt8] {
        var root = Array((context.service("host.root", as: String.self) ?? "/").utf8)
        while root.count > 1 && root.last == UInt8(ascii: "/") { root.removeLast() }
        return root.isEmpty ? [UInt8(ascii: "/")] : root
    }

    /// The host path for a logical (as-seen-by-the-query) path under `root`. Under a remapped
    /// root, symbolic links met on the way are resolved inside the root (an image's absolute
    /// `/usr/lib` link must not lead to the live /usr/lib); `followLast` decides for the last
    /// component (false for lstat-style calls).
    public static func resolve(_ path: [UInt8], root: [UInt8], followLast: Bool = true) -> [UInt8] {
        let slash = UInt8(ascii: "/")
        if root == [slash] { return path }
        var pending = path.split(separator: slash).map(Array.init).reversed() as [[UInt8]]
        var resolved: [[UInt8]] = []
        var hops = 0
        func join(_ parts: [[UInt8]]) -> [UInt8] {
            var out = root
            for part in parts {
                out.append(slash)
                out.append(contentsOf: part)
            }
            return parts.isEmpty ? out + [slash] : out
        }
        while let component = pending.popLast() {
            if component == [UInt8(ascii: ".")] { continue }
            if component == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                _ = resolved.popLast()
                continue
            }
            if pending.isEmpty && !followLast {
                resolved.append(component)
                break
            }
            if hops < 40, let target = readlink(join(resolved + [component])) {
                hops += 1
                if target.first == slash { resolved.removeAll() }
                pending.append(contentsOf: target.split(separator: slash).map(Array.init).reversed())
                continue
            }
            resolved.append(component)
        }
        return join(resolved)
    }

    /// A path argument as bytes: strings, binary strings and path objects (their scalar).
    static func pathBytes(_ value: Value) -> [UInt8]? {
        let value = value.reduced()
        if case .null = value { return nil }
        if let bytes = value.byteValue { return bytes }
        return nil
    }

    /// Calls `body` with a NUL-terminated C string for `path`.
    @inline(__always)
    static func withCPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        var buffer = [CChar](repeating: 0, count: path.count + 1)
        for i in path.indices { buffer[i] = CChar(bitPattern: path[i]) }
        return body(buffer)
    }

    /// `lstat` (or `stat` when `follow`), as a Sendable snapshot; the errno on failure.
    static func stat(_ path: [UInt8], follow: Bool = false) -> Result<FileStat, Errno> {
        var st = Glibc.stat()
        let rc = withCPath(path) { follow ? systemStat($0, &st) : lstat($0, &st) }
        if rc != 0 { return .failure(Errno(errno)) }
        return .success(FileStat(st))
    }

    /// The target of a symbolic link, byte-exact; nil when not a link or unreadable.
    public static func readlink(_ path: [UInt8]) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = withCPath(path) { cPath in
            buffer.withUnsafeMutableBytes { out -> Int in
                guard let base = out.baseAddress else { return -1 }
                return Glibc.readlink(cPath, base.assumingMemoryBound(to: CChar.self), out.count)
            }
        }
        guard n >= 0 else { return nil }
        return Array(buffer[0..<n])
    }

    /// Opens a file for reading after checking what it is: FIFOs, sockets and directories are
    /// refused (opening a FIFO can block forever); devices are allowed only when `allowDevices`.
    static func openForReading(_ path: [UInt8], allowDevices: Bool) -> Result<(Int32, FileStat), ReadError> {
        let st: FileStat
        switch stat(path, follow: true) {
        case .success(let s): st = s
        case .failure(let e): return .failure(.system(e))
        }
        switch st.kind {
        case .regular: break
        case .characterDevice, .blockDevice:
            if !allowDevices { return .failure(.notRegular(st.kind)) }
        default: return .failure(.notRegular(st.kind))
        }
        let fd = withCPath(path) { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        if fd < 0 { return .failure(.system(Errno(errno))) }
        // Re-check on the open descriptor: the path may have been swapped since the stat.
        var now = Glibc.stat()
        if fstat(fd, &now) != 0 {
            close(fd)
            return .failure(.system(Errno(errno)))
        }
        let checked = FileStat(now)
        if checked.kind != st.kind {
            close(fd)
            return .failure(.notRegular(checked.kind))
        }
        return .success((fd, checked))
    }

    /// Reads up to `length` bytes from `offset`, until EOF: /proc files that report size 0 still
    /// return their content. Devices are read only up to `length` and never block.
    public static func read(_ path: [UInt8], offset: Int64 = 0, length: Int, allowDevices: Bool = true) -> Result<[UInt8], ReadError> {
        switch openForReading(path, allowDevices: allowDevices) {
        case .failure(let e): return .failure(e)
        case .success(let (fd, _)):
            defer { close(fd) }
            if offset > 0 && lseek(fd, off_t(offset), SEEK_SET) < 0 {
                // Unseekable (some /proc and device files): skip by reading.
                var skip = offset
                var scratch = [UInt8](repeating: 0, count: 65536)
                while skip > 0 {
                    let n = scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, Int(min(skip, 65536))) }
                    if n <= 0 { return .success([]) }
                    skip -= Int64(n)
                }
            }
            var result: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: min(max(length, 1), 1 << 20))
            while result.count < length {
                let want = min(chunk.count, length - result.count)
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, want) }
                if n < 0 {
                    if errno == EINTR { continue }
                    if result.isEmpty && errno != EAGAIN { return .failure(.system(Errno(errno))) }
                    break
                }
                if n == 0 { break }
                result.append(contentsOf: chunk[0..<n])
            }
            return .success(result)
        }
    }

    /// A whole small text file (under root) as lines; nil when unreadable.
    static func lines(_ path: String, root: [UInt8], limit: Int = 64 << 20) -> [Substring]? {
        guard case .success(let bytes) = read(resolve(Array(path.utf8), root: root), length: limit, allowDevices: false) else {
            return nil
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    }

    /// A /proc file read lean (open, read to EOF, close): no stat, since /proc sizes are 0.
    public static func readProc(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var result = [UInt8](repeating: 0, count: 4096)
        var count = 0
        while count < limit {
            if count == result.count { result.append(contentsOf: repeatElement(0, count: result.count)) }
            let n = result.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return Glibc.read(fd, base + count, min(raw.count - count, limit - count))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return count == 0 ? nil : Array(result[0..<count])
            }
            if n == 0 { break }
            count += n
        }
        result.removeSubrange(count...)
        return result
    }

    /// A small /proc or /sys file read without root remapping (live kernel state).
    static func procFile(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        guard case .success(let bytes) = read(Array(path.utf8), length: limit, allowDevices: false) else { return nil }
        return bytes
    }
}

/// An errno value with its message.
public struct Errno: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
    public var description: String { String(cString: strerror(code)) }
}

/// Why a read was refused or failed.
public enum ReadError: Error, Sendable, CustomStringConvertible {
    case system(Errno)
    case notRegular(FileStat.Kind)
    case other(String)
    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .notRegular(let kind): return "not a regular file (\(kind.rawValue))"
        case .other(let message): return message
        }
    }
}

/// The parts of `struct stat` the plugins use, as a Sendable value.
public struct FileStat: Sendable {
    /// The file type bits of st_mode.
    public enum Kind: String, Sendable {
        case regular = "file", directory, symlink, fifo, socket
        case characterDevice = "character device", blockDevice = "block device", unknown
    }
    public var mode: UInt32
    public var size: Int64
    public var uid: UInt32
    public var gid: UInt32
    public var device: UInt64
    public var inode: UInt64
    public var rdev: UInt64
    public var nlink: UInt64
    public var atime: Timestamp
    public var mtime: Timestamp
    public var ctime: Timestamp

    init(_ st: Glibc.stat) {
        mode = st.st_mode
        size = Int64(st.st_size)
        uid = st.st_uid
        gid = st.st_gid
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        rdev = UInt64(st.st_rdev)
        nlink = UInt64(st.st_nlink)
        atime = FileStat.timestamp(Int64(st.st_atim.tv_sec), Int64(st.st_atim.tv_nsec))
        mtime = FileStat.timestamp(Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec))
        ctime = FileStat.timestamp(Int64(st.st_ctim.tv_sec), Int64(st.st_ctim.tv_nsec))
    }

    /// Seconds and nanoseconds as a Timestamp, clamped (a crafted or corrupt time before 1677 or
    /// after 2262 would overflow 64-bit nanoseconds).
    static func timestamp(_ seconds: Int64, _ nanos: Int64) -> Timestamp {
        // A second of headroom each way: formatting subtracts up to 999,999,999 ns.
        let limit = Int64.max - 1_000_000_000
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return Timestamp(nanoseconds: seconds < 0 ? -limit : limit) }
        let (total, overflow2) = scaled.addingReportingOverflow(nanos)
        if overflow2 || total > limit { return Timestamp(nanoseconds: limit) }
        return Timestamp(nanoseconds: max(-limit, total))
    }

    public var kind: Kind {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFREG): return .regular
        case UInt32(S_IFDIR): return .directory
        case UInt32(S_IFLNK): return .symlink
        case UInt32(S_IFIFO): return .fifo
        case UInt32(S_IFSOCK): return .socket
        case UInt32(S_IFCHR): return .characterDevice
        case UInt32(S_IFBLK): return .blockDevice
        default: return .unknown
        }
    }

    /// Go's os.FileMode.String() rendering ("-rw-r--r--", "drwxr-xr-x", "Lrwxrwxrwx").
    public var modeString: String { FileMode.string(mode) }

    public var devMajor: UInt64 { ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~UInt64(0xfff)) }
    public var devMinor: UInt64 { (rdev & 0xff) | ((rdev >> 12) & ~UInt64(0xff)) }
}

/// stat(2), outside `HostFS` whose own `stat` shadows the C function.
@inline(__always)
private func systemStat(_ path: UnsafePointer<CChar>, _ st: UnsafeMutablePointer<stat>) -> Int32 {
    stat(path, st)
}
