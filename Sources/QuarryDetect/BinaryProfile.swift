import Foundation
import VQL

/// A number in a profile: a constant, or a lambda (`x=>x.Length * 2`) evaluated against the
/// struct being parsed, in the scope of the parse_binary() call.
enum ProfileAmount: Sendable, Equatable {
    case constant(Int64)
    case lambda(String)

    init?(_ value: Value?) {
        guard let value = value?.reduced() else { return nil }
        switch value {
        case .int(let i): self = .constant(i)
        case .double(let d) where d.isFinite && abs(d) < 9e18: self = .constant(Int64(d))
        case .string(let s):
            let text = s.trimmingCharacters(in: .whitespaces)
            if let i = Int64(text) { self = .constant(i) } else if text.contains("=>") { self = .lambda(text) } else { return nil }
        default: return nil
        }
    }
}

/// How a String field is read.
struct StringOptions: Sendable {
    var length: ProfileAmount?
    var maxLength: Int64 = 1024
    var terminator: [UInt8] = [0]
    var utf16 = false
}

/// One type of Velociraptor's binary-profile language, compiled from the profile's JSON.
indirect enum BinaryType: Sendable {
    case integer(width: Int, signed: Bool, bigEndian: Bool)
    case float(width: Int, bigEndian: Bool)
    case string(StringOptions)
    case array(element: BinaryType, count: ProfileAmount?, maxCount: Int64, sentinel: String?)
    /// An offset read as `width` bytes, then `target` parsed at that absolute offset.
    case pointer(target: BinaryType, width: Int)
    case enumeration(base: BinaryType, choices: [Int64: String])
    case flags(base: BinaryType, bits: [(String, Int)])
    case bitField(base: BinaryType, start: Int, end: Int)
    /// A struct chosen by the selector's value (as text) among `choices`.
    case union(selector: String, choices: [String: String])
    /// A computed field.
    case value(String)
    case timestamp(base: BinaryType, kind: TimestampKind, factor: Int64)
    /// A struct of the profile, by name (resolved when parsed, so definitions may come in any order).
    case structure(String)
    /// A type parsed at an absolute offset of the input rather than relative to the struct.
    case absolute(type: BinaryType, offset: ProfileAmount)

    enum TimestampKind: Sendable { case epoch, fileTime, fat }

    /// Bytes the type occupies when known without parsing (integers and types built on them).
    var fixedWidth: Int? {
        switch self {
        case .integer(let w, _, _), .float(let w, _), .pointer(_, let w): return w
        case .enumeration(let base, _), .flags(let base, _), .bitField(let base, _, _), .timestamp(let base, _, _): return base.fixedWidth
        case .string(let options):
            if case .constant(let n)? = options.length { return Int(max(0, min(n, options.maxLength))) }
            return nil
        default: return nil
        }
    }
}

/// One field of a struct: name, offset within the struct (or a lambda) and type.
struct FieldDefinition: Sendable {
    let name: String
    let offset: ProfileAmount
    let type: BinaryType
}

/// One struct: its size (a constant, a lambda, or 0 for "as far as the fields reach") and fields.
struct StructDefinition: Sendable {
    let name: String
    let size: ProfileAmount
    let fields: [FieldDefinition]
    let index: [String: Int]
}

/// Why a profile does not compile, with the struct and field at fault.
struct ProfileError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// A compiled profile: its structs by name. Compiled once per distinct profile text per session.
final class BinaryProfile: Sendable {
    let structs: [String: StructDefinition]

    init(structs: [String: StructDefinition]) { self.structs = structs }

    static let empty = BinaryProfile(structs: [:])

