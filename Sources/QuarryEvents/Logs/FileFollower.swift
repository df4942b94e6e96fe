import Foundation
import QuarryHost

/// Follows a growing file as `tail -F` does: starts at its end (or at its beginning for a
/// file that appears later, so nothing written to a new file is missed), hands out each
/// complete line once, survives rotation (the old file is read to its end, then the new one
/// from its start) and truncation (reading restarts at 0). Lines longer than `maxLine` are cut
/// there (the rest of the line is skipped), so memory stays bounded whatever the file holds.
final class FileFollower {
    let path: String
    private let maxLine: Int
    private var fd: Int32 = -1
    private var inode: UInt64 = 0
    private var device: UInt64 = 0
    private var offset: Int64 = 0
    private var pending: [UInt8] = []
    private var skippingLongLine = false
    private var startAtEnd: Bool

    init(path: String, startAtEnd: Bool = true, maxLine: Int = 64 * 1024) {
        self.path = path
        self.startAtEnd = startAtEnd
        self.maxLine = max(256, maxLine)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The complete lines appended since the last call (without their newline).
    func poll() -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current = stat()
        let exists = stat(path, &current) == 0
        if fd < 0 {
            guard exists else {
                // The file does not exist (yet): read it from its start when it appears.
                startAtEnd = false
                return []
            }
            open(size: Int64(current.st_size), stats: current)
        } else if exists && (UInt64(current.st_ino) != inode || UInt64(current.st_dev) != device) {
            // Rotated: finish the old file, then follow the new one from its start.
            readAvailable(into: &lines)
            flushPartial(into: &lines)
            close(fd)
            fd = -1
            startAtEnd = false
            open(size: Int64(current.st_size), stats: current)
        } else {
            var opened = stat()
            if fstat(fd, &opened) == 0, Int64(opened.st_size) < offset {
                // Truncated in place: start again at 0.
                offset = 0
                pending = []
                skippingLongLine = false
            }
        }
        readAvailable(into: &lines)
        return lines
    }

    private func open(size: Int64, stats: stat) {
        fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return }
        inode = UInt64(stats.st_ino)
        device = UInt64(stats.st_dev)
        offset = startAtEnd ? size : 0
        pending = []
        skippingLongLine = false
    }

    private func readAvailable(into lines: inout [[UInt8]]) {
        guard fd >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        // At most 64 MiB per poll: a huge burst is handed over in several polls.
        for _ in 0..<1024 {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            guard n > 0 else { return }
            offset += Int64(n)
            var start = 0
            for i in 0..<n where buffer[i] == UInt8(ascii: "\n") {
                append(buffer[start..<i])
                lines.append(strip(pending))
                pending = []
                skippingLongLine = false
                start = i + 1
            }
            append(buffer[start..<n])
        }
    }

    private func append(_ bytes: ArraySlice<UInt8>) {
        guard !skippingLongLine, !bytes.isEmpty else { return }
        pending.append(contentsOf: bytes.prefix(maxLine - pending.count))
        if pending.count >= maxLine {
            // Keep the first maxLine bytes as the line; skip the rest until its newline.
            skippingLongLine = true
        }
    }

    private func flushPartial(into lines: inout [[UInt8]]) {
        if !pending.isEmpty { lines.append(strip(pending)) }
        pending = []
        skippingLongLine = false
    }

    /// Drops a trailing carriage return (CRLF files).
    private func strip(_ line: [UInt8]) -> [UInt8] {
        line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : line
    }
}
