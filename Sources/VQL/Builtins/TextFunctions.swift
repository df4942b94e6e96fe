import Foundation

/// String functions beyond the basics: substr, regex_transform, commandline_split, rot13,
/// utf16/utf16_encode and parse_float.
public enum TextFunctions {
    public static let all: [FunctionDeclaration] = [substr, regexTransform, commandlineSplit, rot13, utf16, utf16Encode, parseFloat]

    public static let substr = FunctionDeclaration(
        name: "substr", summary: "The characters of `str` from `start` up to (not including) `end` (default: to the end); out-of-range bounds are clamped.",
        arguments: [
            ArgumentSpec("str", .string, required: true, "The text."),
            ArgumentSpec("start", .int, "First character index (default 0)."),
            ArgumentSpec("end", .int, "Stop before this index (default: the end)."),
        ],
        returns: .string, examples: ["SELECT substr(str='Hello World', start=6) AS S FROM scope()"]
    ) { ctx in
        guard let text = ctx.string("str") else { return .null }
        let scalars = Array(text.unicodeScalars)
        let start = Int(clamping: max(0, ctx.int("start") ?? 0))
        let requestedEnd = ctx.int("end").flatMap { $0 > 0 ? Int(clamping: $0) : nil } ?? scalars.count
        let lo = min(start, scalars.count)
        let hi = min(max(requestedEnd, lo), scalars.count)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[lo..<hi])
        return .string(String(view))
    }

    public static let regexTransform = FunctionDeclaration(
        name: "regex_transform",
        summary: "Applies several regex replacements in turn: each key of `map` is a regex (case-insensitive), its value the replacement ($1 names a group).",
        arguments: [
            ArgumentSpec("source", .string, required: true, "The text."),
            ArgumentSpec("map", .dict, required: true, "Regex → replacement, applied in order."),
            ArgumentSpec("key", .string, "Accepted for compatibility (patterns are cached per session anyway)."),
        ],
        returns: .string,
        examples: ["SELECT regex_transform(source='Hello world', map=dict(`^Hello`='Goodbye', `world`='Space')) AS S FROM scope()"]
    ) { ctx in
        guard var bytes = ctx.bytes("source") else { return .null }
        let pairs: [(String, Value)]
        switch ctx.value("map") ?? .null {
        case .dict(let d): pairs = d.pairs
        case .object(let o): pairs = o.materialized().pairs
        default:
            ctx.log(.warning, "regex_transform(): map must be a dict")
            return .string(bytes: bytes)
        }
        for (pattern, replacement) in pairs {
            guard let regex = ctx.context.regex(pattern, caseInsensitive: true) else { continue }
            let with = replacement.reduced().byteValue ?? Array(GoFormat.plain(replacement.reduced()).utf8)
            bytes = regex.replaceAll(in: bytes, with: with)
        }
        return .string(bytes: bytes)
    }

    public static let commandlineSplit = FunctionDeclaration(
        name: "commandline_split",
        summary: "Splits a command line into its arguments, by Windows' quoting rules (default) or by the shell's (`bash_style`).",
        arguments: [
            ArgumentSpec("command", .string, required: true, "The command line."),
            ArgumentSpec("bash_style", .bool, "Use POSIX shell quoting (quotes, backslashes) instead of Windows'."),
        ],
        returns: .list,
        examples: ["SELECT commandline_split(command=\"/usr/bin/ls -l 'file with space.txt'\", bash_style=TRUE) AS Args FROM scope()"]
    ) { ctx in
        guard let command = ctx.string("command") else { return .null }
        let parts = ctx.bool("bash_style") == true ? CommandLineSplitter.splitShell(command) : CommandLineSplitter.splitWindows(command)
        return .list(parts.map { .string($0) })
    }

    public static let rot13 = FunctionDeclaration(
        name: "rot13", summary: "Rotates the letters of a string by 13 places (its own inverse).",
        arguments: [ArgumentSpec("string", .string, "The text.")], returns: .string,
        examples: ["SELECT rot13(string='Uryyb') AS S FROM scope()"]
    ) { ctx in
        guard let bytes = ctx.bytes("string") else { return .null }
        return .string(bytes: bytes.map { b in
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return (b - UInt8(ascii: "a") + 13) % 26 + UInt8(ascii: "a")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return (b - UInt8(ascii: "A") + 13) % 26 + UInt8(ascii: "A")
            default: return b
            }
        })
    }

    public static let utf16 = FunctionDeclaration(
        name: "utf16", summary: "Decodes little-endian UTF-16 bytes into a string (a byte-order mark is honoured; invalid pairs become U+FFFD).",
        arguments: [ArgumentSpec("string", .string, required: true, "The UTF-16 bytes.")], returns: .string,
        examples: ["SELECT utf16(string='A\\x00B\\x00C\\x00') AS S FROM scope()"]
    ) { ctx in
        guard var bytes = ctx.bytes("string") else { return .null }
        var bigEndian = false
        if bytes.count >= 2 && bytes[0] == 0xFE && bytes[1] == 0xFF {
            bigEndian = true
            bytes.removeFirst(2)
        } else if bytes.count >= 2 && bytes[0] == 0xFF && bytes[1] == 0xFE {
            bytes.removeFirst(2)
        }
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var i = 0
        while i + 1 < bytes.count {
            units.append(bigEndian ? UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) : UInt16(bytes[i + 1]) << 8 | UInt16(bytes[i]))
            i += 2
        }
        return .string(String(decoding: units, as: UTF16.self))
    }

    public static let utf16Encode = FunctionDeclaration(
        name: "utf16_encode", summary: "Encodes a string as little-endian UTF-16 bytes.",
        arguments: [ArgumentSpec("string", .string, required: true, "The text.")], returns: .string,
        examples: ["SELECT utf16_encode(string='AB') AS B FROM scope()"]
    ) { ctx in
        guard let text = ctx.string("string") else { return .null }
        var bytes: [UInt8] = []
        for unit in text.utf16 {
            bytes.append(UInt8(unit & 0xFF))
            bytes.append(UInt8(unit >> 8))
        }
        return .string(bytes: bytes)
    }

    public static let parseFloat = FunctionDeclaration(
        name: "parse_float", summary: "Converts a string to a float (NULL when it is not a number).",
        arguments: [ArgumentSpec("string", .any, required: true, "The text (numbers pass through as floats).")], returns: .float,
        examples: ["SELECT parse_float(string='3.25') AS F FROM scope()"]
    ) { ctx in
        switch ctx.value("string") ?? .null {
        case .int(let i): return .double(Double(i))
        case .double(let d): return .double(d)
        case let v:
            guard let text = v.unwrappedScalar.stringValue?.trimmingCharacters(in: .whitespaces), let d = Double(text) else { return .null }
            return .double(d)
        }
    }
}

