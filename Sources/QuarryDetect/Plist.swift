import Foundation
import VQL

/// plist() as a function and a plugin: Apple property lists (binary, XML or OpenStep), as found
/// in macOS evidence copied to Linux servers and in iOS backups. Dict keys come out sorted;
/// dates become timestamps, data becomes bytes.
public enum PlistParsers {
    static let limit = 64 << 20

    public static let function = FunctionDeclaration(
        name: "plist",
        summary: "Parses a property list file (binary, XML or OpenStep) into dicts and lists. NULL, logged, when it does not parse.",
        arguments: [
            ArgumentSpec("file", .any, required: true, "The plist file (or, with accessor='data', its content)."),
            ArgumentSpec("accessor", .string, "How to read file: file (default) or data."),
        ],
        returns: .any,
        examples: [#"SELECT plist(accessor='data', file='<plist version="1.0"><dict><key>Name</key><string>quarry</string></dict></plist>') AS P FROM scope()"#],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let source = ParserInput.open(ctx, "file") else { return .null }
        return parse(source.readAll(limit: limit), ctx: ctx, name: ParserInput.describe(ctx.value("file") ?? .null, accessor: ctx.string("accessor")))
    }

    public static let plugin = PluginDeclaration(
        name: "plist",
        summary: "Rows from property list files: one row per element when the top level is an array, else one row.",
        arguments: [
            ArgumentSpec("file", .any, required: true, "One or more plist files."),
            ArgumentSpec("accessor", .string, "How to read them: file (default) or data."),
        ],
        examples: [#"SELECT * FROM plist(accessor='data', file='<plist version="1.0"><array><dict><key>A</key><integer>1</integer></dict></array></plist>')"#],
        permissions: [.filesystemRead]
    ) { ctx in
        var rows: [Value] = []
        let accessor = ctx.string("accessor")
        for path in ParserInput.paths(ctx, "file") {
            guard let source = ParserInput.open(path, accessor: accessor, ctx: ctx) else { continue }
            let value = parse(source.readAll(limit: limit), ctx: ctx, name: ParserInput.describe(path, accessor: accessor))
            switch value {
            case .null: continue
            case .list(let items): rows.append(contentsOf: items)
            default: rows.append(value)
            }
        }
        return ArrayCursor(rows)
    }

    static func parse(_ bytes: [UInt8], ctx: CallContext, name: String) -> Value {
        if let refusal = BinaryPlistCheck.refusal(bytes) {
            ctx.context.logOnce(.warning, "plist: \(name): \(refusal)")
            return .null
        }
        do {
            let object = try PropertyListSerialization.propertyList(from: Data(bytes), options: [], format: nil)
            var budget = 1_000_000
            return convert(object, depth: 0, budget: &budget, ctx: ctx)
        } catch {
            ctx.context.logOnce(.warning, "plist: \(name): not a property list (\(error.localizedDescription))")
            return .null
        }
    }

    /// Foundation's property-list objects as values; depth and element count are capped.
    static func convert(_ object: Any, depth: Int, budget: inout Int, ctx: CallContext) -> Value {
        budget -= 1
        guard depth < 100, budget > 0 else {
            ctx.context.logOnce(.warning, "plist: nesting or size limit reached; the rest is left out")
            return .null
        }
        switch object {
        case let dict as [String: Any]:
            var out = Dict()
            for key in dict.keys.sorted() { out[key] = convert(dict[key] as Any, depth: depth + 1, budget: &budget, ctx: ctx) }
            return .dict(out)
        case let list as [Any]:
            return .list(list.map { convert($0, depth: depth + 1, budget: &budget, ctx: ctx) })
        case let string as String: return .string(string)
        case let data as Data: return .string(bytes: [UInt8](data))
        case let date as Date: return .timestamp(Timestamp(seconds: date.timeIntervalSince1970))
        case let bool as Bool where type(of: object) == Bool.self: return .bool(bool)
        case let number as NSNumber:
            let type = String(cString: number.objCType)
            if type == "c" || type == "B" { return .bool(number.boolValue) }
            if type == "d" || type == "f" { return .double(number.doubleValue) }
            return .int(number.int64Value)
        case let int as Int: return .int(Int64(int))
        case let double as Double: return .double(double)
        default: return .string(String(describing: object))
        }
    }
}

/// A look at a binary plist's object table before Foundation reads it. Foundation (on Linux)
/// crashes the process on a set whose members are not hashable — a crafted 250-byte file with a
/// dictionary inside a set did it (fuzz-plist) — so binary plists holding sets are refused with a
/// clear message (sets are rare in real property lists: neither launchd nor NSKeyedArchiver writes
/// them). A table that cannot be read is left to Foundation, which rejects it with an error.
enum BinaryPlistCheck {
    static func refusal(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 40, bytes.starts(with: Array("bplist0".utf8)) else { return nil }
        let trailer = bytes.count - 32
        let offsetSize = Int(bytes[trailer + 6])
        let objectCount = be(bytes, trailer + 8, 8)
        let tableOffset = be(bytes, trailer + 24, 8)
        guard (1...8).contains(offsetSize), let count = objectCount, let table = tableOffset,
              count <= UInt64(bytes.count), table <= UInt64(trailer),
              UInt64(table) + count * UInt64(offsetSize) <= UInt64(trailer) else { return nil }
        for index in 0..<Int(count) {
            guard let offset = be(bytes, Int(table) + index * offsetSize, offsetSize), offset < UInt64(trailer) else { continue }
            if bytes[Int(offset)] >> 4 == 0xC { return "a binary property list holding a set (object \(index)) is not read" }
        }
        return nil
    }

    private static func be(_ bytes: [UInt8], _ at: Int, _ width: Int) -> UInt64? {
        guard at >= 0, width <= 8, at + width <= bytes.count else { return nil }
        return bytes[at..<(at + width)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
