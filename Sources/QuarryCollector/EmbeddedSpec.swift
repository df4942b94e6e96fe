import Crypto
import Foundation

/// The collector's specification travels at the end of the collector file itself: the JSON spec,
/// its length, its SHA-256 and a magic marker. Whatever precedes it (the quarry executable, or a
/// self-extracting bundle) is left untouched, so the file stays runnable; the checksum catches a
/// file damaged in transit before anything is collected.
public enum EmbeddedSpec {
    /// Marks the end of a collector file (16 bytes).
    static let magic = Array("QUARRY-COLLECT-1".utf8)
    /// Length (8) + SHA-256 (32) + magic (16).
    static let trailerSize = 56
    /// A spec is small; anything bigger is not one of ours.
    static let maxSpecBytes = 64 << 20

    /// Why a collector file could not be read.
    public struct SpecError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// `spec` encoded for the end of a collector file.
    public static func trailer(for spec: CollectorSpec) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        let json = try encoder.encode(spec)
        var out = json
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: SHA256.hash(data: json))
        out.append(contentsOf: magic)
        return out
    }

    /// The spec at the end of the file at `path`; nil when the file carries none (an ordinary
    /// quarry executable). A file that ends with the marker but whose spec does not check out is
    /// an error, never silently ignored.
    public static func read(path: String) throws -> CollectorSpec? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) >= trailerSize else { return nil }
        let size = Int64(info.st_size)
        let tail = try readExactly(fd, at: size - Int64(trailerSize), count: trailerSize)
        guard Array(tail[40...]) == magic else { return nil }
        let length = tail[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(maxSpecBytes), Int64(length) + Int64(trailerSize) <= size else {
            throw SpecError(message: "\(path): the collector's built-in configuration is damaged (bad length)")
        }
        let json = try readExactly(fd, at: size - Int64(trailerSize) - Int64(length), count: Int(length))
        guard Array(SHA256.hash(data: json)) == Array(tail[8..<40]) else {
            throw SpecError(message: "\(path): the collector's built-in configuration is damaged (checksum mismatch); ask for a new copy")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do {
            return try decoder.decode(CollectorSpec.self, from: Data(json))
        } catch {
            throw SpecError(message: "\(path): the collector's built-in configuration does not decode: \(error)")
        }
    }

    static func readExactly(_ fd: Int32, at offset: Int64, count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return pread(fd, base + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SpecError(message: "cannot read the collector file: short read") }
            done += n
        }
        return buffer
    }
}
