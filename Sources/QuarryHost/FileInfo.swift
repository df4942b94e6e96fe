import Foundation
import Synchronization
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Byte-level path helpers (no Foundation path normalisation, which would mangle raw names).
enum PathBytes {
    static let slash = UInt8(ascii: "/")

    /// The last component, as OSPath computes it for a raw path.
    static func basename(_ path: [UInt8]) -> [UInt8] { OSPath.rawBasename(path) }

    static func join(_ parent: [UInt8], _ name: [UInt8]) -> [UInt8] {
        if parent.last == slash { return parent + name }
        return parent + [slash] + name
    }
}

/// A file row (glob, stat): members are computed when read, so `SELECT FullPath FROM glob()`
/// never calls lstat; the stat result is cached once taken.
public final class FileRow: HostObject {
    let logical: [UInt8]
    let host: [UInt8]
    /// The d_type from readdir (DT_UNKNOWN when not known).
    let directoryType: UInt8
    let globs: [String]
    private let cache = Mutex<FileStat?>(nil)
    private let targetIsDirectory: Bool?
    private let context: QueryContext?
    /// The remapped root, when there is one (nil for the live "/").
    private let root: [UInt8]?

    static let names = [
        "OSPath", "Name", "FullPath", "Size", "Mode", "IsDir", "IsLink",
        "Mtime", "Atime", "Ctime", "Btime", "Uid", "Gid", "Data", "Globs",
    ]

    init(logical: [UInt8], host: [UInt8], directoryType: UInt8, globs: [String], stat: FileStat? = nil,
         targetIsDirectory: Bool? = nil, root: [UInt8]? = nil, context: QueryContext?) {
        self.logical = logical
        self.host = host
        self.directoryType = directoryType
        self.globs = globs
        self.targetIsDirectory = targetIsDirectory
        self.context = context
        self.root = root == [PathBytes.slash] ? nil : root
        if let stat { cache.withLock { $0 = stat } }
    }

    public var typeName: String { "FileInfo" }
    public var memberNames: [String] { FileRow.names }

    /// The lstat snapshot, taken on first need; nil (logged once) when the file vanished.
    var stat: FileStat? {
        if let cached = cache.withLock({ $0 }) { return cached }
        switch HostFS.stat(host) {
        case .success(let st):
            cache.withLock { $0 = st }
            return st
        case .failure(let e):
            // A file that vanished since it was listed is routine (/proc, temp files): debug only.
            context?.logOnce(e.code == ENOENT ? .debug : .warning, "glob: \(String(decoding: logical, as: UTF8.self)): \(e)")
            return nil
        }
    }

    var isLink: Bool {
        if directoryType == UInt8(DT_LNK) { return true }
        if directoryType != UInt8(DT_UNKNOWN) { return false }
        return stat?.kind == .symlink
    }

    var isDirectory: Bool {
        if let targetIsDirectory { return targetIsDirectory }
        if directoryType == UInt8(DT_DIR) { return true }
        if directoryType == UInt8(DT_LNK) {
            // Follow the link inside the remapped root, never out of it.
            let target = root.map { HostFS.resolve(logical, root: $0) } ?? host
            if case .success(let st) = HostFS.stat(target, follow: true) { return st.kind == .directory }
            return false
        }
        if directoryType != UInt8(DT_UNKNOWN) { return false }
        return stat?.kind == .directory
    }

    public func member(_ name: String) -> Value? {
        switch name {
        case "OSPath": return .object(OSPath(logical))
        case "Name": return .string(bytes: PathBytes.basename(logical))
        case "FullPath": return .string(bytes: logical)
        case "Size": return stat.map { .int($0.size) } ?? .null
        case "Mode": return stat.map { .object(FileMode($0.mode)) } ?? .null
        case "IsDir": return .bool(isDirectory)
        case "IsLink": return .bool(isLink)
        case "Mtime": return stat.map { .timestamp($0.mtime) } ?? .null
        case "Atime": return stat.map { .timestamp($0.atime) } ?? .null
        case "Ctime": return stat.map { .timestamp($0.ctime) } ?? .null
        case "Btime":
            if let birth = BirthTime.of(host) { return .timestamp(birth) }
            return stat.map { .timestamp($0.ctime) } ?? .null
        case "Uid": return stat.map { .int(Int64($0.uid)) } ?? .null
        case "Gid": return stat.map { .int(Int64($0.gid)) } ?? .null
        case "Data": return data
        case "Globs": return .list(globs.map { .string($0) })
        case "Sys": return stat.map(FileRow.sys) ?? .null
        default:
            let lowered = name.lowercased()
            if let match = FileRow.names.first(where: { $0.lowercased() == lowered }) { return member(match) }
            if lowered == "mtime" || lowered == "modtime" { return member("Mtime") }
            return nil
        }
    }

