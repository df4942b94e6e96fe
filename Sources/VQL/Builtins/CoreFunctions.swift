import Foundation

/// Functions about values and control: dict, if, get, len, array, format, conversions, logging.
public enum CoreFunctions {
    public static let all: [FunctionDeclaration] = [
        dict, ifFunction, get, len, array, scope, log, version, format, int, str, atoi, typeof,
        filter, parseJSON, serialize, encode, base64encode, base64decode, now, items, sleep,
    ]

    public static let dict = FunctionDeclaration(
        name: "dict", summary: "Builds an ordered dict from its arguments (`dict(A=1, B=2)`), lazies reduced in order.",
        returns: .dict, examples: ["SELECT dict(A=1, B='x') AS D FROM scope()"], strictArguments: false
    ) { ctx in
        let pairs = ctx.allArguments()
        var names: [String] = []
        var values: [Value] = []
        for (name, value) in pairs {
            let reduced = value.reduced()
            if let i = names.firstIndex(of: name) {
                values[i] = reduced
            } else {
                names.append(name)
                values.append(reduced)
            }
        }
        return .dict(Dict(schema: Schema(names), values: values))
    }

    public static let ifFunction = FunctionDeclaration(
        name: "if", summary: "Evaluates only the chosen branch: `then` when `condition` is true, else `else`.",
        arguments: [
            ArgumentSpec("condition", .any, required: true, "A value, or a query (true when it has rows)."),
            ArgumentSpec("then", .any, "Value when true (a query comes back unrun)."),
            ArgumentSpec("else", .any, "Value when false."),
        ],
        examples: ["SELECT if(condition=1 > 0, then='yes', else='no') AS A FROM scope()"]
    ) { ctx in
        let condition = ctx.raw("condition")?.isTruthy ?? false
        guard let branch = ctx.raw(condition ? "then" : "else") else { return .null }
        if case .lazy = branch { return branch.reduced() }
        return branch
    }

    public static let get = FunctionDeclaration(
        name: "get", summary: "Follows a dotted path (`a.0.b`, numbers index lists) into `item`, or the scope.",
        arguments: [
            ArgumentSpec("item", .any, "The value to look into (default: the scope)."),
            ArgumentSpec("member", .string, "A dotted path."),
            ArgumentSpec("field", .any, "A single key or index."),
            ArgumentSpec("default", .any, "Returned when the path is missing."),
        ],
        examples: ["SELECT get(item=dict(a=[dict(b=5)]), member='a.0.b') AS B FROM scope()"]
    ) { ctx in
        let fallback = ctx.value("default") ?? .null
        var parts: [Value] = []
        if let member = ctx.string("member") {
            parts = member.split(separator: ".").map { part in
                Int64(part).map(Value.int) ?? .string(String(part))
            }
        }
        if let field = ctx.value("field") { parts.append(field) }
        var current: Value
        if let item = ctx.value("item") {
            current = item
        } else {
            guard case .string(let first)? = parts.first, let v = ctx.env.lookup(first) else { return fallback }
            current = v.reduced()
            parts.removeFirst()
        }
        for part in parts {
            switch (current.reduced(), part) {
            case (.list, .int), (.query, .int), (.string, .int), (.bytes, .int):
                current = current.index(part)
            case (let base, .int(let i)):
                current = base.member(String(i))
            case (let base, let key):
                guard let name = key.stringValue else { return fallback }
                let m = base.member(name)
                current = m
            }
            if current.isNull { return fallback }
        }
        return current.reduced()
    }

    public static let len = FunctionDeclaration(
        name: "len", summary: "Length of a list, string (bytes), dict, or query (rows).",
        arguments: [ArgumentSpec("list", .any, required: true, "The value to measure.")], returns: .int,
        examples: ["SELECT len(list=[1, 2, 3]) AS N FROM scope()"]
    ) { ctx in
        switch ctx.value("list") ?? .null {
        case .list(let l): return .from(l.count)
        case .string(let s): return .from(s.utf8.count)
        case .bytes(let b): return .from(b.count)
        case .dict(let d): return .from(d.count)
        case .query(let q): return .from(q.materialize().count)
        case .object(let o): return .from(o.memberNames.count)
        default: return .int(0)
        }
    }

