import CZlib
import Foundation
import PrivateFiles

/// Why reading or writing a container failed.
public struct ZipError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { "zip: \(message)" }
}

/// An append-only zip writer that keeps the archive valid after every member: the central
/// directory is rewritten behind the last member each time, and an optional trailing member (the
/// collection manifest) is replaced as members are added. A crash loses at most the member being
/// written. Members are stored (not compressed), streamed, with their CRC-32 and sizes patched into
/// the local header afterwards.
///
/// Zip64: every local header reserves a 20-byte extra field; a member that reaches 4 GiB gets the
/// zip64 sizes there (and in its directory entry), one that stays smaller gets plain sizes and the
/// field is marked as padding. Offsets past 4 GiB and more than 65,535 members get zip64 directory
/// entries and the zip64 end records. Memory and disk images are normal evidence.
///
/// The file is created private (0600 unless `mode` says otherwise) by the call that makes it; a
/// file already at the path is removed first, never written through.
public final class ZipWriter {
    private struct Entry {
        var name: [UInt8]
        var crc: UInt32
        var size: UInt64
        var offset: UInt64
        var headerSize: UInt64 { 30 + UInt64(name.count) + UInt64(ZipWriter.reservedExtra) }
        var end: UInt64 { offset + headerSize + size }
    }

    /// Bytes reserved in every local header for the zip64 sizes (id, length, two 64-bit sizes).
    static let reservedExtra = 20
    /// Marks the reserved field when it holds no zip64 sizes (an id no reader assigns meaning to).
    static let paddingExtraId: UInt16 = 0x7151

    private let fd: Int32
    private let path: String
    private var entries: [Entry] = []
    /// Where the next member starts (the end of the last permanent member).
    private var dataEnd: UInt64 = 0
    private var trailer: Entry?
    public private(set) var names = Set<String>()
    /// Sizes and offsets at or past this are written as zip64 (lower only in tests).
    let zip64Threshold: UInt64
    /// Member counts at or past this get the zip64 end records (lower only in tests).
    let zip64CountThreshold: Int
    /// Where the last permanent member's bytes start in the file, so a reader can stream them back
    /// while the container is still being written.
    public private(set) var lastMemberDataOffset: UInt64 = 0

    public convenience init(path: String, mode: mode_t = PrivateFile.privateMode) throws {
        try self.init(path: path, mode: mode, zip64Threshold: 0xFFFF_FFFF, zip64CountThreshold: 0xFFFF)
    }

    init(path: String, mode: mode_t, zip64Threshold: UInt64, zip64CountThreshold: Int) throws {
        do {
            fd = try PrivateFile.replace(path, mode: mode, readable: true)
        } catch {
            throw ZipError(message: "\(error)")
        }
        self.path = path
        self.zip64Threshold = zip64Threshold
        self.zip64CountThreshold = zip64CountThreshold
        try finishDirectory(after: 0)
    }

    deinit { close(fd) }

    /// Adds a member whose bytes come from `reader` (fill the buffer, return the count; 0 ends).
    /// Returns its size.
    @discardableResult
    public func add(name: String, reader: (inout [UInt8]) throws -> Int) throws -> UInt64 {
        // The trailing member is overwritten by the new one: keep its bytes to append it again.
        let savedTrailer = try trailer.map { (String(decoding: $0.name, as: UTF8.self), try readBack($0)) }
        trailer = nil
        let entry = try writeMember(name: name, at: dataEnd, reader: reader)
        entries.append(entry)
        names.insert(name)
        dataEnd = entry.end
        lastMemberDataOffset = entry.offset + entry.headerSize
        if let (trailerName, data) = savedTrailer {
            try setTrailer(name: trailerName, data: data)
        } else {
            try finishDirectory(after: dataEnd)
        }
        return entry.size
    }

    public func add(name: String, data: Data) throws {
        try add(name: name, reader: Self.reader(data))
    }

    /// Writes (or replaces) the trailing member, which always stays last.
    public func setTrailer(name: String, data: Data) throws {
        let entry = try writeMember(name: name, at: dataEnd, reader: Self.reader(data))
        trailer = entry
        try finishDirectory(after: entry.end)
    }

    static func reader(_ data: Data) -> (inout [UInt8]) throws -> Int {
        var remaining = data[...]
        return { buffer in
            let n = min(buffer.count, remaining.count)
            buffer.replaceSubrange(0..<n, with: remaining.prefix(n))
            remaining = remaining.dropFirst(n)
            return n
        }
    }

    private func readBack(_ entry: Entry) throws -> Data {
        var data = Data(count: Int(entry.size))
        let start = entry.offset + entry.headerSize
        let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
        guard n == Int(entry.size) else { throw ZipError(message: "cannot read back \(path)") }
        return data
    }

