import VQL

/// A tar stream read front to back (ustar, GNU long names, PAX path records): headers are
/// checked (checksum, octal fields) and sizes are never used to allocate, only to copy.
final class TarReader {
    struct Member {
        var name: [UInt8]
        var size: Int64
        var mode: UInt32
        var mtime: Timestamp
        /// '0' regular file, '5' directory, '2' symlink, …
        var type: UInt8
        var dataOffset: Int64
    }

    static let maximumNameLength = 64 << 10
    let file: any ReadableFile
    private var offset: Int64 = 0
    private var finished = false

    init(_ file: any ReadableFile) { self.file = file }

    /// The next member, or nil at the end of the archive.
    func next() throws -> Member? {
        var longName: [UInt8]?
        while !finished {
            let header = try file.read(at: offset, count: 512)
            if header.count < 512 {
                if !header.isEmpty { throw AccessorError.invalid("tar: truncated header") }
                finished = true
                return nil
            }
            if header.allSatisfy({ $0 == 0 }) {
                finished = true
                return nil
            }
            guard TarReader.checksumMatches(header) else { throw AccessorError.invalid("tar: bad header checksum at offset \(offset)") }
            guard let size = TarReader.number(header[124..<136]), size >= 0 else { throw AccessorError.invalid("tar: bad size field") }
            let type = header[156]
            let dataOffset = offset + 512
            let (padded, overflow) = size.addingReportingOverflow(511)
            guard !overflow else { throw AccessorError.invalid("tar: bad size field") }
            offset = dataOffset + padded / 512 * 512
            switch type {
            case UInt8(ascii: "L"):
                guard size <= Int64(TarReader.maximumNameLength) else { throw AccessorError.invalid("tar: long name too long") }
                longName = Array(try file.read(at: dataOffset, count: Int(size)).prefix { $0 != 0 })
                continue
            case UInt8(ascii: "x"):
                guard size <= Int64(TarReader.maximumNameLength) else { throw AccessorError.invalid("tar: PAX header too long") }
                if let path = TarReader.paxPath(try file.read(at: dataOffset, count: Int(size))) { longName = path }
                continue
            case UInt8(ascii: "g"), UInt8(ascii: "K"):
                continue
            default:
                break
            }
            var name = Array(header[0..<100].prefix { $0 != 0 })
            if header[257..<262].elementsEqual("ustar".utf8) {
                let prefix = Array(header[345..<500].prefix { $0 != 0 })
                if !prefix.isEmpty { name = prefix + [UInt8(ascii: "/")] + name }
            }
            let mode = UInt32(truncatingIfNeeded: TarReader.number(header[100..<108]) ?? 0o644)
            let mtime = Timestamp(nanoseconds: (TarReader.number(header[136..<148]) ?? 0).multipliedReportingOverflow(by: 1_000_000_000).partialValue)
            return Member(name: longName ?? name, size: size, mode: mode, mtime: mtime, type: type, dataOffset: dataOffset)
        }
        return nil
    }

    /// An octal (or GNU base-256) numeric field.
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            var value: Int64 = 0
            for (i, byte) in field.enumerated() {
                let b = i == 0 ? byte & 0x7F : byte
                guard value <= (Int64.max >> 8) else { return nil }
                value = value << 8 | Int64(b)
            }
            return value
        }
        var value: Int64 = 0
        var seen = false
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if seen { break }
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value <= (Int64.max >> 3) else { return nil }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
            seen = true
        }
        return value
    }

    static func checksumMatches(_ header: [UInt8]) -> Bool {
        guard let stored = number(header[148..<156]) else { return false }
        var sum: Int64 = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int64(byte) }
        return sum == stored
    }

    /// The `path` record of a PAX extended header ("LEN path=VALUE\n" records).
    static func paxPath(_ data: [UInt8]) -> [UInt8]? {
        var position = 0
        while position < data.count {
            guard let space = data[position...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: data[position..<space], as: UTF8.self)), length > 0,
                  position + length <= data.count else { return nil }
            let record = data[(space + 1)..<(position + length)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")), Array(record[record.startIndex..<eq]) == Array("path".utf8) {
                var value = Array(record[(eq + 1)...])
                if value.last == UInt8(ascii: "\n") { value.removeLast() }
                return value
            }
            position += length
        }
        return nil
    }
}