/// Command-line splitting by Windows' and by the POSIX shell's rules.
enum CommandLineSplitter {
    /// CommandLineToArgvW's rules: whitespace separates; "…" groups; 2n backslashes before a quote
    /// give n backslashes, 2n+1 give n and a literal quote; "" inside quotes is a literal quote.
    static func splitWindows(_ text: String) -> [String] {
        var args: [String] = []
        var current = ""
        var inQuotes = false
        var started = false
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\" {
                var slashes = 0
                while i < chars.count && chars[i] == "\\" {
                    slashes += 1
                    i += 1
                }
                if i < chars.count && chars[i] == "\"" {
                    current += String(repeating: "\\", count: slashes / 2)
                    if slashes % 2 == 1 {
                        current.append("\"")
                        i += 1
                    }
                } else {
                    current += String(repeating: "\\", count: slashes)
                }
                started = true
                continue
            }
            if c == "\"" {
                if inQuotes && i + 1 < chars.count && chars[i + 1] == "\"" {
                    current.append("\"")
                    i += 2
                    continue
                }
                inQuotes.toggle()
                started = true
            } else if (c == " " || c == "\t") && !inQuotes {
                if started { args.append(current) }
                current = ""
                started = false
            } else {
                current.append(c)
                started = true
            }
            i += 1
        }
        if started { args.append(current) }
        return args
    }

    /// The shell's rules: whitespace separates; '…' is literal; "…" allows \" \\ \$ \`; a
    /// backslash outside quotes escapes the next character.
    static func splitShell(_ text: String) -> [String] {
        var args: [String] = []
        var current = ""
        var started = false
        var quote: Character?
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if let q = quote {
                if c == q {
                    quote = nil
                } else if q == "\"" && c == "\\" && i + 1 < chars.count && "\"\\$`".contains(chars[i + 1]) {
                    current.append(chars[i + 1])
                    i += 1
                } else {
                    current.append(c)
                }
            } else if c == "'" || c == "\"" {
                quote = c
                started = true
            } else if c == "\\" && i + 1 < chars.count {
                current.append(chars[i + 1])
                started = true
                i += 1
            } else if c == " " || c == "\t" || c == "\n" {
                if started { args.append(current) }
                current = ""
                started = false
            } else {
                current.append(c)
                started = true
            }
            i += 1
        }
        if started { args.append(current) }
        return args
    }
}