    private func writeMember(name: String, at offset: UInt64, reader: (inout [UInt8]) throws -> Int) throws -> Entry {
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= 0xFFFF else { throw ZipError(message: "member name longer than 65,535 bytes") }
        var entry = Entry(name: nameBytes, crc: 0, size: 0, offset: offset)
        try write(localHeader(entry), at: offset)
        var crc = uLong(crc32(0, nil, 0))
        var position = offset + entry.headerSize
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try reader(&buffer)
            if n <= 0 { break }
            try buffer.withUnsafeBufferPointer { all in
                let chunk = UnsafeBufferPointer(rebasing: all[0..<min(n, all.count)])
                crc = crc32(crc, chunk.baseAddress, uInt(chunk.count))
                try write(UnsafeRawBufferPointer(chunk), at: position)
            }
            position += UInt64(n)
        }
        entry.crc = UInt32(truncatingIfNeeded: crc)
        entry.size = position - offset - entry.headerSize
        try write(localHeader(entry), at: offset)
        return entry
    }

    private func write(_ data: Data, at offset: UInt64) throws {
        try data.withUnsafeBytes { try write($0, at: offset) }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ZipError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    private func finishDirectory(after end: UInt64) throws {
        var directory = Data()
        let all = entries + (trailer.map { [$0] } ?? [])
        for e in all {
            let bigSize = e.size >= zip64Threshold, bigOffset = e.offset >= zip64Threshold
            var extra = Data()
            if bigSize || bigOffset {
                var fields = Data()
                if bigSize { fields.append(le64(e.size)); fields.append(le64(e.size)) }
                if bigOffset { fields.append(le64(e.offset)) }
                extra.append(le16(1)); extra.append(le16(UInt16(fields.count))); extra.append(fields)
            }
            directory.append(le32(0x0201_4B50))
            // Made by Unix (3) so extracted members keep the private mode below.
            directory.append(le16(0x0300 | 45)); directory.append(le16(bigSize || bigOffset ? 45 : 20))
            directory.append(le16(0x0800)); directory.append(le16(0))
            directory.append(le16(0)); directory.append(le16(0x21))
            directory.append(le32(e.crc))
            directory.append(le32(bigSize ? 0xFFFF_FFFF : UInt32(e.size))); directory.append(le32(bigSize ? 0xFFFF_FFFF : UInt32(e.size)))
            directory.append(le16(UInt16(e.name.count))); directory.append(le16(UInt16(extra.count))); directory.append(le16(0))
            directory.append(le16(0)); directory.append(le16(0)); directory.append(le32(0o100600 << 16))
            directory.append(le32(bigOffset ? 0xFFFF_FFFF : UInt32(e.offset)))
            directory.append(contentsOf: e.name)
            directory.append(extra)
        }
        var tail = Data()
        let directorySize = UInt64(directory.count)
        let zip64 = all.count >= zip64CountThreshold || end >= zip64Threshold || directorySize >= zip64Threshold
        if zip64 {
            let record = end + directorySize
            tail.append(le32(0x0606_4B50)); tail.append(le64(44))
            tail.append(le16(0x0300 | 45)); tail.append(le16(45)); tail.append(le32(0)); tail.append(le32(0))
            tail.append(le64(UInt64(all.count))); tail.append(le64(UInt64(all.count)))
            tail.append(le64(directorySize)); tail.append(le64(end))
            tail.append(le32(0x0706_4B50)); tail.append(le32(0)); tail.append(le64(record)); tail.append(le32(1))
        }
        let count = zip64 ? 0xFFFF : UInt16(all.count)
        tail.append(le32(0x0605_4B50)); tail.append(le16(0)); tail.append(le16(0))
        tail.append(le16(count)); tail.append(le16(count))
        tail.append(le32(zip64 ? 0xFFFF_FFFF : UInt32(directorySize))); tail.append(le32(zip64 ? 0xFFFF_FFFF : UInt32(end)))
        tail.append(le16(0))
        try write(directory + tail, at: end)
        guard ftruncate(fd, off_t(end) + off_t(directory.count + tail.count)) == 0, fsync(fd) == 0 else {
            throw ZipError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func localHeader(_ e: Entry) -> Data {
        let big = e.size >= zip64Threshold
        var d = Data()
        d.append(le32(0x0403_4B50)); d.append(le16(big ? 45 : 20)); d.append(le16(0x0800)); d.append(le16(0))
        d.append(le16(0)); d.append(le16(0x21))
        d.append(le32(e.crc))
        d.append(le32(big ? 0xFFFF_FFFF : UInt32(e.size))); d.append(le32(big ? 0xFFFF_FFFF : UInt32(e.size)))
        d.append(le16(UInt16(e.name.count))); d.append(le16(UInt16(Self.reservedExtra)))
        d.append(contentsOf: e.name)
        d.append(le16(big ? 1 : Self.paddingExtraId)); d.append(le16(16))
        d.append(le64(big ? e.size : 0)); d.append(le64(big ? e.size : 0))
        return d
    }

    private func le16(_ v: UInt16) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    private func le32(_ v: UInt32) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    private func le64(_ v: UInt64) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
}
