import Foundation

/// A subset of Go's text/template for template(): text with `{{ actions }}` — `.Field.Sub`,
/// `$var`, `{{ $x := pipeline }}`, pipes (`{{ .X | printf "%q" }}`), if / else if / else, range
/// (with `$i, $e :=`), with, comments and `{{-`/`-}}` trimming; functions printf, print, println,
/// len, index, eq, ne, lt, le, gt, ge, and, or, not, html, js, urlquery, and Velociraptor's Get
/// (a member path of a value) and Scope (a VQL variable).
struct GoTemplate {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    indirect enum Node {
        case text(String)
        case action(Pipeline)
        case branch(kind: BranchKind, pipeline: Pipeline, body: [Node], otherwise: [Node])
    }

    enum BranchKind { case ifBlock, rangeBlock, withBlock }

    struct Pipeline {
        var declarations: [String] = []
        var commands: [[Operand]] = []
    }

    indirect enum Operand {
        case field(base: String?, path: [String])  // base nil: dot; "$x": a variable
        case literal(Value)
        case function(String)
        case nested(Pipeline)
        /// `(pipeline).Field.Sub`
        case chained(Pipeline, [String])
    }

    static let maxDepth = 64
    let nodes: [Node]

    init(_ text: String) throws {
        var parser = TemplateParser(actions: try TemplateParser.split(text))
        nodes = try parser.parseList(depth: 0, terminators: [])
        if parser.position < parser.actions.count { throw Failure(description: "template: unexpected {{\(parser.actions[parser.position].1)}}") }
    }

    /// Renders with `dot` as `.`; `scope` serves Scope "name"; `escapeHTML` escapes every action.
    func render(dot: Value, scope: @escaping (String) -> Value, escapeHTML: Bool) throws -> String {
        var run = TemplateRun(scope: scope, escapeHTML: escapeHTML)
        var variables: [String: Value] = ["$": dot]
        try run.execute(nodes, dot: dot, variables: &variables, depth: 0)
        return run.output
    }
}

/// Splits a template into text and actions and builds the node tree.
struct TemplateParser {
    /// (isAction, text): text pieces and action bodies, trim markers applied.
    var actions: [(Bool, String)]
    var position = 0

    static func split(_ text: String) throws -> [(Bool, String)] {
        var pieces: [(Bool, String)] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            var literal = String(rest[..<open.lowerBound])
            var body = rest[open.upperBound...]
            if body.hasPrefix("- ") || body.hasPrefix("-\t") || body.hasPrefix("-\n") {
                while let last = literal.last, last.isWhitespace { literal.removeLast() }
                body = body.dropFirst()
            }
            guard let close = body.range(of: "}}") else { throw GoTemplate.Failure(description: "template: unclosed action") }
            var action = String(body[..<close.lowerBound])
            rest = body[close.upperBound...]
            if action.hasSuffix(" -") || action.hasSuffix("\t-") || action.hasSuffix("\n-") {
                action.removeLast()
                while let first = rest.first, first.isWhitespace { rest.removeFirst() }
            }
            if !literal.isEmpty { pieces.append((false, literal)) }
            let trimmed = action.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("/*") { continue }
            pieces.append((true, trimmed))
        }
        if !rest.isEmpty { pieces.append((false, String(rest))) }
        return pieces
    }

    /// Nodes until one of the terminator keywords (end, else); the terminator is left in place.
    mutating func parseList(depth: Int, terminators: Set<String>) throws -> [GoTemplate.Node] {
        guard depth < GoTemplate.maxDepth else { throw GoTemplate.Failure(description: "template: blocks nested more than \(GoTemplate.maxDepth) deep") }
        var nodes: [GoTemplate.Node] = []
        while position < actions.count {
            let (isAction, text) = actions[position]
            if !isAction {
                nodes.append(.text(text))
                position += 1
                continue
            }
            let keyword = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.map(String.init) ?? ""
            if terminators.contains(keyword) { return nodes }
            position += 1
            switch keyword {
            case "if", "range", "with":
                let kind: GoTemplate.BranchKind = keyword == "if" ? .ifBlock : (keyword == "range" ? .rangeBlock : .withBlock)
                nodes.append(try parseBranch(kind, String(text.dropFirst(keyword.count)), depth: depth))
            case "end", "else": throw GoTemplate.Failure(description: "template: unexpected {{\(text)}}")
            case "define", "template", "block": throw GoTemplate.Failure(description: "template: {{\(keyword)}} is not supported")
            default: nodes.append(.action(try PipelineParser.parse(text)))
            }
        }
        if !terminators.isEmpty { throw GoTemplate.Failure(description: "template: missing {{end}}") }
        return nodes
    }

    private mutating func parseBranch(_ kind: GoTemplate.BranchKind, _ pipelineText: String, depth: Int) throws -> GoTemplate.Node {
        let pipeline = try PipelineParser.parse(pipelineText)
        let body = try parseList(depth: depth + 1, terminators: ["end", "else"])
        guard position < actions.count else { throw GoTemplate.Failure(description: "template: missing {{end}}") }
        let terminator = actions[position].1
        position += 1
        var otherwise: [GoTemplate.Node] = []
        if terminator.hasPrefix("else") {
            let rest = terminator.dropFirst(4).trimmingCharacters(in: .whitespaces)
            if rest.hasPrefix("if ") || rest.hasPrefix("with ") {
                // `else if` / `else with`: a nested block that shares this block's {{end}}.
                let nestedKind: GoTemplate.BranchKind = rest.hasPrefix("if ") ? .ifBlock : .withBlock
                let word = rest.hasPrefix("if ") ? 2 : 4
                otherwise = [try parseBranch(nestedKind, String(rest.dropFirst(word)), depth: depth + 1)]
                return .branch(kind: kind, pipeline: pipeline, body: body, otherwise: otherwise)
            }
            otherwise = try parseList(depth: depth + 1, terminators: ["end"])
            guard position < actions.count else { throw GoTemplate.Failure(description: "template: missing {{end}}") }
            position += 1
        }
        return .branch(kind: kind, pipeline: pipeline, body: body, otherwise: otherwise)
    }
}