    public static let array = FunctionDeclaration(
        name: "array", summary: "A list of all argument values (queries contribute their rows).",
        returns: .list, examples: ["SELECT array(a=1, b=2) AS L FROM scope()"], strictArguments: false
    ) { ctx in
        var out: [Value] = []
        for (_, value) in ctx.allArguments() {
            let v = value.reduced()
            if let items = v.listElements { out.append(contentsOf: items) } else { out.append(v) }
        }
        return .list(out)
    }

    public static let scope = FunctionDeclaration(
        name: "scope", summary: "The live scope as an object: `scope().X` looks X up where it is read.",
        returns: .object, examples: ["SELECT scope().A FROM foreach(row=[dict(A=1)])"]
    ) { ctx in .object(ScopeObject(env: ctx.env)) }

    public static let log = FunctionDeclaration(
        name: "log", summary: "Writes a message to the query log and returns TRUE (format with args like format()).",
        arguments: [
            ArgumentSpec("message", .string, required: true, "Message or format string."),
            ArgumentSpec("args", .any, "Format arguments."),
            ArgumentSpec("level", .string, "DEBUG, INFO, WARN or ERROR (default INFO)."),
            ArgumentSpec("dedup", .int, "Accepted for compatibility."),
        ],
        examples: ["SELECT log(message='hello %v', args='world') FROM scope()"]
    ) { ctx in
        let message = ctx.bytes("message") ?? []
        let text = ctx.has("args") ? GoFormat.format(message, formatArguments(ctx.value("args"))) : String(decoding: message, as: UTF8.self)
        let level = LogLevel(rawValue: (ctx.string("level") ?? "INFO").uppercased()) ?? .info
        ctx.log(level, text)
        return .bool(true)
    }

    public static let sleep = FunctionDeclaration(
        name: "sleep", summary: "Waits `time` seconds (or `ms` milliseconds), returning TRUE; a cancelled query stops waiting at once.",
        arguments: [ArgumentSpec("time", .float, "Seconds to wait."), ArgumentSpec("ms", .int, "Milliseconds to wait.")],
        returns: .bool, examples: ["SELECT sleep(ms=10) FROM scope()"]
    ) { ctx in
        let seconds = ctx.double("time") ?? (ctx.double("ms").map { $0 / 1000 } ?? 0)
        let deadline = Date().addingTimeInterval(max(0, seconds))
        while Date() < deadline {
            if ctx.context.cancellation.isCancelled { return .bool(false) }
            Thread.sleep(forTimeInterval: min(0.05, max(0, deadline.timeIntervalSinceNow)))
        }
        return .bool(true)
    }

    public static let version = FunctionDeclaration(
        name: "version", summary: "The version of a plugin or function (1 when it exists, NULL otherwise).",
        arguments: [ArgumentSpec("function", .string, "A function name."), ArgumentSpec("plugin", .string, "A plugin name.")],
        returns: .int, examples: ["SELECT version(plugin='range') AS V FROM scope()"]
    ) { ctx in
        if let f = ctx.string("function") { return ctx.context.registry.function(f) == nil ? .null : .int(1) }
        if let p = ctx.string("plugin") { return ctx.context.registry.plugin(p) == nil ? .null : .int(1) }
        return .null
    }

    static func formatArguments(_ value: Value?) -> [Value] {
        guard let value else { return [] }
        switch value {
        case .list(let l): return l
        case .query: return value.listElements ?? []
        default: return [value]
        }
    }

    public static let format = FunctionDeclaration(
        name: "format", summary: "Formats `args` with Go verbs (%v %s %d %x %02x %q %f %t %T).",
        arguments: [
            ArgumentSpec("format", .string, required: true, "The format string."),
            ArgumentSpec("args", .any, "A value or a list of values."),
        ],
        returns: .string, examples: ["SELECT format(format='%s has %d items, hex %02x', args=['box', 3, 255]) AS S FROM scope()"],
        specialize: { constants in
            guard let template = constants["format"]?.byteValue else { return nil }
            let parsed = GoFormat.Template(template)
            return { ctx in .string(parsed.render(argument: ctx.value("args"))) }
        }
    ) { ctx in
        guard let template = ctx.bytes("format") else { return .null }
        return .string(GoFormat.format(template, argument: ctx.value("args")))
    }

