import Foundation

/// Why writing the container failed.
public struct ZipError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "zip: \(message)" }
}

/// An append-only zip writer that keeps the archive valid after every member: the central
/// directory is rewritten behind the last member each time, and an optional trailing member (the
/// collection manifest) is replaced as members are added. A crash loses at most the member being
/// written. Members are stored (not compressed), streamed, with their CRC-32 patched in afterwards.
public final class ZipWriter {
    private struct Entry {
        var name: [UInt8]
        var crc: UInt32
        var size: UInt64
        var offset: UInt64
    }

    private let handle: FileHandle
    private var entries: [Entry] = []
    /// Where the next member starts (the end of the last permanent member).
    private var dataEnd: UInt64 = 0
    private var trailer: Entry?
    public private(set) var names = Set<String>()

    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forUpdatingAtPath: path) else {
            throw ZipError(message: "cannot create \(path)")
        }
        self.handle = handle
    }

    deinit { try? handle.close() }

    /// Adds a member whose bytes come from `reader` (fill the buffer, return the count; 0 ends).
    /// Returns its size and SHA-256 of the content.
    @discardableResult
    public func add(name: String, reader: (inout [UInt8]) throws -> Int) throws -> UInt64 {
        // The trailing member is overwritten by the new one: keep its bytes to append it again.
        let savedTrailer = try trailer.map { (String(decoding: $0.name, as: UTF8.self), try readBack($0)) }
        trailer = nil
        let entry = try writeMember(name: name, at: dataEnd, reader: reader)
        entries.append(entry)
        names.insert(name)
        dataEnd = entry.offset + 30 + UInt64(entry.name.count) + entry.size
        if let (trailerName, data) = savedTrailer {
            try setTrailer(name: trailerName, data: data)
        } else {
            try finishDirectory(after: dataEnd)
        }
        return entry.size
    }

    public func add(name: String, data: Data) throws {
        var remaining = data[...]
        try add(name: name) { buffer in
            let n = min(buffer.count, remaining.count)
            buffer.replaceSubrange(0..<n, with: remaining.prefix(n))
            remaining = remaining.dropFirst(n)
            return n
        }
    }

    /// Writes (or replaces) the trailing member, which always stays last.
    public func setTrailer(name: String, data: Data) throws {
        var remaining = data[...]
        let entry = try writeMember(name: name, at: dataEnd) { buffer in
            let n = min(buffer.count, remaining.count)
            buffer.replaceSubrange(0..<n, with: remaining.prefix(n))
            remaining = remaining.dropFirst(n)
            return n
        }
        trailer = entry
        try finishDirectory(after: entry.offset + 30 + UInt64(entry.name.count) + entry.size)
    }

    private func readBack(_ entry: Entry) throws -> Data {
        try handle.seek(toOffset: entry.offset + 30 + UInt64(entry.name.count))
        return try handle.read(upToCount: Int(entry.size)) ?? Data()
    }

    private func writeMember(name: String, at offset: UInt64, reader: (inout [UInt8]) throws -> Int) throws -> Entry {
        let nameBytes = Array(name.utf8)
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: localHeader(name: nameBytes, crc: 0, size: 0))
        var crc = CRC32()
        var size: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try reader(&buffer)
            if n <= 0 { break }
            crc.update(buffer[0..<n])
            try handle.write(contentsOf: buffer[0..<n])
            size += UInt64(n)
        }
        guard size < UInt64(UInt32.max) else { throw ZipError(message: "member \(name) is larger than 4 GiB (zip64 is not written yet)") }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: localHeader(name: nameBytes, crc: crc.value, size: UInt32(size)))
        return Entry(name: nameBytes, crc: crc.value, size: size, offset: offset)
    }

    private func finishDirectory(after end: UInt64) throws {
        var directory = Data()
        let all = entries + (trailer.map { [$0] } ?? [])
        for e in all {
            directory.append(le32(0x0201_4B50))
            directory.append(le16(20)); directory.append(le16(20)); directory.append(le16(0x0800)); directory.append(le16(0))
            directory.append(le16(0)); directory.append(le16(0x21))
            directory.append(le32(e.crc)); directory.append(le32(UInt32(e.size))); directory.append(le32(UInt32(e.size)))
            directory.append(le16(UInt16(e.name.count))); directory.append(le16(0)); directory.append(le16(0))
            directory.append(le16(0)); directory.append(le16(0)); directory.append(le32(0o100644 << 16))
            directory.append(le32(UInt32(e.offset)))
            directory.append(contentsOf: e.name)
        }
        var eocd = Data()
        eocd.append(le32(0x0605_4B50)); eocd.append(le16(0)); eocd.append(le16(0))
        eocd.append(le16(UInt16(all.count))); eocd.append(le16(UInt16(all.count)))
        eocd.append(le32(UInt32(directory.count))); eocd.append(le32(UInt32(end))); eocd.append(le16(0))
        try handle.seek(toOffset: end)
        try handle.write(contentsOf: directory + eocd)
        try handle.truncate(atOffset: end + UInt64(directory.count + eocd.count))
        try handle.synchronize()
    }

    private func localHeader(name: [UInt8], crc: UInt32, size: UInt32) -> Data {
        var d = Data()
        d.append(le32(0x0403_4B50)); d.append(le16(20)); d.append(le16(0x0800)); d.append(le16(0))
        d.append(le16(0)); d.append(le16(0x21))
        d.append(le32(crc)); d.append(le32(size)); d.append(le32(size))
        d.append(le16(UInt16(name.count))); d.append(le16(0))
        d.append(contentsOf: name)
        return d
    }

    private func le16(_ v: UInt16) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    private func le32(_ v: UInt32) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
}

/// CRC-32 (IEEE 802.3), table driven.
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    private var crc: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: ArraySlice<UInt8>) {
        var c = crc
        Self.table.withUnsafeBufferPointer { table in
            for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        crc = c
    }

    var value: UInt32 { crc ^ 0xFFFF_FFFF }
}
