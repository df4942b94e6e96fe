import Synchronization
import VQL

/// A zip file's central directory, read with every field checked against the file's size: no
/// offset, count or length in the archive is trusted to allocate or seek with. Members are
/// opened lazily as streams (stored, deflated, WinZip-AES encrypted); a member whose data
/// overlaps another member's (how the densest zip bombs are built) or whose path would climb
/// out of the archive (`..`, NUL) is refused. Zip64 sizes and offsets are supported.
final class ZipArchive: @unchecked Sendable {
    /// One member as the central directory describes it.
    struct Entry {
        var name: [UInt8]
        var components: [[UInt8]]
        var method: UInt16
        var flags: UInt16
        var compressedSize: Int64
        var size: Int64
        var localOffset: Int64
        var mtime: Timestamp
        var mode: UInt32
        var isDirectory: Bool
        /// WinZip AES: key strength (1, 2, 3) and the real compression method.
        var aes: (strength: UInt8, method: UInt16)?
        var overlapping = false
    }

    /// A node of the member tree: a member and/or a directory implied by member paths.
    final class Node {
        var name: [UInt8]
        var entry: Int?
        var children: [[UInt8]: Node] = [:]
        init(name: [UInt8]) { self.name = name }
    }

    static let maximumEntries = 1 << 20
    static let maximumComment = 65535

    let file: any ReadableFile
    let fileSize: Int64
    private(set) var entries: [Entry] = []
    let root = Node(name: [])
    /// Keys folded to lower case (zip_nocase).
    let foldedRoot = Node(name: [])
    private let lock = Mutex<Void>(())
    /// Messages about skipped members, logged once by the accessor.
    private(set) var problems: [String] = []

    init(file: any ReadableFile) throws {
        self.file = file
        guard let size = file.size, size >= 22 else { throw AccessorError.invalid("not a zip file (too short or size unknown)") }
        self.fileSize = size
        try readDirectory()
        buildTree()
    }

    // MARK: - Reading raw bytes

    func bytes(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= fileSize, Int64(count) <= fileSize - offset else {
            throw AccessorError.invalid("zip: structure points outside the file")
        }
        return try lock.withLock { _ in try file.read(at: offset, count: count) }
    }