    public static let int = FunctionDeclaration(
        name: "int", summary: "Converts to an integer (strings parsed, floats truncated, NULL → 0).",
        arguments: [ArgumentSpec("int", .any, required: true, "The value to convert.")], returns: .int,
        examples: ["SELECT int(int='42') AS N FROM scope()"]
    ) { ctx in
        switch ctx.value("int") ?? .null {
        case .string(let s):
            let t = s.trimmingCharacters(in: .whitespaces)
            if let i = Int64(t) { return .int(i) }
            if t.hasPrefix("0x"), let i = Int64(t.dropFirst(2), radix: 16) { return .int(i) }
            if let d = Double(t) { return .int(Int64(d)) }
            return .int(0)
        case .null: return .int(0)
        case let v: return .int(v.intValue ?? 0)
        }
    }

    public static let atoi = FunctionDeclaration(
        name: "atoi", summary: "Parses a string as an integer (NULL when it is not one).",
        arguments: [ArgumentSpec("string", .any, required: true, "The text.")], returns: .int,
        examples: ["SELECT atoi(string='17') AS N FROM scope()"]
    ) { ctx in
        guard let v = ctx.value("string") else { return .null }
        if case .int = v { return v }
        guard let s = v.stringValue, let i = Int64(s.trimmingCharacters(in: .whitespaces)) else { return .null }
        return .int(i)
    }

    public static let str = FunctionDeclaration(
        name: "str", summary: "Converts to a string (containers as JSON).",
        arguments: [ArgumentSpec("str", .any, required: true, "The value to convert.")], returns: .string,
        examples: ["SELECT str(str=42) AS S FROM scope()"]
    ) { ctx in
        let v = ctx.value("str") ?? .null
        if case .bytes = v { return v }
        if case .null = v { return .string("") }
        return .string(GoFormat.plain(v))
    }

    public static let typeof = FunctionDeclaration(
        name: "typeof", summary: "The type name of a value (int, string, list, dict, …).",
        arguments: [ArgumentSpec("item", .any, required: true, "Any value.")], returns: .string,
        examples: ["SELECT typeof(item=1.5) AS T FROM scope()"]
    ) { ctx in .string((ctx.value("item") ?? .null).typeName) }

    public static let filter = FunctionDeclaration(
        name: "filter", summary: "Keeps the elements of `list` for which the lambda `condition` (or `regex`) holds.",
        arguments: [
            ArgumentSpec("list", .list, required: true, "The list to filter."),
            ArgumentSpec("condition", .lambda, "A lambda such as \"x => x > 2\"."),
            ArgumentSpec("regex", .string, "Keep elements matching this regex."),
        ],
        returns: .list, examples: ["SELECT filter(list=[1, 2, 3, 4], condition='x => x > 2') AS L FROM scope()"]
    ) { ctx in
        let items = ctx.value("list")?.listElements ?? []
        if let lambda = ctx.lambda("condition") {
            return .list(items.filter { lambda.call([$0], in: ctx.env).isTruthy })
        }
        if let pattern = ctx.string("regex"), let regex = ctx.context.regex(pattern) {
            return .list(items.filter { Compiler.regexMatch($0, regex) })
        }
        return .list(items)
    }

    public static let parseJSON = FunctionDeclaration(
        name: "parse_json", summary: "Parses a JSON string into values (key order kept).",
        arguments: [ArgumentSpec("data", .string, required: true, "JSON text.")],
        examples: ["SELECT parse_json(data='{\"a\": [1, 2]}') AS J FROM scope()"]
    ) { ctx in
        guard let bytes = ctx.bytes("data") else { return .null }
        do {
            return try JSONParser.parse(bytes: bytes)
        } catch {
            ctx.log(.warning, "parse_json: \(error)")
            return .null
        }
    }

