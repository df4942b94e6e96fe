/// Snappy block decompression (the raw format LevelDB tables use). Every length and copy offset
/// is checked against what has been written, and the output is capped.
enum Snappy {
    struct CorruptInput: Error, CustomStringConvertible {
        let message: String
        var description: String { "snappy: \(message)" }
    }

    static func decompress(_ input: [UInt8], limit: Int = 64 << 20) throws -> [UInt8] {
        var i = 0
        var length = 0
        var shift = 0
        while true {
            guard i < input.count, shift <= 28 else { throw CorruptInput(message: "bad length header") }
            let b = input[i]
            i += 1
            length |= Int(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
        }
        guard length <= limit else { throw CorruptInput(message: "declared length \(length) over the \(limit)-byte limit") }
        var out: [UInt8] = []
        out.reserveCapacity(length)
        while i < input.count {
            let tag = input[i]
            i += 1
            switch tag & 3 {
            case 0:
                var n = Int(tag >> 2)
                if n >= 60 {
                    let extra = n - 59
                    guard i + extra <= input.count else { throw CorruptInput(message: "truncated literal length") }
                    n = 0
                    for k in 0..<extra { n |= Int(input[i + k]) << (8 * k) }
                    i += extra
                }
                n += 1
                guard n <= input.count - i, out.count + n <= length else { throw CorruptInput(message: "literal overruns") }
                out.append(contentsOf: input[i..<(i + n)])
                i += n
            default:
                let n: Int
                let offset: Int
                switch tag & 3 {
                case 1:
                    guard i < input.count else { throw CorruptInput(message: "truncated copy") }
                    n = 4 + Int((tag >> 2) & 7)
                    offset = Int(tag >> 5) << 8 | Int(input[i])
                    i += 1
                case 2:
                    guard i + 2 <= input.count else { throw CorruptInput(message: "truncated copy") }
                    n = 1 + Int(tag >> 2)
                    offset = Int(input[i]) | Int(input[i + 1]) << 8
                    i += 2
                default:
                    guard i + 4 <= input.count else { throw CorruptInput(message: "truncated copy") }
                    n = 1 + Int(tag >> 2)
                    offset = Int(input[i]) | Int(input[i + 1]) << 8 | Int(input[i + 2]) << 16 | Int(input[i + 3]) << 24
                    i += 4
                }
                guard offset > 0, offset <= out.count, out.count + n <= length else { throw CorruptInput(message: "bad copy") }
                let start = out.count - offset
                for k in 0..<n { out.append(out[start + k]) }
            }
        }
        guard out.count == length else { throw CorruptInput(message: "output \(out.count) bytes, header said \(length)") }
        return out
    }
}