/// Parses one action's pipeline: declarations, commands separated by `|`, operands.
struct PipelineParser {
    private var chars: [Character]
    private var i = 0
    private var depth = 0

    static func parse(_ text: String) throws -> GoTemplate.Pipeline {
        var parser = PipelineParser(chars: Array(text))
        let pipeline = try parser.pipeline()
        parser.skipSpace()
        if parser.i < parser.chars.count { throw GoTemplate.Failure(description: "template: unexpected '\(String(parser.chars[parser.i...]))'") }
        return pipeline
    }

    private init(chars: [Character]) { self.chars = chars }

    private mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

    private mutating func pipeline() throws -> GoTemplate.Pipeline {
        depth += 1
        defer { depth -= 1 }
        guard depth < GoTemplate.maxDepth else { throw GoTemplate.Failure(description: "template: expression nested too deeply") }
        var result = GoTemplate.Pipeline()
        // `$a, $b :=` or `$x :=` / `$x =`.
        let start = i
        var names: [String] = []
        skipSpace()
        while i < chars.count, chars[i] == "$" {
            names.append(word())
            skipSpace()
            if i < chars.count, chars[i] == "," {
                i += 1
                skipSpace()
            } else {
                break
            }
        }
        if !names.isEmpty, i + 1 < chars.count, chars[i] == ":", chars[i + 1] == "=" {
            i += 2
            result.declarations = names
        } else if names.count == 1, i < chars.count, chars[i] == "=", i + 1 >= chars.count || chars[i + 1] != "=" {
            i += 1
            result.declarations = names
        } else {
            i = start
        }
        var command: [GoTemplate.Operand] = []
        while true {
            skipSpace()
            guard i < chars.count, chars[i] != ")" else { break }
            if chars[i] == "|" {
                guard !command.isEmpty else { throw GoTemplate.Failure(description: "template: empty command before '|'") }
                result.commands.append(command)
                command = []
                i += 1
                continue
            }
            command.append(try operand())
        }
        if !command.isEmpty { result.commands.append(command) }
        if result.commands.isEmpty { throw GoTemplate.Failure(description: "template: empty pipeline") }
        return result
    }

    private mutating func word() -> String {
        let start = i
        i += 1
        while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" { i += 1 }
        return String(chars[start..<i])
    }

    private mutating func path() -> [String] {
        var parts: [String] = []
        while i < chars.count, chars[i] == "." {
            i += 1
            let start = i
            while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" { i += 1 }
            if i > start { parts.append(String(chars[start..<i])) }
        }
        return parts
    }

    private mutating func operand() throws -> GoTemplate.Operand {
        let c = chars[i]
        switch c {
        case ".": return .field(base: nil, path: path())
        case "$":
            let name = word()
            return .field(base: name, path: path())
        case "(":
            i += 1
            let inner = try pipeline()
            skipSpace()
            guard i < chars.count, chars[i] == ")" else { throw GoTemplate.Failure(description: "template: missing ')'") }
            i += 1
            let rest = path()
            return rest.isEmpty ? .nested(inner) : .chained(inner, rest)
        case "\"", "`":
            i += 1
            var text = ""
            while i < chars.count, chars[i] != c {
                if c == "\"", chars[i] == "\\", i + 1 < chars.count {
                    i += 1
                    switch chars[i] {
                    case "n": text.append("\n")
                    case "t": text.append("\t")
                    case "r": text.append("\r")
                    default: text.append(chars[i])
                    }
                } else {
                    text.append(chars[i])
                }
                i += 1
            }
            guard i < chars.count else { throw GoTemplate.Failure(description: "template: unterminated string") }
            i += 1
            return .literal(.string(text))
        default:
            if c.isNumber || c == "-" || c == "+" {
                let start = i
                i += 1
                while i < chars.count, chars[i].isNumber || chars[i] == "." || chars[i] == "e" || chars[i] == "x" { i += 1 }
                let text = String(chars[start..<i])
                if let n = Int64(text) { return .literal(.int(n)) }
                if let d = Double(text) { return .literal(.double(d)) }
                throw GoTemplate.Failure(description: "template: bad number '\(text)'")
            }
            guard c.isLetter || c == "_" else { throw GoTemplate.Failure(description: "template: unexpected '\(c)'") }
            let name = word()
            switch name {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "nil": return .literal(.null)
            default: return .function(name)
            }
        }
    }
}