    /// Positional reads for member streams, serialised with the directory reads.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try lock.withLock { _ in try file.read(into: buffer, at: offset) }
    }

    // MARK: - Central directory

    private func readDirectory() throws {
        let tailLength = Int(min(fileSize, Int64(22 + ZipArchive.maximumComment)))
        let tail = try bytes(at: fileSize - Int64(tailLength), count: tailLength)
        var eocd = -1
        var i = tail.count - 22
        while i >= 0 {
            if tail[i] == 0x50 && tail[i + 1] == 0x4B && tail[i + 2] == 5 && tail[i + 3] == 6 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw AccessorError.invalid("not a zip file (no end of central directory)") }
        let eocdOffset = fileSize - Int64(tailLength) + Int64(eocd)
        var count = Int64(LE.u16(tail, eocd + 10))
        var directorySize = Int64(LE.u32(tail, eocd + 12))
        var directoryOffset = Int64(LE.u32(tail, eocd + 16))
        // Zip64: the locator sits just before the end record.
        if eocdOffset >= 20, count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            let locator = try bytes(at: eocdOffset - 20, count: 20)
            if LE.u32(locator, 0) == 0x0706_4B50 {
                let recordOffset = LE.i64(locator, 8)
                let record = try bytes(at: recordOffset, count: 56)
                guard LE.u32(record, 0) == 0x0606_4B50 else { throw AccessorError.invalid("zip64: bad end of central directory record") }
                count = LE.i64(record, 32)
                directorySize = LE.i64(record, 40)
                directoryOffset = LE.i64(record, 48)
            }
        }
        guard count >= 0, directorySize >= 0, directoryOffset >= 0, directoryOffset <= fileSize,
              directorySize <= fileSize - directoryOffset else {
            throw AccessorError.invalid("zip: central directory lies outside the file")
        }
        guard count <= Int64(ZipArchive.maximumEntries), count * 46 <= directorySize else {
            throw AccessorError.invalid("zip: central directory claims \(count) members, more than it can hold")
        }
        let directory = try bytes(at: directoryOffset, count: Int(directorySize))
        var p = 0
        for _ in 0..<Int(count) {
            guard p + 46 <= directory.count, LE.u32(directory, p) == 0x0201_4B50 else {
                throw AccessorError.invalid("zip: bad central directory entry")
            }
            let madeBy = LE.u16(directory, p + 4)
            let flags = UInt16(LE.u16(directory, p + 8))
            let method = UInt16(LE.u16(directory, p + 10))
            let dosTime = LE.u16(directory, p + 12)
            let dosDate = LE.u16(directory, p + 14)
            var compressedSize = Int64(LE.u32(directory, p + 20))
            var size = Int64(LE.u32(directory, p + 24))
            let nameLength = LE.u16(directory, p + 28)
            let extraLength = LE.u16(directory, p + 30)
            let commentLength = LE.u16(directory, p + 32)
            let external = UInt32(LE.u32(directory, p + 38))
            var localOffset = Int64(LE.u32(directory, p + 42))
            let end = p + 46 + nameLength + extraLength + commentLength
            guard end <= directory.count else { throw AccessorError.invalid("zip: central directory entry runs past its end") }
            let name = Array(directory[(p + 46)..<(p + 46 + nameLength)])
            let extra = Array(directory[(p + 46 + nameLength)..<(p + 46 + nameLength + extraLength)])
            var mtime = ZipArchive.dosTime(date: dosDate, time: dosTime)
            var aes: (UInt8, UInt16)?
            var e = 0
            while e + 4 <= extra.count {
                let tag = LE.u16(extra, e)
                let length = LE.u16(extra, e + 2)
                let body = e + 4
                guard body + length <= extra.count else { break }
                switch tag {
                case 0x0001:
                    // Zip64: only the fields whose 32-bit value is saturated are present, in order.
                    var q = body
                    if size == 0xFFFF_FFFF, q + 8 <= body + length { size = LE.i64(extra, q); q += 8 }
                    if compressedSize == 0xFFFF_FFFF, q + 8 <= body + length { compressedSize = LE.i64(extra, q); q += 8 }
                    if localOffset == 0xFFFF_FFFF, q + 8 <= body + length { localOffset = LE.i64(extra, q) }
                case 0x5455:
                    if length >= 5, extra[body] & 1 != 0 {
                        mtime = Timestamp(nanoseconds: Int64(LE.u32(extra, body + 1)) * 1_000_000_000)
                    }
                case 0x9901:
                    if length >= 7 { aes = (extra[body + 4], UInt16(LE.u16(extra, body + 5))) }
                default: break
                }
                e = body + length
            }
            p = end
            let isDirectory = name.last == UInt8(ascii: "/")
            var mode: UInt32
            if madeBy >> 8 == 3, external >> 16 != 0 {
                mode = external >> 16
            } else {
                mode = isDirectory ? 0o040777 : (external & 1 != 0 ? 0o100444 : 0o100666)
            }
            if isDirectory { mode = (mode & ~0o170000) | 0o040000 }
            if mode & 0o170000 == 0 { mode |= 0o100000 }
            guard compressedSize >= 0, size >= 0, localOffset >= 0, localOffset < fileSize else {
                problems.append("\(String(decoding: name, as: UTF8.self)): sizes or offset out of range, skipped")
                continue
            }
            guard let components = ZipArchive.safeComponents(name) else {
                problems.append("\(String(decoding: name, as: UTF8.self)): unsafe member path (.., NUL), skipped")
                continue
            }
            entries.append(Entry(name: name, components: components, method: method, flags: flags, compressedSize: compressedSize,
                                 size: size, localOffset: localOffset, mtime: mtime, mode: mode, isDirectory: isDirectory, aes: aes))
        }
        markOverlaps()
    }

    /// Members whose local header starts inside another member's data share bytes with it: the
    /// construction of overlapping zip bombs. They are refused.
    private func markOverlaps() {
        let order = entries.indices.filter { !entries[$0].isDirectory }.sorted { entries[$0].localOffset < entries[$1].localOffset }
        var reach: Int64 = -1
        for index in order {
            let entry = entries[index]
            if entry.localOffset < reach {
                entries[index].overlapping = true
                problems.append("\(String(decoding: entry.name, as: UTF8.self)): data overlaps another member (a zip bomb?), refused")
            }
            reach = max(reach, entry.localOffset + 30 + entry.compressedSize)
        }
    }

    /// A member name as components: `\` and `/` separate, `.` and empty parts dropped; nil when a
    /// component is `..` or holds a NUL (such names would escape when extracted).
    static func safeComponents(_ name: [UInt8]) -> [[UInt8]]? {
        var parts: [[UInt8]] = []
        for part in OSPath.split(name, type: .generic) {
            if part == [UInt8(ascii: "."), UInt8(ascii: ".")] || part.contains(0) { return nil }
            parts.append(part)
        }
        return parts
    }

    private func buildTree() {
        for (index, entry) in entries.enumerated() where !entry.components.isEmpty {
            for (tree, fold) in [(root, false), (foldedRoot, true)] {
                var node = tree
                for component in entry.components {
                    let key = fold ? component.lowercasedASCII : component
                    if let child = node.children[key] {
                        node = child
                    } else {
                        let child = Node(name: component)
                        node.children[key] = child
                        node = child
                    }
                }
                node.entry = index
            }
        }
    }

    /// The node at `components` (case folded when `fold`).
    func node(_ components: [[UInt8]], fold: Bool) -> Node? {
        var node = fold ? foldedRoot : root
        for component in components {
            guard let child = node.children[fold ? component.lowercasedASCII : component] else { return nil }
            node = child
        }
        return node
    }

    /// DOS date and time read as UTC (what Go's archive/zip, and so Velociraptor, does).
    static func dosTime(date: Int, time: Int) -> Timestamp {
        let year = 1980 + (date >> 9), month = max(1, (date >> 5) & 15), day = max(1, date & 31)
        let hour = time >> 11, minute = (time >> 5) & 63, second = (time & 31) * 2
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        let seconds = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second)
        return Timestamp(nanoseconds: seconds * 1_000_000_000)
    }

    // MARK: - Members

    /// Where a member's data starts (after its local header), checked against the file.
    func dataRange(_ entry: Entry) throws -> (start: Int64, length: Int64) {
        let header = try bytes(at: entry.localOffset, count: 30)
        guard LE.u32(header, 0) == 0x0403_4B50 else { throw AccessorError.invalid("zip: bad local header for \(String(decoding: entry.name, as: UTF8.self))") }
        let start = entry.localOffset + 30 + Int64(LE.u16(header, 26)) + Int64(LE.u16(header, 28))
        guard start <= fileSize, entry.compressedSize <= fileSize - start else {
            throw AccessorError.invalid("zip: \(String(decoding: entry.name, as: UTF8.self)): data runs past the end of the file (truncated?)")
        }
        return (start, entry.compressedSize)
    }

    /// Opens a member's content as a stream; `passwords` are tried for encrypted members.
    func open(_ index: Int, passwords: [[UInt8]]) throws -> any ReadableFile {
        let entry = entries[index]
        let label = String(decoding: entry.name, as: UTF8.self)
        if entry.overlapping { throw AccessorError.invalid("zip: \(label): data overlaps another member (a zip bomb?), refused") }
        if entry.isDirectory { throw AccessorError.invalid("zip: \(label) is a directory") }
        let (start, length) = try dataRange(entry)
        var raw: any ReadableFile = ArchiveWindow(self, start: start, length: length)
        var method = entry.method
        if let aes = entry.aes, method == 99 {
            raw = try WinZipAES.decrypting(raw, length: length, strength: aes.strength, passwords: passwords, name: label)
            method = aes.method
        } else if entry.flags & 1 != 0 {
            throw AccessorError.unsupported("zip: \(label) is encrypted with the legacy ZipCrypto scheme, which is not supported")
        }
        switch method {
        case 0:
            return WindowFile(raw, start: 0, length: min(entry.size, raw.size ?? entry.size))
        case 8:
            let input = raw
            return StreamFile(limit: entry.size) { try InflateDecoder(input, format: .raw) }
        case 12:
            let input = raw
            return StreamFile(limit: entry.size) { try Bzip2Decoder(input) }
        default:
            throw AccessorError.unsupported("zip: \(label) uses compression method \(method), which is not supported")
        }
    }
}

