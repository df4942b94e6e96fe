import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What /proc says about one process: enough to decide whether it may be killed and to report
/// what was killed (its executable, command line and the executable's SHA-256).
struct ProcessFacts: Sendable {
    let pid: Int32
    let ppid: Int32
    let name: String
    /// The kernel's task flags (field 9 of /proc/PID/stat).
    let flags: UInt64
    /// Start time in clock ticks after boot (field 22): with the pid, it names one process.
    let startTime: UInt64

    /// PF_KTHREAD: the task is a kernel thread.
    static let kernelThreadFlag: UInt64 = 0x0020_0000

    var isKernelThread: Bool { flags & Self.kernelThreadFlag != 0 || pid == 2 || ppid == 2 }

    /// Reads /proc/PID/stat; nil when the process is gone or the file is malformed.
    static func read(_ pid: Int32) -> ProcessFacts? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"), open < close
        else { return nil }
        let name = String(text[text.index(after: open)..<close])
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ppid = Int32(fields[1]), let flags = UInt64(fields[6]), let start = UInt64(fields[19]) else { return nil }
        return ProcessFacts(pid: pid, ppid: ppid, name: name, flags: flags, startTime: start)
    }

    /// The executable's path ("" for kernel threads or when it cannot be read).
    var exe: String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/\(pid)/exe", &buffer, 4096)
        guard n > 0 else { return "" }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The command line, arguments joined by spaces.
    var commandLine: String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }

    /// SHA-256 of the executable, read through /proc/PID/exe (so a deleted or replaced binary
    /// still hashes to what is running); "" when unreadable.
    var exeSHA256: String {
        let fd = open("/proc/\(pid)/exe", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        return (try? FileDigest.sha256(fd: fd)) ?? ""
    }

    /// The pid of every process on the host with its parent.
    static func parents() -> [Int32: Int32] {
        var result: [Int32: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let facts = read(pid) else { continue }
            result[pid] = facts.ppid
        }
        return result
    }

    /// This process and each of its ancestors up to pid 1: processes a kill must never reach.
    static func selfAndAncestors() -> Set<Int32> {
        var result: Set<Int32> = []
        var pid = getpid()
        while pid > 0, result.insert(pid).inserted, let facts = read(pid) {
            pid = facts.ppid
        }
        return result
    }
}

/// Streamed SHA-256 of an open file (1 MiB reads).
enum FileDigest {
    static func sha256(fd: Int32) throws -> String {
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ResponseError("read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            hasher.update(data: buffer[0..<n])
        }
        return hex(hasher.finalize())
    }

    static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    static func sha256(path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw ResponseError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        return try sha256(fd: fd)
    }
}
