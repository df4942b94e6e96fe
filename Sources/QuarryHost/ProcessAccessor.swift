import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `process`: a process's memory as a sparse file, the path being `/PID`. Offsets are virtual
/// addresses; the readable mappings of /proc/PID/maps are the data ranges (so upload() and
/// yara() skip the unmapped address space) and reading anywhere else gives zeros, as
/// Velociraptor's accessor does.
public struct ProcessAccessor: Accessor {
    public init() {}
    public var name: String { "process" }
    public var summary: String { "A process's memory as a sparse file: the path is /PID, offsets are addresses." }
    public var pathType: PathType { .linux }
    public var canList: Bool { false }

    static func pid(_ path: OSPath) throws -> Int32 {
        guard let first = path.components.first, let pid = Int32(String(decoding: first, as: UTF8.self)), pid > 0 else {
            throw AccessorError.invalid("process accessor: the path must be /PID, got \(PathValues.display(path))")
        }
        return pid
    }

    /// The readable mappings of a process (start..<end), from /proc/PID/maps.
    static func readableRanges(_ pid: Int32) -> [Range<Int64>]? {
        guard let maps = HostFS.readProc("/proc/\(pid)/maps") else { return nil }
        var ranges: [Range<Int64>] = []
        for line in String(decoding: maps, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[1].hasPrefix("r") else { continue }
            if fields.count > 5, fields[5].hasPrefix("[vvar") || fields[5].hasPrefix("[vsyscall]") { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16),
                  end > start, end <= UInt64(Int64.max) else { continue }
            ranges.append(Int64(start)..<Int64(end))
        }
        return ranges
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let pid = try ProcessAccessor.pid(path)
        guard let ranges = ProcessAccessor.readableRanges(pid) else { throw AccessorError.notFound("process \(pid)") }
        return FileInfo(path: path, size: ranges.last?.upperBound ?? 0, mode: 0o100400)
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let pid = try ProcessAccessor.pid(path)
        guard let ranges = ProcessAccessor.readableRanges(pid) else { throw AccessorError.notFound("process \(pid)") }
        let fd = Glibc.open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AccessorError.io("process \(pid): cannot open its memory: \(String(cString: strerror(errno)))") }
        return ProcessMemoryFile(fd: fd, ranges: ranges)
    }
}

/// /proc/PID/mem read within the readable mappings; a region that fails to read (guard pages,
/// device mappings) reads as zeros.
final class ProcessMemoryFile: ReadableFile {
    private var fd: Int32
    let ranges: [Range<Int64>]?

    init(fd: Int32, ranges: [Range<Int64>]) {
        self.fd = fd
        self.ranges = ranges
    }

    var size: Int64? { ranges?.last?.upperBound ?? 0 }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard let end = size, offset >= 0, offset < end, let base = buffer.baseAddress, fd >= 0 else { return 0 }
        let count = Int(min(Int64(buffer.count), end - offset))
        base.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        for range in ranges ?? [] where range.upperBound > offset && range.lowerBound < offset + Int64(count) {
            let from = max(range.lowerBound, offset)
            let to = min(range.upperBound, offset + Int64(count))
            var done: Int64 = 0
            while from + done < to {
                let n = pread(fd, base + Int(from - offset + done), Int(to - from - done), off_t(from + done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                done += Int64(n)
            }
        }
        return count
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}