    /// Compiles profile text: a JSON list of `[Name, Size, [[Field, Offset, Type, Options]…]]`.
    /// `#` and `//` comments and trailing commas are allowed, as in Velociraptor's profiles.
    static func compile(_ text: String) throws -> BinaryProfile {
        let json: Value
        do {
            // Only the first JSON value counts: text after it is ignored, as Velociraptor does.
            json = try JSONParser.parsePrefix(bytes: LenientJSON.clean(Array(text.utf8)), from: 0).0
        } catch {
            throw ProfileError(message: "profile is not valid JSON: \(error)")
        }
        guard case .list(let definitions) = json else { throw ProfileError(message: "a profile is a JSON list of struct definitions") }
        var structs: [String: StructDefinition] = [:]
        for definition in definitions {
            guard case .list(let parts) = definition, parts.count >= 3, let name = parts[0].stringValue else {
                throw ProfileError(message: "a struct definition is [Name, Size, [fields…]]: \(JSONWriter.string(definition))")
            }
            guard let size = ProfileAmount(parts[1]) else { throw ProfileError(message: "\(name): size must be a number or a lambda") }
            guard case .list(let fieldList) = parts[2] else { throw ProfileError(message: "\(name): fields must be a list") }
            var fields: [FieldDefinition] = []
            var index: [String: Int] = [:]
            for field in fieldList {
                guard case .list(let f) = field, f.count >= 3, let fieldName = f[0].stringValue else {
                    throw ProfileError(message: "\(name): a field is [Name, Offset, Type, Options]: \(JSONWriter.string(field))")
                }
                guard let offset = ProfileAmount(f[1]) else { throw ProfileError(message: "\(name).\(fieldName): offset must be a number or a lambda") }
                guard let typeName = f[2].stringValue else { throw ProfileError(message: "\(name).\(fieldName): type must be a name") }
                let options: Dict
                if f.count > 3, case .dict(let d) = f[3] { options = d } else { options = Dict() }
                let type = try compileType(typeName, options, context: "\(name).\(fieldName)")
                index[fieldName] = fields.count
                fields.append(FieldDefinition(name: fieldName, offset: offset, type: type))
            }
            structs[name] = StructDefinition(name: name, size: size, fields: fields, index: index)
        }
        return BinaryProfile(structs: structs)
    }

    /// The integer types by every name Velociraptor's profiles use for them.
    static let integers: [String: (Int, Bool, Bool)] = {
        var table: [String: (Int, Bool, Bool)] = [:]
        for (width, bits) in [(1, 8), (2, 16), (4, 32), (8, 64)] {
            table["uint\(bits)"] = (width, false, false)
            table["int\(bits)"] = (width, true, false)
            if width > 1 {
                for suffix in ["b", "be"] {
                    table["uint\(bits)\(suffix)"] = (width, false, true)
                    table["int\(bits)\(suffix)"] = (width, true, true)
                }
                table["uint\(bits)le"] = (width, false, false)
                table["int\(bits)le"] = (width, true, false)
            }
        }
        let cNames: [(String, Int, Bool)] = [
            ("char", 1, true), ("signed char", 1, true), ("unsigned char", 1, false), ("byte", 1, false),
            ("short", 2, true), ("short int", 2, true), ("signed short", 2, true), ("unsigned short", 2, false),
            ("unsigned short int", 2, false), ("int", 4, true), ("signed int", 4, true), ("unsigned int", 4, false),
            ("long", 4, true), ("long int", 4, true), ("unsigned long", 4, false), ("unsigned long int", 4, false),
            ("long long", 8, true), ("long long int", 8, true), ("unsigned long long", 8, false),
            ("unsigned long long int", 8, false), ("bool", 1, false),
        ]
        for (name, width, signed) in cNames { table[name] = (width, signed, false) }
        return table
    }()