    public static let serialize = FunctionDeclaration(
        name: "serialize", summary: "Encodes a value as JSON (format='json', the default, or 'jsonl' for a list).",
        arguments: [ArgumentSpec("item", .any, required: true, "The value."), ArgumentSpec("format", .string, "json or jsonl.")],
        returns: .string, examples: ["SELECT serialize(item=dict(A=1)) AS J FROM scope()"]
    ) { ctx in
        let item = (ctx.value("item") ?? .null).materialized()
        if ctx.string("format") == "jsonl", let items = item.listElements {
            return .string(items.map { JSONWriter.string($0) + "\n" }.joined())
        }
        return .string(JSONWriter.string(item))
    }

    public static let encode = FunctionDeclaration(
        name: "encode", summary: "Encodes a string as hex or base64 (`type='hex'` or `'base64'`).",
        arguments: [ArgumentSpec("string", .string, required: true, "The data."), ArgumentSpec("type", .string, required: true, "hex or base64.")],
        returns: .string, examples: ["SELECT encode(string='hi', type='hex') AS H FROM scope()"]
    ) { ctx in
        let bytes = ctx.bytes("string") ?? []
        switch (ctx.string("type") ?? "").lowercased() {
        case "hex": return .string(bytes.map { String(format: "%02x", $0) }.joined())
        case "base64": return .string(Data(bytes).base64EncodedString())
        default:
            ctx.log(.error, "encode(): type must be hex or base64")
            return .null
        }
    }

    public static let base64encode = FunctionDeclaration(
        name: "base64encode", summary: "Base64-encodes a string.",
        arguments: [ArgumentSpec("string", .string, required: true, "The data.")], returns: .string,
        examples: ["SELECT base64encode(string='hi') AS B FROM scope()"]
    ) { ctx in .string(Data(ctx.bytes("string") ?? []).base64EncodedString()) }

    public static let base64decode = FunctionDeclaration(
        name: "base64decode", summary: "Decodes base64 (standard or URL alphabet, padding optional).",
        arguments: [ArgumentSpec("string", .string, required: true, "The base64 text.")], returns: .string,
        examples: ["SELECT base64decode(string='aGk=') AS S FROM scope()"]
    ) { ctx in
        var text = (ctx.string("string") ?? "").replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        // Line breaks are ignored anywhere (PEM bodies, wrapped keys), as Go's decoder does.
        text = text.trimmingCharacters(in: .whitespacesAndNewlines).filter { $0 != "\n" && $0 != "\r" && $0 != "\r\n" }
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text) else { return .null }
        return .string(bytes: [UInt8](data))
    }

    public static let now = FunctionDeclaration(
        name: "now", summary: "The current time as epoch seconds (an integer, not a timestamp); ns=TRUE gives nanoseconds.",
        arguments: [ArgumentSpec("ns", .bool, "Nanoseconds since the epoch instead of seconds.")], returns: .int,
        examples: ["SELECT now() > 0 AS Ok FROM scope()", "SELECT timestamp(epoch=now(ns=TRUE)) AS Now FROM scope()"]
    ) { ctx in
        if ctx.bool("ns") == true {
            var spec = timespec()
            clock_gettime(CLOCK_REALTIME, &spec)
            return .int(Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
        }
        return .int(Int64(Date().timeIntervalSince1970))
    }

    public static let items = FunctionDeclaration(
        name: "items", summary: "The [key, value] pairs of a dict as a list of dicts {_key, _value}.",
        arguments: [ArgumentSpec("item", .any, required: true, "A dict.")], returns: .list,
        examples: ["SELECT items(item=dict(A=1)) AS I FROM scope()"]
    ) { ctx in
        let schema = Schema(["_key", "_value"])
        switch ctx.value("item") ?? .null {
        case .dict(let d): return .list(d.pairs.map { .dict(Dict(schema: schema, values: [.string($0.0), $0.1])) })
        case .object(let o): return .list(o.materialized().pairs.map { .dict(Dict(schema: schema, values: [.string($0.0), $0.1])) })
        default: return .list([])
        }
    }
}

/// `scope()` as a value: member reads look the name up in the scope where it was taken.
final class ScopeObject: HostObject, @unchecked Sendable {
    let env: Env
    init(env: Env) { self.env = env }
    var typeName: String { "scope" }
    var memberNames: [String] { [] }
    func member(_ name: String) -> Value? { env.lookup(name)?.reduced() }
}