/// Bytes of the archive file read through the archive's lock.
final class ArchiveWindow: ReadableFile {
    let archive: ZipArchive
    let start: Int64
    let length: Int64
    init(_ archive: ZipArchive, start: Int64, length: Int64) {
        self.archive = archive
        self.start = start
        self.length = length
    }
    var size: Int64? { length }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0, offset < length else { return 0 }
        let count = Int(min(Int64(buffer.count), length - offset))
        return try archive.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: start + offset)
    }
}

/// Little-endian field readers over byte arrays (callers check bounds first).
enum LE {
    @inline(__always) static func u16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
    @inline(__always) static func u32(_ b: [UInt8], _ i: Int) -> Int { u16(b, i) | u16(b, i + 2) << 16 }
    @inline(__always) static func u64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(u32(b, i)) | UInt64(u32(b, i + 4)) << 32 }
    /// A 64-bit field as a non-negative Int64 (-1 when it does not fit, which every check rejects).
    @inline(__always) static func i64(_ b: [UInt8], _ i: Int) -> Int64 {
        let v = u64(b, i)
        return v > UInt64(Int64.max) ? -1 : Int64(v)
    }
}

extension Array where Element == UInt8 {
    /// ASCII letters lowercased (zip_nocase and case-insensitive globs).
    var lowercasedASCII: [UInt8] { map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 } }
}
