import Foundation

/// Serialises values as JSON the way Velociraptor's output looks: ordered keys, integral floats
/// without a fraction, timestamps as RFC 3339, binary strings with invalid bytes replaced.
public enum JSONWriter {
    public static func string(_ value: Value, pretty: Bool = false) -> String {
        var out: [UInt8] = []
        write(value, into: &out, pretty: pretty, depth: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// Deeper values are written as a string saying so (writing recurses; no value may exhaust the
    /// stack). Parsed JSON is at most `JSONParser.maxDepth` deep, well within it.
    public static let maxDepth = 1000

    public static func write(_ value: Value, into out: inout [UInt8], pretty: Bool = false, depth: Int = 0) {
        if depth >= maxDepth {
            writeString("(nested more than \(maxDepth) levels deep)", into: &out)
            return
        }
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): appendInt(i, into: &out)
        case .double(let d): out.append(contentsOf: formatDouble(d).utf8)
        case .string(let s): writeString(s, into: &out)
        case .bytes(let b): writeString(String(decoding: b, as: UTF8.self), into: &out)
        case .timestamp(let t): writeString(rfc3339(t), into: &out)
        case .lazy, .query: write(value.materialized(), into: &out, pretty: pretty, depth: depth)
        case .object(let o):
            if let scalar = o.scalar {
                write(scalar, into: &out, pretty: pretty, depth: depth)
            } else {
                write(.dict(o.materialized()), into: &out, pretty: pretty, depth: depth)
            }
        case .list(let items):
            if items.isEmpty {
                out.append(contentsOf: "[]".utf8)
                return
            }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(depth + 1, &out) }
                write(item, into: &out, pretty: pretty, depth: depth + 1)
            }
            if pretty { newline(depth, &out) }
            out.append(UInt8(ascii: "]"))
        case .dict(let d):
            if d.isEmpty {
                out.append(contentsOf: "{}".utf8)
                return
            }
            out.append(UInt8(ascii: "{"))
            let names = d.schema.names
            for i in 0..<d.values.count {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(depth + 1, &out) }
                writeString(names[i], into: &out)
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(UInt8(ascii: " ")) }
                write(d.values[i], into: &out, pretty: pretty, depth: depth + 1)
            }
            if pretty { newline(depth, &out) }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ depth: Int, _ out: inout [UInt8]) {
        out.append(0x0A)
        for _ in 0..<depth { out.append(contentsOf: [0x20, 0x20]) }
    }

    @inline(__always)
    static func appendInt(_ value: Int64, into out: inout [UInt8]) {
        if value >= 0 && value < 10 {
            out.append(UInt8(48 + value))
            return
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var v = value.magnitude
        var divisor: UInt64 = 1
        while divisor <= v / 10 { divisor *= 10 }
        while divisor > 0 {
            out.append(UInt8(48 + (v / divisor)))
            v %= divisor
            divisor /= 10
        }
    }

    /// A float as format()'s %v and string conversions have always printed it: integral values
    /// without a fraction, others in Swift's shortest form.
    public static func plainDouble(_ d: Double) -> String {
        if d.isNaN || d.isInfinite { return "null" }
        if d == d.rounded(), abs(d) < 9e18 { return String(Int64(d)) }
        return "\(d)"
    }

    /// Go's JSON float formatting: the shortest round-trip digits, fixed notation from 1e-6 up to
    /// 1e21 (so integral values print without a fraction), exponent notation outside (1e-7, 1e+21).
    public static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "null" }
        if d.isInfinite { return "null" }
        if d == d.rounded(), abs(d) < 9e18 {
            return String(Int64(d))
        }
        let text = "\(d)"
        let magnitude = abs(d)
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        // Swift wrote d.ddde±XX: take the digits and the exponent apart.
        let mantissa = text[..<e]
        guard let exponent = Int(text[text.index(after: e)...]) else { return text }
        let negative = mantissa.hasPrefix("-")
        let digits = mantissa.filter { $0.isNumber }
        if magnitude != 0 && (magnitude < 1e-6 || magnitude >= 1e21) {
            var out = (negative ? "-" : "") + String(digits.prefix(1))
            if digits.count > 1 { out += "." + digits.dropFirst() }
            out += "e" + (exponent < 0 ? "-" : "+")
            out += exponent < 0 ? String(-exponent) : (exponent < 10 ? "0" : "") + String(exponent)
            return out
        }
        // Fixed notation: the decimal point sits after digit number exponent + 1.
        let point = exponent + 1
        var out = negative ? "-" : ""
        if point <= 0 {
            out += "0." + String(repeating: "0", count: -point) + digits
        } else if point >= digits.count {
            out += digits + String(repeating: "0", count: point - digits.count)
        } else {
            out += digits.prefix(point) + "." + digits.dropFirst(point)
        }
        return out
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path: nothing to escape, copy the bytes in one go.
        let copied: Bool? = s.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                return false
            }
            out.append(contentsOf: bytes)
            return true
        }
        if copied == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// RFC 3339 in UTC with the fraction trimmed, as Go's time.MarshalJSON writes it.
    public static func rfc3339(_ t: Timestamp) -> String {
        if t == .goZero { return "0001-01-01T00:00:00Z" }
        let seconds = t.nanoseconds >= 0 ? t.nanoseconds / 1_000_000_000 : (t.nanoseconds - 999_999_999) / 1_000_000_000
        let nanos = t.nanoseconds - seconds * 1_000_000_000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let year = Int(parts.tm_year) + 1900
        // Digits by hand: String(format:) dominated output of timestamp-heavy rows (glob Mtime).
        var out: [UInt8] = []
        out.reserveCapacity(30)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var v = value
            for _ in 0..<width {
                out.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
                v %= divisor
                divisor /= 10
            }
        }
        if year < 0 || year > 9999 {
            out.append(contentsOf: Array(String(format: "%04d", year).utf8))
        } else {
            digits(year, 4)
        }
        out.append(UInt8(ascii: "-")); digits(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-")); digits(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T")); digits(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":")); digits(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":")); digits(Int(parts.tm_sec), 2)
        if nanos > 0 {
            out.append(UInt8(ascii: "."))
            var fraction = Int(nanos)
            var width = 9
            while fraction % 10 == 0 {
                fraction /= 10
                width -= 1
            }
            digits(fraction, width)
        }
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }
}
