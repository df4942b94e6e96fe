import CZlib
import Foundation

/// Reads the members of a zip container: stored members (what Quarry writes) and deflated ones
/// (what Velociraptor writes), zip64 included, so either tool's containers can be read. Used by
/// `quarry collection show`, `quarry query --collection` and the agent.
///
/// The archive is hostile input: every field is checked against the bytes that are really there
/// before it is used, and a damaged archive gives a `ZipError` naming what is wrong. Only the
/// central directory is held in memory; members are read from the file in pieces (`open`), so a
/// container of any size — memory and disk images inside — is read with bounded memory.
public struct ZipReader: Sendable {
    public struct Member: Sendable {
        public let name: String
        public let size: Int
        let compressedSize: Int
        let method: UInt16
        let flags: UInt16
        let crc: UInt32
        let localOffset: Int
    }

    public let path: String
    public let members: [Member]
    /// The most a central directory may take (it is read whole).
    static let maxDirectoryBytes = 256 << 20

    public init(path: String) throws {
        self.path = path
        let file = try ZipFile(path: path)
        members = try Self.directory(file)
    }

    public func member(_ name: String) -> Member? { members.last { $0.name == name } }

    /// A member's bytes in memory; for members larger than `limit` use `open` instead.
    public func read(_ name: String, limit: Int = 1 << 30) throws -> Data {
        guard let member = member(name) else { throw ZipError(message: "no member \(name)") }
        guard member.size <= limit else {
            throw ZipError(message: "\(name) holds \(member.size) bytes, more than \(limit) to read at once")
        }
        let stream = try open(member)
        var data = Data(capacity: min(member.size, 64 << 20))
        while let chunk = try stream.read(max: 1 << 20) { data.append(chunk) }
        return data
    }

    /// A member's bytes as a stream, read from the file as they are asked for.
    public func open(_ name: String) throws -> MemberStream {
        guard let member = member(name) else { throw ZipError(message: "no member \(name)") }
        return try open(member)
    }

    public func open(_ member: Member) throws -> MemberStream {
        try MemberStream(file: ZipFile(path: path), member: member)
    }

    /// Where a member's stored bytes lie in the file, as they are (compressed or encrypted), for
    /// readers of formats this one does not decode (WinZip AES members of sealed collections).
    public func rawLocation(_ member: Member) throws -> (offset: Int64, length: Int64, encrypted: Bool) {
        let file = try ZipFile(path: path)
        guard Int64(member.localOffset) + 30 <= file.size else { throw ZipError(message: "\(member.name): its local header is past the end of the file") }
        let header = try file.read(at: Int64(member.localOffset), count: 30)
        guard header.u32(0) == 0x0403_4B50 else { throw ZipError(message: "\(member.name): no local header where the directory says") }
        let start = Int64(member.localOffset) + 30 + Int64(header.u16(26)) + Int64(header.u16(28))
        guard start + Int64(member.compressedSize) <= file.size else {
            throw ZipError(message: "\(member.name): its \(member.compressedSize) bytes run past the end of the file")
        }
        return (start, Int64(member.compressedSize), member.flags & 1 != 0)
    }

