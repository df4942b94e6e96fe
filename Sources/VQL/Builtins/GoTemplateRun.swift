import Foundation

/// Executes a parsed GoTemplate over VQL values, printing them as Go's fmt would (%v).
struct TemplateRun {
    let scope: (String) -> Value
    let escapeHTML: Bool
    var output = ""
    /// Output beyond this size stops the run (a range over a huge list, say).
    static let maxOutput = 32 << 20

    /// A field the data does not have: prints as Go's "<no value>".
    final class NoValue: HostObject, @unchecked Sendable {
        static let shared = NoValue()
        var typeName: String { "no value" }
        var memberNames: [String] { [] }
        func member(_ name: String) -> Value? { nil }
    }

    private typealias Failure = GoTemplate.Failure

    mutating func execute(_ nodes: [GoTemplate.Node], dot: Value, variables: inout [String: Value], depth: Int) throws {
        guard depth < GoTemplate.maxDepth * 2 else { throw Failure(description: "template: nested too deeply") }
        for node in nodes {
            switch node {
            case .text(let text): try append(text)
            case .action(let pipeline):
                let value = try evaluate(pipeline, dot: dot, variables: &variables)
                if pipeline.declarations.isEmpty {
                    let text = TemplateRun.print(value)
                    try append(escapeHTML ? TemplateRun.htmlEscape(text) : text)
                }
            case .branch(let kind, let pipeline, let body, let otherwise):
                var inner = variables
                switch kind {
                case .ifBlock, .withBlock:
                    let value = try evaluate(pipeline, dot: dot, variables: &inner)
                    if TemplateRun.truth(value) {
                        try execute(body, dot: kind == .withBlock ? value : dot, variables: &inner, depth: depth + 1)
                    } else {
                        try execute(otherwise, dot: dot, variables: &inner, depth: depth + 1)
                    }
                case .rangeBlock:
                    var commands = pipeline
                    commands.declarations = []
                    let value = try evaluate(commands, dot: dot, variables: &inner)
                    let pairs = TemplateRun.elements(value)
                    if pairs.isEmpty { try execute(otherwise, dot: dot, variables: &inner, depth: depth + 1) }
                    for (key, element) in pairs {
                        if pipeline.declarations.count == 1 { inner[pipeline.declarations[0]] = element }
                        if pipeline.declarations.count >= 2 {
                            inner[pipeline.declarations[0]] = key
                            inner[pipeline.declarations[1]] = element
                        }
                        try execute(body, dot: element, variables: &inner, depth: depth + 1)
                    }
                }
                // Assignments (`$x = …`) to variables declared outside the block stay visible.
                for name in variables.keys { variables[name] = inner[name] }
            }
        }
    }

    private mutating func append(_ text: String) throws {
        output += text
        if output.utf8.count > TemplateRun.maxOutput { throw Failure(description: "template: output larger than \(TemplateRun.maxOutput) bytes") }
    }

    private func evaluate(_ pipeline: GoTemplate.Pipeline, dot: Value, variables: inout [String: Value]) throws -> Value {
        var value: Value?
        for command in pipeline.commands {
            value = try run(command, dot: dot, variables: &variables, piped: value)
        }
        let result = value ?? .null
        for name in pipeline.declarations { variables[name] = result }
        return result
    }

    private func run(_ command: [GoTemplate.Operand], dot: Value, variables: inout [String: Value], piped: Value?) throws -> Value {
        guard let first = command.first else { return .null }
        if case .function(let name) = first {
            var args = try command.dropFirst().map { try operand($0, dot: dot, variables: &variables) }
            if let piped { args.append(piped) }
            return try call(name, args)
        }
        guard command.count == 1, piped == nil else { throw Failure(description: "template: can't give arguments to a non-function") }
        return try operand(first, dot: dot, variables: &variables)
    }

    private func operand(_ operand: GoTemplate.Operand, dot: Value, variables: inout [String: Value]) throws -> Value {
        switch operand {
        case .literal(let v): return v
        case .function(let name): return try call(name, [])
        case .nested(let pipeline): return try evaluate(pipeline, dot: dot, variables: &variables)
        case .chained(let pipeline, let path):
            return TemplateRun.walk(try evaluate(pipeline, dot: dot, variables: &variables), path)
        case .field(let base, let path):
            guard let base else { return TemplateRun.walk(dot, path) }
            guard let value = variables[base] else { throw Failure(description: "template: undefined variable \(base)") }
            return TemplateRun.walk(value, path)
        }
    }

    static func walk(_ start: Value, _ path: [String]) -> Value {
        var value = start
        for name in path {
            switch value.reduced() {
            case .dict(let d): value = d[name] ?? .object(NoValue.shared)
            case .object(let o) where !(o is NoValue): value = o.member(name) ?? .object(NoValue.shared)
            case .timestamp(let t): value = Timestamps.member(t, name)
            default: return .object(NoValue.shared)
            }
        }
        return value.reduced()
    }

