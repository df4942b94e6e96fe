import CResponse
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Extended attributes of an open file, read and written by name (values kept as bytes).
enum ExtendedAttributes {
    /// Every attribute of `fd` (names the caller may not read are skipped).
    static func read(fd: Int32) -> [String: [UInt8]] {
        let size = flistxattr(fd, nil, 0)
        guard size > 0 else { return [:] }
        var names = [CChar](repeating: 0, count: size)
        let got = flistxattr(fd, &names, size)
        guard got > 0 else { return [:] }
        var result: [String: [UInt8]] = [:]
        for raw in names[0..<got].split(separator: 0) {
            let name = String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let length = fgetxattr(fd, name, nil, 0)
            guard length >= 0 else { continue }
            var value = [UInt8](repeating: 0, count: max(length, 1))
            let n = fgetxattr(fd, name, &value, length)
            guard n >= 0 else { continue }
            result[name] = Array(value[0..<n])
        }
        return result
    }

    /// Sets each attribute on `fd`; returns the names that could not be set, with the reason.
    static func write(_ attributes: [String: [UInt8]], fd: Int32) -> [String] {
        var failed: [String] = []
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            let rc = value.withUnsafeBytes { fsetxattr(fd, name, $0.baseAddress, value.count, 0) }
            if rc != 0 { failed.append("\(name): \(String(cString: strerror(errno)))") }
        }
        return failed
    }
}

/// Owner, mode and times of a file as numbers that survive a JSON manifest.
struct FileStat: Codable, Sendable, Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var uid: UInt32
    var gid: UInt32
    /// Permission bits, including set-uid, set-gid and sticky (st_mode & 07777).
    var mode: UInt32
    var links: UInt64
    var atime: Int64
    var atimeNanos: Int64
    var mtime: Int64
    var mtimeNanos: Int64

    init(_ s: stat) {
        device = UInt64(s.st_dev)
        inode = UInt64(s.st_ino)
        size = Int64(s.st_size)
        uid = s.st_uid
        gid = s.st_gid
        mode = UInt32(s.st_mode) & 0o7777
        links = UInt64(s.st_nlink)
        atime = Int64(s.st_atim.tv_sec)
        atimeNanos = Int64(s.st_atim.tv_nsec)
        mtime = Int64(s.st_mtim.tv_sec)
        mtimeNanos = Int64(s.st_mtim.tv_nsec)
    }

    static func of(fd: Int32) throws -> FileStat {
        var s = stat()
        guard fstat(fd, &s) == 0 else { throw ResponseError("fstat: \(String(cString: strerror(errno)))") }
        return FileStat(s)
    }

    /// lstat(2) of `path`: nil when nothing is there, with the file type bits.
    static func at(_ path: String) -> (FileStat, mode_t)? {
        var s = stat()
        guard lstat(path, &s) == 0 else { return nil }
        return (FileStat(s), s.st_mode & S_IFMT)
    }

    /// Sets access and modification times (to the nanosecond) on an open file.
    func applyTimes(fd: Int32) throws {
        var times = [timespec(tv_sec: Int(atime), tv_nsec: Int(atimeNanos)), timespec(tv_sec: Int(mtime), tv_nsec: Int(mtimeNanos))]
        guard futimens(fd, &times) == 0 else { throw ResponseError("futimens: \(String(cString: strerror(errno)))") }
    }
}