    /// The central directory, through the zip64 records when the archive has them.
    static func directory(_ file: ZipFile) throws -> [Member] {
        let path = file.path
        guard file.size >= 22 else { throw ZipError(message: "\(path) is not a zip file (\(file.size) bytes)") }
        // The end record is in the last 22 + 65,535 bytes (its comment is at most 65,535 bytes).
        let tailLength = Int(min(file.size, 22 + 0xFFFF + 20))
        let tailStart = file.size - Int64(tailLength)
        let tail = try file.read(at: tailStart, count: tailLength)
        var end = tail.count - 22
        while end >= 0 && !(tail.u32(end) == 0x0605_4B50 && end + 22 + tail.u16(end + 20) <= tail.count) { end -= 1 }
        guard end >= 0 else { throw ZipError(message: "\(path): no zip directory (the container is damaged or not a zip file)") }
        var count = UInt64(tail.u16(end + 10))
        var directorySize = UInt64(tail.u32(end + 12))
        var directoryOffset = UInt64(tail.u32(end + 16))
        let endOffset = tailStart + Int64(end)
        var directoryLimit = UInt64(endOffset)
        if end >= 20, tail.u32(end - 20) == 0x0706_4B50 {
            // zip64: the locator names the zip64 end record.
            let recordOffset = tail.u64(end - 20 + 8)
            guard endOffset >= 76, recordOffset <= UInt64(endOffset) - 76 else {
                throw ZipError(message: "\(path): the zip64 locator points past the end of the file")
            }
            let record = try file.read(at: Int64(recordOffset), count: 56)
            guard record.u32(0) == 0x0606_4B50 else { throw ZipError(message: "\(path): no zip64 end record where the locator says") }
            count = record.u64(32)
            directorySize = record.u64(40)
            directoryOffset = record.u64(48)
            directoryLimit = recordOffset
        }
        guard directoryOffset <= directoryLimit, directorySize <= directoryLimit - directoryOffset else {
            throw ZipError(message: "\(path): the central directory (\(directorySize) bytes at \(directoryOffset)) runs past the end of the file")
        }
        guard directorySize <= UInt64(maxDirectoryBytes) else {
            throw ZipError(message: "\(path): the central directory takes \(directorySize) bytes, more than \(maxDirectoryBytes)")
        }
        let directory = try file.read(at: Int64(directoryOffset), count: Int(directorySize))
        var members: [Member] = []
        var p = 0
        while UInt64(members.count) < count {
            let number = members.count + 1
            guard p + 46 <= directory.count else {
                throw ZipError(message: "\(path): the directory lists \(count) members but holds \(members.count)")
            }
            guard directory.u32(p) == 0x0201_4B50 else { throw ZipError(message: "\(path): bad central directory entry \(number)") }
            let nameLength = directory.u16(p + 28), extraLength = directory.u16(p + 30), commentLength = directory.u16(p + 32)
            guard p + 46 + nameLength + extraLength + commentLength <= directory.count else {
                throw ZipError(message: "\(path): directory entry \(number) runs past the end of the directory")
            }
            var size = UInt64(directory.u32(p + 24)), compressedSize = UInt64(directory.u32(p + 20))
            var offset = UInt64(directory.u32(p + 42))
            let extra = p + 46 + nameLength
            if size == 0xFFFF_FFFF || compressedSize == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
                guard let fields = zip64Fields(directory, from: extra, length: extraLength) else {
                    throw ZipError(message: "\(path): directory entry \(number) needs zip64 sizes it does not carry")
                }
                var q = fields.start
                func next() throws -> UInt64 {
                    guard q + 8 <= fields.end else { throw ZipError(message: "\(path): directory entry \(number) has a short zip64 field") }
                    defer { q += 8 }
                    return directory.u64(q)
                }
                if size == 0xFFFF_FFFF { size = try next() }
                if compressedSize == 0xFFFF_FFFF { compressedSize = try next() }
                if offset == 0xFFFF_FFFF { offset = try next() }
            }
            let limit = UInt64(file.size)
            guard size < UInt64(Int64.max), compressedSize <= limit, offset <= limit else {
                throw ZipError(message: "\(path): directory entry \(number) names sizes or an offset past the end of the file")
            }
            members.append(Member(
                name: String(decoding: directory[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self),
                size: Int(size), compressedSize: Int(compressedSize), method: UInt16(directory.u16(p + 10)),
                flags: UInt16(directory.u16(p + 8)), crc: directory.u32(p + 16), localOffset: Int(offset)))
            p += 46 + nameLength + extraLength + commentLength
        }
        return members
    }

    /// The data of the zip64 extra field (id 1) within an entry's extra fields.
    private static func zip64Fields(_ bytes: [UInt8], from start: Int, length: Int) -> (start: Int, end: Int)? {
        var q = start
        while q + 4 <= start + length {
            let id = bytes.u16(q), size = bytes.u16(q + 2)
            guard q + 4 + size <= start + length else { return nil }
            if id == 1 { return (q + 4, q + 4 + size) }
            q += 4 + size
        }
        return nil
    }
}

/// One member's bytes, read from the file piece by piece (inflated on the way for method 8) and
/// checked at the end against the directory's size and CRC-32.
public final class MemberStream {
    private let file: ZipFile
    private let member: ZipReader.Member
    private var position: Int64
    private var remainingInput: Int64
    private var produced = 0
    private var crc = uLong(crc32(0, nil, 0))
    private let inflater: Inflater?
    private var pending: [Data] = []
    private var done = false

    init(file: ZipFile, member: ZipReader.Member) throws {
        self.file = file
        self.member = member
        let name = member.name
        guard member.flags & 1 == 0 else { throw ZipError(message: "\(name) is encrypted, which is not supported") }
        guard Int64(member.localOffset) + 30 <= file.size else { throw ZipError(message: "\(name): its local header is past the end of the file") }
        let header = try file.read(at: Int64(member.localOffset), count: 30)
        guard header.u32(0) == 0x0403_4B50 else { throw ZipError(message: "\(name): no local header where the directory says") }
        let start = Int64(member.localOffset) + 30 + Int64(header.u16(26)) + Int64(header.u16(28))
        guard start + Int64(member.compressedSize) <= file.size else {
            throw ZipError(message: "\(name): its \(member.compressedSize) bytes run past the end of the file")
        }
        position = start
        remainingInput = Int64(member.compressedSize)
        switch member.method {
        case 0:
            guard member.size == member.compressedSize else { throw ZipError(message: "\(name): a stored member whose two sizes differ") }
            inflater = nil
        case 8:
            inflater = try Inflater(name: name)
        default:
            throw ZipError(message: "\(name) uses compression method \(member.method), which is not supported")
        }
    }

