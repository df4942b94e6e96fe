import VQL

/// A small, bounded XML reader for parse_xml(): elements become dicts the way Velociraptor's
/// XML-to-map conversion shapes them — attributes as "Attrname" (Velociraptor sets that prefix), text as "#text" (or the element's
/// value when it has nothing else), repeated children as lists, the root as the one key. No DTDs
/// or external entities are ever loaded; nesting and size are limited.
enum XMLReader {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let maxDepth = 256

    private final class Element {
        let name: String
        var attributes: [(String, String)] = []
        var children: [(String, Value)] = []
        var text = ""
        init(name: String) { self.name = name }

        var value: Value {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if attributes.isEmpty && children.isEmpty { return .string(trimmed) }
            var dict = Dict()
            for (k, v) in attributes { dict["Attr" + k] = .string(v) }
            for (k, v) in children {
                switch dict[k] {
                case nil: dict[k] = v
                case .list(var items)? where isRepeated(k):
                    items.append(v)
                    dict[k] = .list(items)
                case let existing?:
                    dict[k] = .list([existing, v])
                    repeated.insert(k)
                }
            }
            if !trimmed.isEmpty { dict["#text"] = .string(trimmed) }
            return .dict(dict)
        }

        private var repeated = Set<String>()
        private func isRepeated(_ key: String) -> Bool { repeated.contains(key) }
    }

    /// The document as a dict `{root: …}`.
    static func parse(_ bytes: [UInt8]) throws -> Value {
        var i = 0
        var stack: [Element] = []
        var root: Value?
        func fail(_ message: String) -> Failure { Failure(description: "XML: \(message) at byte \(i)") }
        func starts(_ text: String) -> Bool {
            let t = Array(text.utf8)
            return i + t.count <= bytes.count && Array(bytes[i..<(i + t.count)]) == t
        }
        func skip(past terminator: String) throws {
            let t = Array(terminator.utf8)
            while i + t.count <= bytes.count {
                if Array(bytes[i..<(i + t.count)]) == t {
                    i += t.count
                    return
                }
                i += 1
            }
            throw fail("missing '\(terminator)'")
        }
        func isNameByte(_ b: UInt8) -> Bool {
            !(b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == UInt8(ascii: ">") || b == UInt8(ascii: "/")
                || b == UInt8(ascii: "=") || b == UInt8(ascii: "<") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "'"))
        }
        func name() throws -> String {
            let start = i
            while i < bytes.count, isNameByte(bytes[i]) { i += 1 }
            guard i > start else { throw fail("expected a name") }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }
        func spaces() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }
        func localName(_ qualified: String) -> String {
            qualified.split(separator: ":", maxSplits: 1).last.map(String.init) ?? qualified
        }

        while i < bytes.count {
            if bytes[i] != UInt8(ascii: "<") {
                let start = i
                while i < bytes.count, bytes[i] != UInt8(ascii: "<") { i += 1 }
                if let top = stack.last { top.text += decodeEntities(Array(bytes[start..<i])) }
                continue
            }
            if starts("<!--") {
                try skip(past: "-->")
            } else if starts("<![CDATA[") {
                i += 9
                let start = i
                try skip(past: "]]>")
                stack.last?.text += String(decoding: bytes[start..<(i - 3)], as: UTF8.self)
            } else if starts("<?") {
                try skip(past: "?>")
            } else if starts("<!") {
                // A DOCTYPE (with an internal subset in brackets) is skipped, never interpreted.
                var depth = 0
                while i < bytes.count {
                    if bytes[i] == UInt8(ascii: "[") { depth += 1 }
                    if bytes[i] == UInt8(ascii: "]") { depth -= 1 }
                    i += 1
                    if bytes[i - 1] == UInt8(ascii: ">") && depth <= 0 { break }
                }
            } else if starts("</") {
                i += 2
                let closing = try name()
                spaces()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw fail("bad closing tag") }
                i += 1
                guard let element = stack.popLast(), element.name == localName(closing) else { throw fail("mismatched </\(closing)>") }
                if let parent = stack.last {
                    parent.children.append((element.name, element.value))
                } else {
                    root = .dict(Dict([(element.name, element.value)]))
                }
            } else {
                i += 1
                let element = Element(name: localName(try name()))
                while true {
                    spaces()
                    guard i < bytes.count else { throw fail("unterminated tag") }
                    if bytes[i] == UInt8(ascii: ">") || bytes[i] == UInt8(ascii: "/") { break }
                    let attribute = try name()
                    spaces()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { throw fail("attribute without a value") }
                    i += 1
                    spaces()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") else { throw fail("unquoted attribute") }
                    let quote = bytes[i]
                    i += 1
                    let start = i
                    while i < bytes.count, bytes[i] != quote { i += 1 }
                    guard i < bytes.count else { throw fail("unterminated attribute") }
                    element.attributes.append((attribute, decodeEntities(Array(bytes[start..<i]))))
                    i += 1
                }
                let selfClosing = bytes[i] == UInt8(ascii: "/")
                i += selfClosing ? 2 : 1
                guard !selfClosing || (i <= bytes.count && bytes[i - 1] == UInt8(ascii: ">")) else { throw fail("bad empty-element tag") }
                if selfClosing {
                    if let parent = stack.last {
                        parent.children.append((element.name, element.value))
                    } else {
                        root = .dict(Dict([(element.name, element.value)]))
                    }
                } else {
                    guard stack.count < maxDepth else { throw fail("nested more than \(maxDepth) elements deep") }
                    stack.append(element)
                }
            }
            if root != nil && stack.isEmpty { break }
        }
        guard stack.isEmpty, let root else { throw fail("unexpected end of document") }
        return root
    }

    /// The five named entities and numeric character references; anything else stays as written.
    static func decodeEntities(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            rest = rest[amp...]
            guard let semi = rest.firstIndex(of: ";"), rest.distance(from: rest.startIndex, to: semi) <= 10 else {
                out += "&"
                rest = rest.dropFirst()
                continue
            }
            let entity = rest[rest.index(after: rest.startIndex)..<semi]
            var replacement: String?
            switch entity {
            case "lt": replacement = "<"
            case "gt": replacement = ">"
            case "amp": replacement = "&"
            case "quot": replacement = "\""
            case "apos": replacement = "'"
            default:
                if entity.hasPrefix("#x") || entity.hasPrefix("#X"), let n = UInt32(entity.dropFirst(2), radix: 16) {
                    replacement = Unicode.Scalar(n).map { String(Character($0)) }
                } else if entity.hasPrefix("#"), let n = UInt32(entity.dropFirst()) {
                    replacement = Unicode.Scalar(n).map { String(Character($0)) }
                }
            }
            if let replacement {
                out += replacement
                rest = rest[rest.index(after: semi)...]
            } else {
                out += "&"
                rest = rest.dropFirst()
            }
        }
        return out + rest
    }
}