    /// The raw stat fields under the names Go's syscall.Stat_t uses (Velociraptor's `Sys`, as in
    /// `Sys.Uid`); not a listed column, so `SELECT *` stays as it was.
    static func sys(_ st: FileStat) -> Value {
        .dict(Dict([
            ("Dev", .int(Int64(bitPattern: st.device))), ("Ino", .int(Int64(bitPattern: st.inode))),
            ("Nlink", .int(Int64(bitPattern: st.nlink))), ("Mode", .int(Int64(st.mode))),
            ("Uid", .int(Int64(st.uid))), ("Gid", .int(Int64(st.gid))),
            ("Rdev", .int(Int64(bitPattern: st.rdev))), ("Size", .int(st.size)),
        ]))
    }

    private var data: Value {
        var pairs: [(String, Value)] = []
        if isLink, let target = HostFS.readlink(host) { pairs.append(("Link", .string(bytes: target))) }
        if let st = stat {
            if st.kind == .characterDevice || st.kind == .blockDevice {
                pairs.append(("DevMajor", .int(Int64(st.devMajor))))
                pairs.append(("DevMinor", .int(Int64(st.devMinor))))
            }
        }
        if let fs = FileSystemType.name(of: host) { pairs.append(("FSType", .string(fs))) }
        return .dict(Dict(pairs))
    }
}

/// The file system a path lives on: the type of the longest mount point containing it, from
/// /proc/self/mountinfo (read once per process; statfs is not exposed by the Glibc module).
enum FileSystemType {
    static let table: [(mountPoint: [UInt8], type: String)] = {
        guard let bytes = HostFS.procFile("/proc/self/mountinfo") else { return [] }
        var result: [([UInt8], String)] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 6, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            result.append((Array(MountsPlugin.unescape(String(fields[4])).utf8), String(fields[dash + 1])))
        }
        return result.sorted { $0.0.count > $1.0.count }
    }()

    static func name(of path: [UInt8]) -> String? {
        for (mountPoint, type) in table {
            if mountPoint == [PathBytes.slash] { return type }
            if path.starts(with: mountPoint) && (path.count == mountPoint.count || path[mountPoint.count] == PathBytes.slash) {
                return type
            }
        }
        return nil
    }
}

/// Birth time through statx(2). Swift's Glibc module does not import `statx`, so the C function
/// is looked up once with dlsym and its 256-byte result read at the kernel ABI's fixed offsets.
enum BirthTime {
    typealias Function = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UInt32, UnsafeMutableRawPointer) -> Int32

    private struct Loaded: @unchecked Sendable {
        let function: Function?
    }

    private static let loaded: Loaded = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "statx") else { return Loaded(function: nil) }
        return Loaded(function: unsafeBitCast(symbol, to: Function.self))
    }()

    static let atFileDescriptorCwd: Int32 = -100
    static let noFollow: Int32 = 0x100
    static let birthMask: UInt32 = 0x800

    /// The birth time of `path` (not following a final link); nil when the file system has none.
    static func of(_ path: [UInt8]) -> Timestamp? {
        guard let statx = loaded.function else { return nil }
        var buffer = [UInt8](repeating: 0, count: 256)
        let rc = HostFS.withCPath(path) { cPath in
            buffer.withUnsafeMutableBytes { raw -> Int32 in
                guard let base = raw.baseAddress else { return -1 }
                return statx(atFileDescriptorCwd, cPath, noFollow, birthMask, base)
            }
        }
        guard rc == 0 else { return nil }
        return buffer.withUnsafeBytes { raw -> Timestamp? in
            // struct statx: stx_mask at 0, stx_btime {tv_sec: i64, tv_nsec: u32} at 80.
            let mask = raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            guard mask & birthMask != 0 else { return nil }
            let seconds = raw.loadUnaligned(fromByteOffset: 80, as: Int64.self)
            let nanos = raw.loadUnaligned(fromByteOffset: 88, as: UInt32.self)
            return FileStat.timestamp(seconds, Int64(nanos))
        }
    }
}