    private func call(_ name: String, _ args: [Value]) throws -> Value {
        func need(_ n: Int) throws {
            guard args.count >= n else { throw Failure(description: "template: \(name) needs \(n) argument(s)") }
        }
        switch name {
        case "printf":
            try need(1)
            return .string(GoFormat.format(Array(TemplateRun.print(args[0]).utf8), Array(args.dropFirst().map(TemplateRun.plainArgument))))
        case "print": return .string(TemplateRun.sprint(args))
        case "println": return .string(args.map(TemplateRun.print).joined(separator: " ") + "\n")
        case "len":
            try need(1)
            switch args[0] {
            case .string(let s): return .from(s.utf8.count)
            case .dict(let d): return .from(d.count)
            default: return .from(args[0].listElements?.count ?? 0)
            }
        case "index":
            try need(1)
            return args.dropFirst().reduce(args[0]) { base, key in
                if case .int = key { return base.index(key) }
                return TemplateRun.walk(base, [TemplateRun.print(key)])
            }
        case "eq":
            try need(2)
            return .bool(args.dropFirst().contains { Value.vqlEqual(args[0], $0) })
        case "ne":
            try need(2)
            return .bool(!Value.vqlEqual(args[0], args[1]))
        case "lt", "le", "gt", "ge":
            try need(2)
            guard let c = Value.vqlCompare(args[0], args[1]) else { throw Failure(description: "template: \(name): incompatible types") }
            switch name {
            case "lt": return .bool(c < 0)
            case "le": return .bool(c <= 0)
            case "gt": return .bool(c > 0)
            default: return .bool(c >= 0)
            }
        case "and":
            try need(1)
            return args.first { !TemplateRun.truth($0) } ?? args[args.count - 1]
        case "or":
            try need(1)
            return args.first { TemplateRun.truth($0) } ?? args[args.count - 1]
        case "not":
            try need(1)
            return .bool(!TemplateRun.truth(args[0]))
        case "html": return .string(TemplateRun.htmlEscape(TemplateRun.sprint(args)))
        case "js":
            return .string(TemplateRun.sprint(args).replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "'", with: "\\'").replacingOccurrences(of: "\"", with: "\\\""))
        case "urlquery":
            return .string(TemplateRun.sprint(args).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        case "Get":
            try need(2)
            let path = TemplateRun.print(args[1]).split(separator: ".").map(String.init)
            let value = TemplateRun.walk(args[0], path)
            if case .object(let o) = value, o is NoValue { return .null }
            return value
        case "Scope":
            try need(1)
            return scope(TemplateRun.print(args[0]))
        default:
            throw Failure(description: "template: function \"\(name)\" not defined")
        }
    }

    /// Arguments for printf keep their VQL type so %d and %x work.
    private static func plainArgument(_ v: Value) -> Value {
        switch v.reduced() {
        case .object(let o) where o is NoValue: return .string("<no value>")
        case .list, .dict, .query: return .string(print(v))
        case let other: return other
        }
    }

    /// Go's Sprint: a space between two operands when neither is a string.
    static func sprint(_ args: [Value]) -> String {
        var out = ""
        for (i, arg) in args.enumerated() {
            if i > 0, !isString(args[i - 1]), !isString(arg) { out += " " }
            out += print(arg)
        }
        return out
    }

    private static func isString(_ v: Value) -> Bool {
        switch v {
        case .string, .bytes: return true
        default: return false
        }
    }

    /// Go's %v of a value.
    static func print(_ v: Value) -> String {
        switch v.reduced() {
        case .null: return ""
        case .object(let o) where o is NoValue: return "<no value>"
        case .string(let s): return s
        case .timestamp(let t): return GoTime.format(t, layout: "2006-01-02 15:04:05.999999999 -0700 MST", zone: TimeFunctions.utc)
        case .list(let items): return "[" + items.map(print).joined(separator: " ") + "]"
        case .query: return print(.list(v.listElements ?? []))
        case .dict(let d): return "map[" + d.pairs.sorted { $0.0 < $1.0 }.map { "\($0.0):\(print($0.1))" }.joined(separator: " ") + "]"
        case .object(let o) where o.scalar == nil: return print(.dict(o.materialized()))
        case let other: return GoFormat.plain(other)
        }
    }

    static func truth(_ v: Value) -> Bool {
        if case .object(let o) = v, o is NoValue { return false }
        return v.isTruthy
    }

    /// (key, element) pairs of what range walks: a list's indexes, a dict's sorted keys, 0..<n.
    static func elements(_ v: Value) -> [(Value, Value)] {
        switch v.reduced() {
        case .dict(let d): return d.pairs.sorted { $0.0 < $1.0 }.map { (.string($0.0), $0.1) }
        case .int(let n) where n > 0: return (0..<min(n, 1_000_000)).map { (.int($0), .int($0)) }
        case .object(let o) where !(o is NoValue) && o.scalar == nil:
            return elements(.dict(o.materialized()))
        default: return (v.listElements ?? []).enumerated().map { (.from($0.offset), $0.element) }
        }
    }

    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