    /// The next piece of at most about `max` bytes, or nil at the end (after the size and CRC-32
    /// are checked).
    public func read(max: Int = 1 << 20) throws -> Data? {
        while pending.isEmpty {
            if done { return nil }
            if remainingInput == 0 && (inflater == nil || inflater?.finished == true) {
                try finish()
                return nil
            }
            let count = Int(min(Int64(Swift.max(max, 4096)), remainingInput))
            let input = try file.read(at: position, count: count)
            position += Int64(count)
            remainingInput -= Int64(count)
            if let inflater {
                let limit = member.size
                var total = produced
                try inflater.feed(input, last: remainingInput == 0) { chunk in
                    total += chunk.count
                    pending.append(chunk)
                    return total <= limit
                }
                if total > limit { throw ZipError(message: "\(member.name) inflates to more than the \(limit) bytes its directory entry says") }
                if remainingInput == 0 && !inflater.finished { throw ZipError(message: "\(member.name): the deflate data ends early") }
            } else {
                pending.append(Data(input))
            }
        }
        let chunk = pending.removeFirst()
        produced += chunk.count
        chunk.withUnsafeBytes { crc = crc32(crc, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt($0.count)) }
        return chunk
    }

    private func finish() throws {
        done = true
        guard produced == member.size else { throw ZipError(message: "\(member.name): \(produced) bytes where the directory says \(member.size)") }
        guard UInt32(truncatingIfNeeded: crc) == member.crc else { throw ZipError(message: "\(member.name) is corrupt (CRC-32 mismatch)") }
    }
}

/// Raw DEFLATE decoding in pieces, each output piece handed on as it is made.
final class Inflater {
    /// zlib keeps the stream's address: it lives at one place for the inflater's whole life.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private(set) var finished = false
    private let name: String

    init(name: String) throws {
        self.name = name
        stream.initialize(to: z_stream())
        guard quarry_inflate_init_raw(stream) == Z_OK else {
            stream.deallocate()
            throw ZipError(message: "zlib: cannot initialise")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// Inflates `input`; `output` gets each piece and returns false to stop early.
    func feed(_ input: [UInt8], last: Bool, output: (Data) -> Bool) throws {
        var input = input
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        try input.withUnsafeMutableBufferPointer { inBuffer in
            stream.pointee.next_in = inBuffer.baseAddress
            stream.pointee.avail_in = uInt(inBuffer.count)
            while !finished && (stream.pointee.avail_in > 0 || last) {
                let (status, made) = buffer.withUnsafeMutableBufferPointer { outBuffer -> (Int32, Int) in
                    stream.pointee.next_out = outBuffer.baseAddress
                    stream.pointee.avail_out = uInt(outBuffer.count)
                    let status = CZlib.inflate(stream, Z_NO_FLUSH)
                    return (status, outBuffer.count - Int(stream.pointee.avail_out))
                }
                if made > 0 && !output(Data(buffer[0..<made])) { return }
                switch status {
                case Z_STREAM_END: finished = true
                case Z_OK: if made == 0 && stream.pointee.avail_in == 0 { return }
                case Z_BUF_ERROR: return
                default: throw ZipError(message: "\(name): corrupt deflate data (zlib \(status))")
                }
            }
        }
        stream.pointee.next_in = nil
    }
}

/// An archive file read with pread: its size, and bytes at an offset (never past the end).
final class ZipFile: @unchecked Sendable {
    let path: String
    let fd: Int32
    let size: Int64

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ZipError(message: "cannot read \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ZipError(message: "\(path) is not a regular file")
        }
        size = Int64(info.st_size)
    }

    deinit { close(fd) }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, Int64(count) <= size - offset else {
            throw ZipError(message: "\(path): \(count) bytes at \(offset) are past the end of the file")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return pread(fd, base + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ZipError(message: "cannot read \(path): \(n < 0 ? String(cString: strerror(errno)) : "unexpected end")") }
            done += n
        }
        return bytes
    }
}

extension [UInt8] {
    /// Little-endian fields; callers check bounds first.
    func u16(_ i: Int) -> Int { Int(self[i]) | Int(self[i + 1]) << 8 }
    func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
    func u64(_ i: Int) -> UInt64 { UInt64(u32(i)) | UInt64(u32(i + 4)) << 32 }
}
