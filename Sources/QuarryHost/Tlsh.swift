import Foundation
import VQL

/// `tlsh_hash()`: the TLSH locality-sensitive digest of a file (128 buckets, 1-byte checksum,
/// 70 hex digits without the "T1" version prefix, as Velociraptor prints it). Similar files
/// get similar digests, which is what hunting for variants of a sample needs. Streamed: only
/// the 256 bucket counters and a 5-byte window are kept.
public enum Tlsh {
    public static let function = FunctionDeclaration(
        name: "tlsh_hash", summary: "The TLSH similarity digest of a file (70 hex digits); NULL for files under 50 bytes or too uniform.",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The file (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
        ],
        returns: .string,
        examples: ["SELECT tlsh_hash(path='/etc/passwd') AS Digest FROM scope()"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("path", for: accessor),
              let file = ctx.open(path, with: accessor) else { return .null }
        defer { file.close() }
        var state = State()
        var offset: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        do {
            while true {
                try ctx.checkCancelled()
                let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
                if n <= 0 { break }
                state.update(buffer[0..<n])
                offset += Int64(n)
            }
        } catch {
            ctx.logFailure(path, error)
            return .null
        }
        return state.digest().map { .string($0) } ?? .null
    }

    /// The running TLSH state.
    struct State {
        var buckets = [UInt32](repeating: 0, count: 256)
        var window = [UInt8](repeating: 0, count: 5)
        var checksum: UInt8 = 0
        var length = 0

        mutating func update(_ bytes: ArraySlice<UInt8>) {
            for byte in bytes {
                let j = length % 5
                window[j] = byte
                if length >= 4 {
                    let b0 = byte
                    let b1 = window[(j + 4) % 5], b2 = window[(j + 3) % 5], b3 = window[(j + 2) % 5], b4 = window[(j + 1) % 5]
                    checksum = Tlsh.mapping(0, b0, b1, checksum)
                    buckets[Int(Tlsh.mapping(2, b0, b1, b2))] += 1
                    buckets[Int(Tlsh.mapping(3, b0, b1, b3))] += 1
                    buckets[Int(Tlsh.mapping(5, b0, b2, b3))] += 1
                    buckets[Int(Tlsh.mapping(7, b0, b2, b4))] += 1
                    buckets[Int(Tlsh.mapping(11, b0, b1, b4))] += 1
                    buckets[Int(Tlsh.mapping(13, b0, b3, b4))] += 1
                }
                length += 1
            }
        }

        /// The digest, or nil when the input is too short or too uniform to have one.
        func digest() -> String? {
            guard length >= 50 else { return nil }
            let effective = Array(buckets[0..<128])
            let sorted = effective.sorted()
            let q1 = sorted[31], q2 = sorted[63], q3 = sorted[95]
            guard q3 > 0, effective.filter({ $0 > 0 }).count > 64 else { return nil }
            var code = [UInt8](repeating: 0, count: 32)
            for i in 0..<32 {
                var h: UInt8 = 0
                for j in 0..<4 {
                    let k = effective[4 * i + j]
                    if q3 < k {
                        h |= 3 << UInt8(j * 2)
                    } else if q2 < k {
                        h |= 2 << UInt8(j * 2)
                    } else if q1 < k {
                        h |= 1 << UInt8(j * 2)
                    }
                }
                code[i] = h
            }
            let q1ratio = UInt8(truncatingIfNeeded: (UInt64(q1) * 100 / UInt64(q3)) % 16)
            let q2ratio = UInt8(truncatingIfNeeded: (UInt64(q2) * 100 / UInt64(q3)) % 16)
            var out: [UInt8] = [Tlsh.swap(checksum), Tlsh.swap(Tlsh.lengthCode(length)), Tlsh.swap(q1ratio | (q2ratio << 4))]
            out.append(contentsOf: code.reversed())
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: out.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
        }
    }

    static func swap(_ byte: UInt8) -> UInt8 { (byte >> 4) | (byte << 4) }

    /// The log-scaled length byte.
    static func lengthCode(_ length: Int) -> UInt8 {
        let l = log(Float(length))
        let value: Int
        if length <= 656 {
            value = Int(floor(l / 0.4054651))
        } else if length <= 3199 {
            value = Int(floor(l / 0.26236426 - 8.72777))
        } else {
            value = Int(floor(l / 0.095310180 - 62.5472))
        }
        return UInt8(truncatingIfNeeded: value & 0xFF)
    }

    static func mapping(_ salt: UInt8, _ i: UInt8, _ j: UInt8, _ k: UInt8) -> UInt8 {
        var h = table[Int(salt)]
        h = table[Int(h ^ i)]
        h = table[Int(h ^ j)]
        return table[Int(h ^ k)]
    }

    /// TLSH's Pearson permutation.
    static let table: [UInt8] = [
        1, 87, 49, 12, 176, 178, 102, 166, 121, 193, 6, 84, 249, 230, 44, 163,
        14, 197, 213, 181, 161, 85, 218, 80, 64, 239, 24, 226, 236, 142, 38, 200,
        110, 177, 104, 103, 141, 253, 255, 50, 77, 101, 81, 18, 45, 96, 31, 222,
        25, 107, 190, 70, 86, 237, 240, 34, 72, 242, 20, 214, 244, 227, 149, 235,
        97, 234, 57, 22, 60, 250, 82, 175, 208, 5, 127, 199, 111, 62, 135, 248,
        174, 169, 211, 58, 66, 154, 106, 195, 245, 171, 17, 187, 182, 179, 0, 243,
        132, 56, 148, 75, 128, 133, 158, 100, 130, 126, 91, 13, 153, 246, 216, 219,
        119, 68, 223, 78, 83, 88, 201, 99, 122, 11, 92, 32, 136, 114, 52, 10,
        138, 30, 48, 183, 156, 35, 61, 26, 143, 74, 251, 94, 129, 162, 63, 152,
        170, 7, 115, 167, 241, 206, 3, 150, 55, 59, 151, 220, 90, 53, 23, 131,
        125, 173, 15, 238, 79, 95, 89, 16, 105, 137, 225, 224, 217, 160, 37, 123,
        118, 73, 2, 157, 46, 116, 9, 145, 134, 228, 207, 212, 202, 215, 69, 229,
        27, 188, 67, 124, 168, 252, 42, 4, 29, 108, 21, 247, 19, 205, 39, 203,
        233, 40, 186, 147, 198, 192, 155, 33, 164, 191, 98, 204, 165, 180, 117, 76,
        140, 36, 210, 172, 41, 54, 159, 8, 185, 232, 113, 196, 231, 47, 146, 120,
        51, 65, 28, 144, 254, 221, 93, 189, 194, 139, 112, 43, 71, 109, 184, 209,
    ]
}
