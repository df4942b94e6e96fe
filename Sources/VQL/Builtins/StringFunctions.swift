import Foundation

/// String functions: case, splitting, joining, trimming, regex replacement.
public enum StringFunctions {
    public static let all: [FunctionDeclaration] = [upcase, lowcase, split, join, strip, regexReplace]

    public static let upcase = FunctionDeclaration(
        name: "upcase", summary: "Upper-cases a string.",
        arguments: [ArgumentSpec("string", .string, required: true, "The text.")], returns: .string,
        examples: ["SELECT upcase(string='abc') AS U FROM scope()"]
    ) { ctx in ctx.string("string").map { .string($0.uppercased()) } ?? .null }

    public static let lowcase = FunctionDeclaration(
        name: "lowcase", summary: "Lower-cases a string.",
        arguments: [ArgumentSpec("string", .string, required: true, "The text.")], returns: .string,
        examples: ["SELECT lowcase(string='ABC') AS L FROM scope()"]
    ) { ctx in ctx.string("string").map { .string($0.lowercased()) } ?? .null }

    public static let split = FunctionDeclaration(
        name: "split", summary: "Splits a string by a regex `sep` (or a literal `sep_string`).",
        arguments: [
            ArgumentSpec("string", .string, required: true, "The text."),
            ArgumentSpec("sep", .string, "A regular expression separator."),
            ArgumentSpec("sep_string", .string, "A literal separator."),
        ],
        returns: .list, examples: ["SELECT split(string='a,b,,c', sep=',') AS Parts FROM scope()"]
    ) { ctx in
        guard let bytes = ctx.bytes("string") else { return .null }
        if let literal = ctx.string("sep_string") {
            let text = String(decoding: bytes, as: UTF8.self)
            return .list(text.components(separatedBy: literal).map { .string($0) })
        }
        guard let sep = ctx.string("sep") else { return .list([.string(bytes: bytes)]) }
        guard let regex = ctx.context.regex(sep, caseInsensitive: false) else { return .null }
        var parts: [Value] = []
        var last = 0
        for groups in regex.allMatches(in: bytes) {
            guard let whole = groups.first ?? nil else { continue }
            if whole.isEmpty && (whole.lowerBound == 0 || whole.lowerBound == bytes.count) { continue }
            parts.append(.string(bytes: Array(bytes[last..<whole.lowerBound])))
            last = whole.upperBound
        }
        parts.append(.string(bytes: Array(bytes[last...])))
        return .list(parts)
    }

    public static let join = FunctionDeclaration(
        name: "join", summary: "Joins a list of strings with `sep`.",
        arguments: [ArgumentSpec("array", .list, required: true, "The items."), ArgumentSpec("sep", .string, "Separator (default empty).")],
        returns: .string, examples: ["SELECT join(array=['a', 'b'], sep='-') AS J FROM scope()"]
    ) { ctx in
        let items = ctx.value("array")?.listElements ?? []
        return .string(items.map { GoFormat.plain($0.reduced()) }.joined(separator: ctx.string("sep") ?? ""))
    }

    public static let strip = FunctionDeclaration(
        name: "strip", summary: "Removes whitespace (or the given prefix/suffix) from both ends.",
        arguments: [
            ArgumentSpec("string", .string, required: true, "The text."),
            ArgumentSpec("prefix", .string, "Remove this prefix instead of whitespace."),
            ArgumentSpec("suffix", .string, "Remove this suffix instead of whitespace."),
        ],
        returns: .string, examples: ["SELECT strip(string='  x  ') AS S FROM scope()"]
    ) { ctx in
        guard var text = ctx.string("string") else { return .null }
        let prefix = ctx.string("prefix")
        let suffix = ctx.string("suffix")
        if prefix == nil && suffix == nil { return .string(text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if let prefix, !prefix.isEmpty, text.hasPrefix(prefix) { text.removeFirst(prefix.count) }
        if let suffix, !suffix.isEmpty, text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return .string(text)
    }

    public static let regexReplace = FunctionDeclaration(
        name: "regex_replace", summary: "Replaces every match of `re` in `source` with `replace` ($1 and ${name} expand).",
        arguments: [
            ArgumentSpec("source", .string, required: true, "The text."),
            ArgumentSpec("re", .string, required: true, "The regular expression (case-sensitive)."),
            ArgumentSpec("replace", .string, "The replacement."),
            ArgumentSpec("replace_lambda", .lambda, "A lambda given each match, returning its replacement."),
        ],
        returns: .string, examples: ["SELECT regex_replace(source='a1b22', re='[0-9]+', replace='#') AS R FROM scope()"]
    ) { ctx in
        guard let source = ctx.bytes("source"), let pattern = ctx.string("re"),
            let regex = ctx.context.regex(pattern, caseInsensitive: false)
        else { return .null }
        if let lambda = ctx.lambda("replace_lambda") {
            var out: [UInt8] = []
            var last = 0
            for groups in regex.allMatches(in: source) {
                guard let whole = groups.first ?? nil else { continue }
                out.append(contentsOf: source[last..<whole.lowerBound])
                let replacement = lambda.call([.string(bytes: Array(source[whole]))], in: ctx.env)
                out.append(contentsOf: replacement.byteValue ?? Array(GoFormat.plain(replacement).utf8))
                last = whole.upperBound
            }
            out.append(contentsOf: source[last...])
            return .string(bytes: out)
        }
        return .string(bytes: regex.replaceAll(in: source, with: ctx.bytes("replace") ?? []))
    }
}

/// Basic facts about the machine that need nothing beyond Foundation; host modules replace
/// `info()` with a richer declaration of the same name.
public enum BasicInfo {
    public static let plugin = PluginDeclaration(
        name: "info", summary: "Basic facts about this machine: Hostname, OS, Architecture, …",
        columns: [
            ColumnSpec("Hostname", .string), ColumnSpec("OS", .string), ColumnSpec("Architecture", .string),
            ColumnSpec("NumCPU", .int), ColumnSpec("Uptime", .int),
        ],
        examples: ["SELECT OS FROM info()"]
    ) { _ in
        let info = ProcessInfo.processInfo
        #if os(Linux)
        let os = "linux"
        #else
        let os = "darwin"
        #endif
        #if arch(x86_64)
        let arch = "amd64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "unknown"
        #endif
        return ArrayCursor([
            .dict(Dict([
                ("Hostname", .string(info.hostName)), ("OS", .string(os)), ("Architecture", .string(arch)),
                ("NumCPU", .from(info.activeProcessorCount)), ("Uptime", .int(Int64(info.systemUptime))),
            ]))
        ])
    }
}

/// The language core's registry list: every built-in plugin and function, explicitly.
public enum CoreLibrary {
    public static var plugins: [PluginDeclaration] {
        ControlPlugins.all + [BasicInfo.plugin, QueryPlugin.plugin] + StreamPlugins.all + EventPlugins.all + LanguagePlugins.all
    }
    public static var functions: [FunctionDeclaration] {
        CoreFunctions.all + StringFunctions.all + Aggregates.all + TimeFunctions.all + CollectionFunctions.all
            + CacheFunctions.all + TextFunctions.all + CodecFunctions.all + ProgramFunctions.all + PathFunctions.all
            + [PatchFunction.function, AlertFunction.function, RekeyFunction.placeholder] + MockFunctions.all
    }
    /// Accessors that need no operating system (data, scope, offset, sparse).
    public static var accessors: [any Accessor] { CoreAccessors.all }

    /// A registry holding just the language core.
    public static func registry() -> Registry {
        Registry(plugins: plugins, functions: functions, accessors: accessors)
    }
}
