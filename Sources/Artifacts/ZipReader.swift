import CZlib
import Foundation

/// Reads the members of a zip container: stored members (what Quarry writes) and deflated ones
/// (what Velociraptor writes), so either tool's containers can be read. Used by
/// `quarry collection show` and `quarry query --collection`.
public struct ZipReader: Sendable {
    public struct Member: Sendable {
        public let name: String
        public let size: Int
        let compressedSize: Int
        let method: UInt16
        let localOffset: Int
    }

    private let data: Data
    public let members: [Member]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ZipError(message: "cannot read \(path)") }
        self.data = data
        let bytes = [UInt8](data)
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        guard bytes.count >= 22 else { throw ZipError(message: "\(path) is not a zip file") }
        var eocd = bytes.count - 22
        while eocd >= 0 && !(bytes[eocd] == 0x50 && bytes[eocd + 1] == 0x4B && bytes[eocd + 2] == 5 && bytes[eocd + 3] == 6) { eocd -= 1 }
        guard eocd >= 0 else { throw ZipError(message: "\(path): no zip directory (the container is damaged)") }
        let count = u16(eocd + 10)
        var p = u32(eocd + 16)
        var members: [Member] = []
        for _ in 0..<count {
            guard p + 46 <= bytes.count, u32(p) == 0x0201_4B50 else { throw ZipError(message: "\(path): bad central directory") }
            let method = UInt16(u16(p + 10))
            let compressedSize = u32(p + 20)
            let size = u32(p + 24)
            let nameLength = u16(p + 28)
            let extra = u16(p + 30)
            let comment = u16(p + 32)
            let offset = u32(p + 42)
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            members.append(Member(name: name, size: size, compressedSize: compressedSize, method: method, localOffset: offset))
            p += 46 + nameLength + extra + comment
        }
        self.members = members
    }

    public func read(_ name: String) throws -> Data {
        guard let m = members.last(where: { $0.name == name }) else { throw ZipError(message: "no member \(name)") }
        let bytes = [UInt8](data[m.localOffset..<(m.localOffset + 30)])
        let nameLength = Int(bytes[26]) | Int(bytes[27]) << 8
        let extra = Int(bytes[28]) | Int(bytes[29]) << 8
        let start = m.localOffset + 30 + nameLength + extra
        switch m.method {
        case 0: return data[start..<(start + m.size)]
        case 8: return try ZipReader.inflate(data[start..<(start + m.compressedSize)], expected: m.size, name: name)
        default: throw ZipError(message: "\(name) uses compression method \(m.method), which is not supported")
        }
    }

    /// Raw DEFLATE (zip method 8) through zlib.
    static func inflate(_ input: Data, expected: Int, name: String) throws -> Data {
        var stream = z_stream()
        guard quarry_inflate_init_raw(&stream) == Z_OK else { throw ZipError(message: "zlib: cannot initialise") }
        defer { inflateEnd(&stream) }
        var output = Data(count: max(expected, 1))
        var input = input
        let status: Int32 = input.withUnsafeMutableBytes { inBuffer in
            output.withUnsafeMutableBytes { outBuffer in
                stream.next_in = inBuffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(outBuffer.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw ZipError(message: "\(name): corrupt deflate data (zlib \(status))") }
        return output.prefix(Int(stream.total_out))
    }
}
