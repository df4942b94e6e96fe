import Foundation
import VQL

/// Structured parsers: JSON arrays and lines, CSV, regex records, and small data helpers
/// (unhex, xor, entropy, humanize, url — see `URLFunction`).
public enum ParserLibrary {
    /// (parse_records_with_regex, parse_lines and split_records live with the file plugins in QuarryHost.)
    public static let plugins: [PluginDeclaration] = [parseJSONL, parseCSV]
    public static let functions: [FunctionDeclaration] = [parseJSONArray, unhex, xor, entropy, humanize, URLFunction.declaration]

    /// A whole (bounded) file read through the call's accessor (with accessor='data', the
    /// argument itself).
    static func content(_ ctx: CallContext, _ argument: String, limit: Int = 512 << 20) -> [UInt8]? {
        guard let accessor = ctx.accessor(), let path = ctx.path(argument, for: accessor) else { return nil }
        return ctx.readWhole(path, with: accessor, limit: limit)
    }

    public static let parseJSONArray = FunctionDeclaration(
        name: "parse_json_array", summary: "Parses a JSON array (NULL when the text is not one).",
        arguments: [ArgumentSpec("data", .string, required: true, "JSON text.")], returns: .list,
        examples: ["SELECT parse_json_array(data='[1, {\"a\": 2}]') AS A FROM scope()"]
    ) { ctx in
        guard let bytes = ctx.bytes("data"), let value = try? JSONParser.parse(bytes: bytes), case .list = value else { return .null }
        return value
    }

    public static let parseJSONL = PluginDeclaration(
        name: "parse_jsonl", summary: "One row per line of a JSON-lines file (bad lines are logged and skipped).",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The file (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, "How to reach the file: file (default), data, zip, gzip, …"),
        ],
        examples: ["SELECT * FROM parse_jsonl(filename='{\"a\": 1}\\n{\"a\": 2}', accessor='data')"], permissions: [.filesystemRead]
    ) { ctx in
        let bytes = content(ctx, "filename") ?? []
        var rows: [Value] = []
        for (number, line) in bytes.split(separator: 0x0A).enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            do {
                rows.append(try JSONParser.parse(bytes: Array(line)))
            } catch {
                ctx.context.logOnce(.warning, "parse_jsonl: line \(number + 1): \(error)")
            }
        }
        return ArrayCursor(rows)
    }

    public static let parseCSV = PluginDeclaration(
        name: "parse_csv", summary: "Rows of a CSV file; the first line names the columns (quoted fields and embedded newlines handled).",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The file (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, "How to reach the file: file (default), data, zip, gzip, …"),
            ArgumentSpec("separator", .string, "Field separator (default ',')."),
        ],
        examples: ["SELECT * FROM parse_csv(filename='Name,Uid\\nroot,0\\n', accessor='data')"], permissions: [.filesystemRead]
    ) { ctx in
        let bytes = content(ctx, "filename") ?? []
        let separator = ctx.string("separator")?.utf8.first ?? UInt8(ascii: ",")
        let records = CSV.parse(bytes, separator: separator)
        guard let header = records.first else { return ArrayCursor([]) }
        let schema = Schema(header)
        return ArrayCursor(records.dropFirst().map { fields in
            .dict(Dict(schema: schema, values: header.indices.map { $0 < fields.count ? .string(fields[$0]) : .null }))
        })
    }

    public static let unhex = FunctionDeclaration(
        name: "unhex", summary: "Decodes a hex string into bytes (non-hex characters are ignored).",
        arguments: [ArgumentSpec("string", .string, required: true, "Hex text.")], returns: .string,
        examples: ["SELECT unhex(string='68656c6c6f') AS S FROM scope()"]
    ) { ctx in
        let digits = (ctx.bytes("string") ?? []).filter { $0.isHexDigit }
        var out: [UInt8] = []
        var i = 0
        while i + 1 < digits.count {
            if let b = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) { out.append(b) }
            i += 2
        }
        return .string(bytes: out)
    }

    public static let xor = FunctionDeclaration(
        name: "xor", summary: "XORs a string with a repeating key.",
        arguments: [ArgumentSpec("string", .string, required: true, "The data."), ArgumentSpec("key", .string, required: true, "The key.")],
        returns: .string, examples: ["SELECT xor(string=xor(string='secret', key='k'), key='k') AS S FROM scope()"]
    ) { ctx in
        let data = ctx.bytes("string") ?? []
        let key = ctx.bytes("key") ?? []
        guard !key.isEmpty else { return .string(bytes: data) }
        return .string(bytes: data.enumerated().map { $0.element ^ key[$0.offset % key.count] })
    }

    public static let entropy = FunctionDeclaration(
        name: "entropy", summary: "Shannon entropy of the bytes of a string (0 to 8 bits per byte).",
        arguments: [ArgumentSpec("string", .string, required: true, "The data.")], returns: .float,
        examples: ["SELECT entropy(string='aaaa') AS Low, entropy(string='abcd') AS Higher FROM scope()"]
    ) { ctx in
        let data = ctx.bytes("string") ?? []
        guard !data.isEmpty else { return .double(0) }
        var counts = [Int](repeating: 0, count: 256)
        for b in data { counts[Int(b)] += 1 }
        let total = Double(data.count)
        let h = counts.reduce(0.0) { acc, c in
            guard c > 0 else { return acc }
            let p = Double(c) / total
            return acc - p * log2(p)
        }
        return .double(h)
    }

    public static let humanize = FunctionDeclaration(
        name: "humanize", summary: "Renders a byte count for people (e.g. 1.5 MB).",
        arguments: [ArgumentSpec("bytes", .int, required: true, "A size in bytes.")], returns: .string,
        examples: ["SELECT humanize(bytes=1536000) AS Size FROM scope()"]
    ) { ctx in
        guard let n = ctx.int("bytes") else { return .null }
        let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
        var value = Double(n)
        var unit = 0
        while abs(value) >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return .string(unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit]))
    }
}

/// A CSV reader (RFC 4180: quoted fields, doubled quotes, newlines inside quotes).
enum CSV {
    static func parse(_ bytes: [UInt8], separator: UInt8) -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field: [UInt8] = []
        var inQuotes = false
        var i = 0
        func endField() {
            record.append(String(decoding: field, as: UTF8.self))
            field = []
        }
        while i < bytes.count {
            let c = bytes[i]
            if inQuotes {
                if c == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == c {
                        field.append(c)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == UInt8(ascii: "\"") && field.isEmpty {
                inQuotes = true
            } else if c == separator {
                endField()
            } else if c == 0x0A {
                endField()
                records.append(record)
                record = []
            } else if c != 0x0D {
                field.append(c)
            }
            i += 1
        }
        if !field.isEmpty || !record.isEmpty {
            endField()
            records.append(record)
        }
        return records
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (self >= 0x30 && self <= 0x39) || (self >= 0x41 && self <= 0x46) || (self >= 0x61 && self <= 0x66)
    }
}
