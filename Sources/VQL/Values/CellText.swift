import Foundation

/// Text of one value in a table or CSV cell: strings bare, binary escaped (\\xNN), containers
/// compact JSON. Shared by the CLI's tables and CSV and the collector's CSV files.
public enum CellText {
    public static func text(_ value: Value) -> String {
        switch value {
        case .null: return ""
        case .string(let s): return s
        case .bytes(let b): return escaped(b)
        case .int(let i): return String(i)
        case .double(let d): return JSONWriter.formatDouble(d)
        case .bool(let b): return b ? "true" : "false"
        case .timestamp(let t): return JSONWriter.rfc3339(t)
        default: return JSONWriter.string(value.materialized())
        }
    }

    /// Invalid UTF-8 bytes shown as \xNN, the rest as text.
    public static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            var j = i
            while j < bytes.count {
                let length = utf8Length(bytes, at: j)
                if length == 0 { break }
                j += length
            }
            if j > i { out += String(decoding: bytes[i..<j], as: UTF8.self) }
            if j < bytes.count {
                out += String(format: "\\x%02x", bytes[j])
                j += 1
            }
            i = j
        }
        return out
    }

    private static func utf8Length(_ b: [UInt8], at i: Int) -> Int {
        let c = b[i]
        let n: Int
        if c < 0x80 { return 1 } else if c >> 5 == 0b110 { n = 2 } else if c >> 4 == 0b1110 { n = 3 } else if c >> 3 == 0b11110 { n = 4 } else { return 0 }
        guard i + n <= b.count else { return 0 }
        for k in 1..<n where b[i + k] >> 6 != 0b10 { return 0 }
        return String(validating: b[i..<(i + n)], as: UTF8.self) == nil ? 0 : n
    }
}

extension CellText {
    /// A CSV field, quoted when it holds a separator, quote or newline.
    public static func csvField(_ s: String) -> String {
        if s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r") {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }
}
