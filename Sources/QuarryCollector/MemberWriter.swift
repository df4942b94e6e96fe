import CZlib
import Foundation
import PrivateFiles

/// Writes the two-member outer zip of a sealed container front to back: every size is known before
/// a member starts (the clear container is finished first), so no header is patched afterwards.
/// Zip64 fields appear when a size or offset reaches 4 GiB — memory images are normal evidence.
struct MemberWriter {
    struct Entry {
        var name: [UInt8]
        var method: UInt16
        var flags: UInt16
        var crc: UInt32
        var compressedSize: UInt64
        var size: UInt64
        var offset: UInt64
        var aesExtra: [UInt8]
    }

    let fd: Int32
    let path: String
    private(set) var position: UInt64 = 0
    /// Sizes and offsets at or past this are written as zip64 (lower only in tests).
    let limit: UInt64

    init(fd: Int32, path: String, zip64Threshold: UInt64 = 0xFFFF_FFFF) {
        self.fd = fd
        self.path = path
        self.limit = zip64Threshold
    }

    mutating func append(_ bytes: [UInt8], count: Int) throws {
        try PrivateFile.writeAll(fd, bytes[0..<count], path: path)
        position += UInt64(count)
    }

    /// A member stored in clear.
    mutating func addStored(name: String, bytes: [UInt8]) throws -> Entry {
        let crc = bytes.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32(crc32(0, nil, 0), $0.baseAddress, uInt($0.count))) }
        let entry = Entry(
            name: Array(name.utf8), method: 0, flags: 0x0800, crc: crc, compressedSize: UInt64(bytes.count), size: UInt64(bytes.count),
            offset: position, aesExtra: [])
        let header = localHeader(entry)
        try append(header, count: header.count)
        try append(bytes, count: bytes.count)
        return entry
    }

    /// Starts an AES-encrypted member of `plainSize` bytes: writes its local header and the AES
    /// salt and check; the caller appends the ciphertext and the 10-byte code.
    mutating func beginEncrypted(name: String, plainSize: UInt64, header aesHeader: [UInt8]) throws -> Entry {
        let entry = Entry(
            name: Array(name.utf8), method: 99, flags: 0x0801, crc: 0,
            compressedSize: plainSize + UInt64(WinZipAESStream.overhead), size: plainSize, offset: position,
            aesExtra: WinZipAESStream.extraField)
        let header = localHeader(entry)
        try append(header, count: header.count)
        try append(aesHeader, count: aesHeader.count)
        return entry
    }

    /// The central directory and end records.
    mutating func finish(entries: [Entry]) throws {
        let directoryStart = position
        var directory: [UInt8] = []
        for e in entries {
            let bigSize = e.compressedSize >= limit || e.size >= limit, bigOffset = e.offset >= limit
            var zip64: [UInt8] = []
            if bigSize { zip64 += le64(e.size) + le64(e.compressedSize) }
            if bigOffset { zip64 += le64(e.offset) }
            let extra = (zip64.isEmpty ? [] : le16(1) + le16(UInt16(zip64.count)) + zip64) + e.aesExtra
            directory += le32(0x0201_4B50) + le16(0x0300 | 51) + le16(version(e, big: bigSize || bigOffset))
            directory += le16(e.flags) + le16(e.method) + le16(0) + le16(0x21) + le32(e.crc)
            directory += le32(bigSize ? 0xFFFF_FFFF : UInt32(e.compressedSize)) + le32(bigSize ? 0xFFFF_FFFF : UInt32(e.size))
            directory += le16(UInt16(e.name.count)) + le16(UInt16(extra.count)) + le16(0) + le16(0) + le16(0)
            directory += le32(0o100600 << 16) + le32(bigOffset ? 0xFFFF_FFFF : UInt32(e.offset))
            directory += e.name + extra
        }
        var tail: [UInt8] = []
        let end = directoryStart + UInt64(directory.count)
        let zip64 = directoryStart >= limit || end >= limit
        if zip64 {
            tail += le32(0x0606_4B50) + le64(44) + le16(0x0300 | 45) + le16(45) + le32(0) + le32(0)
            tail += le64(UInt64(entries.count)) + le64(UInt64(entries.count)) + le64(UInt64(directory.count)) + le64(directoryStart)
            tail += le32(0x0706_4B50) + le32(0) + le64(end) + le32(1)
        }
        tail += le32(0x0605_4B50) + le16(0) + le16(0) + le16(UInt16(entries.count)) + le16(UInt16(entries.count))
        tail += le32(zip64 ? 0xFFFF_FFFF : UInt32(directory.count)) + le32(zip64 ? 0xFFFF_FFFF : UInt32(directoryStart)) + le16(0)
        let all = directory + tail
        try append(all, count: all.count)
    }

    private func version(_ e: Entry, big: Bool) -> UInt16 { e.method == 99 ? 51 : (big ? 45 : 20) }

    private func localHeader(_ e: Entry) -> [UInt8] {
        let big = e.compressedSize >= limit || e.size >= limit
        let zip64 = big ? le16(1) + le16(16) + le64(e.size) + le64(e.compressedSize) : []
        let extra = zip64 + e.aesExtra
        var d = le32(0x0403_4B50) + le16(version(e, big: big)) + le16(e.flags) + le16(e.method) + le16(0) + le16(0x21) + le32(e.crc)
        d += le32(big ? 0xFFFF_FFFF : UInt32(e.compressedSize)) + le32(big ? 0xFFFF_FFFF : UInt32(e.size))
        d += le16(UInt16(e.name.count)) + le16(UInt16(extra.count)) + e.name + extra
        return d
    }

    private func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    private func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    private func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}