    /// Compiles one type reference with its options.
    static func compileType(_ name: String, _ options: Dict, context: String, depth: Int = 0) throws -> BinaryType {
        guard depth < 16 else { throw ProfileError(message: "\(context): type options nest too deeply") }
        if let (width, signed, big) = integers[name] { return .integer(width: width, signed: signed, bigEndian: big) }
        func base(default fallback: String) throws -> BinaryType {
            let typeName = options["type"]?.stringValue ?? fallback
            return try compileType(typeName, typeOptions(), context: context, depth: depth + 1)
        }
        func typeOptions() -> Dict {
            if case .dict(let d)? = options["type_options"] { return d }
            return Dict()
        }
        switch name {
        case "float", "float32": return .float(width: 4, bigEndian: false)
        case "double", "float64": return .float(width: 8, bigEndian: false)
        case "float32b", "float32be": return .float(width: 4, bigEndian: true)
        case "float64b", "float64be": return .float(width: 8, bigEndian: true)
        case "String", "string":
            var string = StringOptions()
            string.length = ProfileAmount(options["length"])
            if let max = options["max_length"]?.intValue { string.maxLength = max }
            let encoding = options["encoding"]?.stringValue?.lowercased() ?? ""
            string.utf16 = encoding.hasPrefix("utf16") || encoding.hasPrefix("utf-16")
            if let term = options["term"]?.byteValue {
                string.terminator = term
            } else if let hex = options["term_hex"]?.stringValue {
                string.terminator = LenientJSON.unhex(hex)
            } else {
                string.terminator = string.utf16 ? [0, 0] : [0]
            }
            return .string(string)
        case "Array":
            guard options["type"] != nil else { throw ProfileError(message: "\(context): Array needs a type") }
            let element = try base(default: "uint8")
            let maxCount = options["max_count"]?.intValue ?? 1000
            return .array(element: element, count: ProfileAmount(options["count"]), maxCount: max(0, maxCount),
                          sentinel: options["sentinel"]?.stringValue)
        case "Pointer":
            let target = try base(default: "uint64")
            let width = integers[options["pointer_type"]?.stringValue ?? "uint64"]?.0 ?? 8
            return .pointer(target: target, width: width)
        case "Enumeration":
            var choices: [Int64: String] = [:]
            if case .dict(let d)? = options["choices"] {
                for (key, value) in d.pairs {
                    if let number = parseInteger(key), let label = value.stringValue { choices[number] = label }
                }
            }
            if case .dict(let d)? = options["map"] {
                for (label, value) in d.pairs {
                    if let number = value.intValue ?? value.stringValue.flatMap(parseInteger) { choices[number] = label }
                }
            }
            return .enumeration(base: try base(default: "uint32"), choices: choices)
        case "Flags":
            var bits: [(String, Int)] = []
            if case .dict(let d)? = options["bitmap"] {
                for (label, value) in d.pairs {
                    if let bit = value.intValue, bit >= 0, bit < 64 { bits.append((label, Int(bit))) }
                }
            }
            bits.sort { $0.1 < $1.1 }
            return .flags(base: try base(default: "uint32"), bits: bits)
        case "BitField":
            let start = Int(options["start_bit"]?.intValue ?? 0)
            let end = Int(options["end_bit"]?.intValue ?? 64)
            guard start >= 0, end > start, end <= 64 else { throw ProfileError(message: "\(context): BitField needs 0 <= start_bit < end_bit <= 64") }
            return .bitField(base: try base(default: "uint64"), start: start, end: end)
        case "Union":
            guard let selector = options["selector"]?.stringValue else { throw ProfileError(message: "\(context): Union needs a selector") }
            var choices: [String: String] = [:]
            if case .dict(let d)? = options["choices"] {
                for (key, value) in d.pairs { if let target = value.stringValue { choices[key] = target } }
            }
            return .union(selector: selector, choices: choices)
        case "Value":
            guard let expression = options["value"]?.stringValue else { throw ProfileError(message: "\(context): Value needs a value lambda") }
            return .value(expression)
        case "Timestamp", "Epoch", "UnixTimestamp":
            return .timestamp(base: try base(default: "uint64"), kind: .epoch, factor: max(1, options["factor"]?.intValue ?? 1))
        case "WinFileTime", "FileTime":
            return .timestamp(base: try base(default: "uint64"), kind: .fileTime, factor: max(1, options["factor"]?.intValue ?? 1))
        case "FatTimestamp", "DosTime":
            return .timestamp(base: try base(default: "uint32"), kind: .fat, factor: 1)
        case "Profile":
            guard let offset = ProfileAmount(options["offset"]) else { throw ProfileError(message: "\(context): Profile needs an offset") }
            return .absolute(type: try base(default: "uint8"), offset: offset)
        default:
            guard !name.isEmpty else { throw ProfileError(message: "\(context): empty type name") }
            return .structure(name)
        }
    }

    static func parseInteger(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt64(t.dropFirst(2), radix: 16).map { Int64(bitPattern: $0) } }
        return Int64(t)
    }
}

/// Velociraptor's profiles are JSON with `#` and `//` line comments and trailing commas; this
/// turns such text into strict JSON (strings are left untouched).
enum LenientJSON {
    static func clean(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        var inString = false
        while i < text.count {
            let c = text[i]
            if inString {
                out.append(c)
                if c == UInt8(ascii: "\\"), i + 1 < text.count {
                    out.append(text[i + 1])
                    i += 2
                    continue
                }
                if c == UInt8(ascii: "\"") { inString = false }
                i += 1
                continue
            }
            if c == UInt8(ascii: "\"") {
                inString = true
                out.append(c)
                i += 1
            } else if c == UInt8(ascii: "#") || (c == UInt8(ascii: "/") && i + 1 < text.count && text[i + 1] == c) {
                while i < text.count && text[i] != 0x0A { i += 1 }
            } else if c == UInt8(ascii: "]") || c == UInt8(ascii: "}") {
                // Drop a trailing comma (and the space after it) before a closing bracket.
                var j = out.count - 1
                while j >= 0, [0x20, 0x0A, 0x0D, 0x09].contains(out[j]) { j -= 1 }
                if j >= 0, out[j] == UInt8(ascii: ",") { out.remove(at: j) }
                out.append(c)
                i += 1
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    static func unhex(_ text: String) -> [UInt8] {
        let digits = Array(text.utf8).compactMap { c -> UInt8? in
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        return stride(from: 0, to: digits.count - 1, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }
}
