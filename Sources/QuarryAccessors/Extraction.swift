import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Writes extracted members under one output directory and nowhere else: every directory on
/// the way is opened with openat(O_NOFOLLOW), so neither `..`, an absolute name nor a
/// symbolic link planted by an earlier member can lead outside; files are created 0600 and
/// directories 0700 from the first syscall.
final class ExtractionWriter {
    let root: String
    private let rootDescriptor: Int32

    init(root: String) throws {
        self.root = root
        if mkdir(root, 0o700) != 0 && errno != EEXIST {
            throw AccessorError.io("\(root): \(String(cString: strerror(errno)))")
        }
        let fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AccessorError.io("\(root): \(String(cString: strerror(errno)))") }
        rootDescriptor = fd
    }

    deinit { Glibc.close(rootDescriptor) }

    /// Why a member name cannot be extracted, or nil when it is safe (relative, no `..`, no NUL).
    static func refusal(_ name: [UInt8]) -> String? {
        if name.contains(0) { return "contains a NUL byte" }
        if name.first == UInt8(ascii: "/") || name.first == UInt8(ascii: "\\") { return "is absolute" }
        if name.count >= 2, name[1] == UInt8(ascii: ":") { return "is absolute (drive letter)" }
        if OSPath.split(name, type: .generic).contains([UInt8(ascii: "."), UInt8(ascii: ".")]) { return "climbs out with .." }
        return nil
    }

    /// The components a safe name extracts to.
    static func components(_ name: [UInt8]) -> [[UInt8]] { OSPath.split(name, type: .generic) }

    /// Opens (creating as needed) the directory `components` below the root; the caller closes it.
    private func directory(_ components: ArraySlice<[UInt8]>) throws -> Int32 {
        var fd = dup(rootDescriptor)
        guard fd >= 0 else { throw AccessorError.io("dup: \(String(cString: strerror(errno)))") }
        for component in components {
            let next: Int32 = component.withCString { name in
                if mkdirat(fd, name, 0o700) != 0 && errno != EEXIST { return -1 }
                return openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let code = errno
            Glibc.close(fd)
            guard next >= 0 else {
                throw AccessorError.io("\(String(decoding: component, as: UTF8.self)): \(String(cString: strerror(code))) (not following links out of the output directory)")
            }
            fd = next
        }
        return fd
    }

    /// Creates a directory below the root.
    func makeDirectory(_ components: [[UInt8]]) throws {
        Glibc.close(try directory(components[...]))
    }

    /// Writes a file from what `read` yields (at most `limit` bytes); returns the bytes written.
    func write(_ components: [[UInt8]], limit: Int64, read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Int64 {
        guard let name = components.last else { throw AccessorError.invalid("empty member name") }
        let parent = try directory(components.dropLast())
        defer { Glibc.close(parent) }
        let fd = name.withCString { openat(parent, $0, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw AccessorError.io("\(String(decoding: name, as: UTF8.self)): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        while total < limit {
            let want = Int(min(Int64(buffer.count), limit - total))
            let n = try buffer.withUnsafeMutableBytes { try read(UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            if n <= 0 { break }
            try ExtractionWriter.writeAll(fd, buffer[0..<n])
            total += Int64(n)
        }
        return total
    }

    /// Writes all of `bytes` to a descriptor (retrying short writes and EINTR).
    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws {
        var written = 0
        while written < bytes.count {
            let w = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return Glibc.write(fd, base + written, bytes.count - written)
            }
            if w < 0 && errno == EINTR { continue }
            guard w > 0 else { throw AccessorError.io("write: \(String(cString: strerror(errno)))") }
            written += w
        }
    }

    /// The path a member is written to.
    func path(_ components: [[UInt8]]) -> String {
        ([root] + components.map { String(decoding: $0, as: UTF8.self) }).joined(separator: "/")
    }
}

extension Array where Element == UInt8 {
    /// Calls `body` with the bytes as a NUL-terminated C string.
    func withCString<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        var copy = self.map { CChar(bitPattern: $0) }
        copy.append(0)
        return copy.withUnsafeBufferPointer { buffer in buffer.baseAddress.map(body) ?? "".withCString(body) }
    }
}
