import Foundation
import VQL
import Yams

/// parse_yaml() and parse_xml(): a document file (or, with accessor='data', the text itself) as
/// nested dicts and lists. Malformed, too deep or too large input gives NULL and a logged error.
public enum DocumentParsers {
    public static let functions: [FunctionDeclaration] = [parseYAML, parseXML]

    /// The most values one document may expand to (YAML aliases can multiply a small text).
    static let maxNodes = 1_000_000
    static let maxDepth = 256

    public static let parseYAML = FunctionDeclaration(
        name: "parse_yaml",
        summary: "Parses a YAML file into dicts (key order kept), lists and typed scalars.",
        arguments: [
            ArgumentSpec("filename", .string, required: true, "The YAML file (or the text, with accessor='data')."),
            ArgumentSpec("accessor", .string, "file (default) or data."),
            ArgumentSpec("schema", .stringList, "Accepted for compatibility (no validation)."),
        ],
        examples: ["SELECT parse_yaml(filename='a: 1\\nb: [x, y]', accessor='data') AS Y FROM scope()"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let bytes = ParserLibrary.content(ctx, "filename") else { return .null }
        if let problem = nestingProblem(bytes) {
            ctx.log(.error, "parse_yaml: \(problem)")
            return .null
        }
        do {
            guard let node = try Yams.compose(yaml: String(decoding: bytes, as: UTF8.self)) else { return .null }
            var budget = maxNodes
            return try convert(node, depth: 0, budget: &budget)
        } catch {
            ctx.log(.error, "parse_yaml: \(error)")
            return .null
        }
    }

    public static let parseXML = FunctionDeclaration(
        name: "parse_xml",
        summary: "Parses an XML file into a dict: the root element as the one key, attributes as \"Attrname\", text as \"#text\", repeated elements as lists.",
        arguments: [
            ArgumentSpec("file", .string, required: true, "The XML file (or the text, with accessor='data')."),
            ArgumentSpec("accessor", .string, "file (default) or data."),
        ],
        examples: ["SELECT parse_xml(file='<a x=\"1\"><b>hi</b><b>yo</b></a>', accessor='data') AS X FROM scope()"],
        permissions: [.filesystemRead]
    ) { ctx in
        // An empty text (accessor='data') is an empty document: an error below, not a silent NULL.
        guard let bytes = ParserLibrary.content(ctx, "file") ?? (ctx.string("file") == "" ? [] : nil) else { return .null }
        do {
            return try XMLReader.parse(bytes)
        } catch {
            ctx.log(.error, "parse_xml: \(error)")
            return .null
        }
    }

    /// The YAML library composes nested collections recursively: text that could nest deeper than
    /// `maxDepth` (brackets, "- - -" runs, deep indentation) is refused before it is parsed.
    static func nestingProblem(_ bytes: [UInt8]) -> String? {
        var depth = 0
        var quote: UInt8?
        var column = 0
        var dashes = 0
        var atLineStart = true
        for b in bytes {
            if b == 0x0A {
                column = 0
                dashes = 0
                atLineStart = true
                if quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") { continue }
                continue
            }
            column += 1
            if let q = quote {
                if b == q { quote = nil }
                continue
            }
            switch b {
            case UInt8(ascii: "'"), UInt8(ascii: "\""): quote = b
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            case UInt8(ascii: "-") where atLineStart: dashes += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                if atLineStart && column > 2 * maxDepth { return "indented more than \(2 * maxDepth) columns" }
                continue
            default: atLineStart = false
            }
            if depth > maxDepth || dashes > maxDepth { return "nested more than \(maxDepth) levels" }
        }
        return nil
    }

    struct TooLarge: Error, CustomStringConvertible {
        let description: String
    }

    static func convert(_ node: Node, depth: Int, budget: inout Int) throws -> Value {
        budget -= 1
        guard budget >= 0 else { throw TooLarge(description: "the document expands to more than \(maxNodes) values") }
        guard depth < maxDepth else { throw TooLarge(description: "the document nests more than \(maxDepth) levels") }
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map { .bool($0) } ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map { .from($0) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map { .double($0) } ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .list(try sequence.map { try convert($0, depth: depth + 1, budget: &budget) })
        case .mapping(let mapping):
            var dict = Dict()
            for (key, value) in mapping {
                let name: String
                if let text = key.string {
                    name = text
                } else {
                    name = JSONWriter.string(try convert(key, depth: depth + 1, budget: &budget))
                }
                dict[name] = try convert(value, depth: depth + 1, budget: &budget)
            }
            return .dict(dict)
        case .alias:
            return .null
        }
    }
}
