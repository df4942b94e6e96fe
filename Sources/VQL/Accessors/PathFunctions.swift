/// Functions over paths that need no file system: `pathspec()` builds the paths accessors take,
/// `basename`, `dirname`, `path_join`, `path_split` and `relpath` take them apart.
public enum PathFunctions {
    public static var all: [FunctionDeclaration] { [pathspec, basename, dirname, pathJoin, pathSplit, relpath, Pipes.function] }

    public static let pathspec = FunctionDeclaration(
        name: "pathspec",
        summary: "Builds a path for an accessor: a Path inside a delegate (DelegateAccessor + DelegatePath) such as a file inside a zip, or a path parsed from text.",
        arguments: [
            ArgumentSpec("DelegateAccessor", .string, "The accessor that opens the delegate (the zip file, the image)."),
            ArgumentSpec("DelegatePath", .any, "The delegate's path (a string or another pathspec)."),
            ArgumentSpec("Delegate", .any, "The delegate as a pathspec (instead of DelegatePath)."),
            ArgumentSpec("Path", .any, "The path inside the delegate (a string or a list of components)."),
            ArgumentSpec("parse", .string, "Parse this text instead (a path, or a pathspec's JSON form)."),
            ArgumentSpec("path_type", .string, "How to split the path: linux, windows or generic."),
            ArgumentSpec("accessor", .string, "Parse `parse` the way this accessor parses its paths."),
        ],
        returns: .object,
        examples: [
            "SELECT pathspec(parse='/etc/passwd').Components AS C FROM scope()",
            "SELECT pathspec(DelegateAccessor='file', DelegatePath='/tmp/a.zip', Path='/dir/x.txt') AS P FROM scope()",
        ]
    ) { ctx in
        if let text = ctx.bytes("parse") {
            if let name = ctx.string("accessor"), let accessor = ctx.context.accessor(named: name) { return .object(accessor.parse(text)) }
            return .object(OSPath.parse(text, type: ctx.string("path_type").map(PathType.init(name:)) ?? .linux))
        }
        var delegatePath: [UInt8] = []
        if let value = ctx.value("DelegatePath") ?? ctx.value("Delegate") {
            delegatePath = pathText(value)
        }
        let accessor = ctx.string("DelegateAccessor") ?? ""
        let hasDelegate = !accessor.isEmpty || !delegatePath.isEmpty
        let type = ctx.string("path_type").map(PathType.init(name:)) ?? (hasDelegate ? .generic : .linux)
        let components = ctx.value("Path").map { pathComponents($0, type: type) } ?? []
        if !hasDelegate && type == .linux, case .string(let s)? = ctx.value("Path") { return .object(OSPath(Array(s.utf8))) }
        return .object(OSPath(components: components, type: type,
                              delegate: hasDelegate ? PathDelegate(accessor: accessor, path: delegatePath) : nil))
    }

    /// A path-like value as text: an OSPath's string form, a pathspec dict's JSON form, a string.
    static func pathText(_ value: Value) -> [UInt8] {
        switch value.reduced() {
        case .object(let path as OSPath): return path.text
        case .dict(let d): return OSPath.pathspec(dict: d)?.text ?? Array(JSONWriter.string(.dict(d)).utf8)
        case .null: return []
        case let v: return v.byteValue ?? Array(CellText.text(v).utf8)
        }
    }

    /// The components of a `Path=` value: a string split by `type`, an OSPath's components, a list
    /// of strings as they are; other values (a sparse accessor's list of ranges) as one JSON component.
    static func pathComponents(_ value: Value, type: PathType) -> [[UInt8]] {
        switch value.reduced() {
        case .null: return []
        case .string, .bytes: return OSPath.split(value.reduced().byteValue ?? [], type: type)
        case .object(let path as OSPath): return path.components
        case .list(let items) where items.allSatisfy({ $0.reduced().byteValue != nil }):
            return items.compactMap { $0.reduced().byteValue }.filter { !$0.isEmpty }
        case let v: return [Array(JSONWriter.string(v.materialized()).utf8)]
        }
    }

    /// A path argument's bytes and, when it is an OSPath, the path itself.
    static func pathArgument(_ ctx: CallContext) -> (bytes: [UInt8], path: OSPath?)? {
        guard let value = ctx.value("path") else { return nil }
        if case .object(let path as OSPath) = value { return (path.path, path) }
        guard let bytes = value.byteValue ?? (value.isNull ? nil : Array(CellText.text(value).utf8)) else { return nil }
        return (bytes, nil)
    }

    static func separatorType(_ ctx: CallContext) -> PathType? {
        ctx.string("path_type").map(PathType.init(name:))
    }

    public static let basename = FunctionDeclaration(
        name: "basename", summary: "The last component of a path.",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The path (a string or an OSPath)."),
            ArgumentSpec("sep", .string, "Separator (default /)."),
            ArgumentSpec("path_type", .string, "Split as this type of path (linux, windows, generic)."),
        ],
        returns: .string,
        examples: ["SELECT basename(path='/etc/passwd') AS Name FROM scope()"]
    ) { ctx in
        guard let (bytes, path) = pathArgument(ctx) else { return .null }
        if let path { return .string(bytes: path.basename) }
        if let type = separatorType(ctx) { return .string(bytes: OSPath.split(bytes, type: type).last ?? []) }
        return .string(bytes: OSPath.rawBasename(normalizeSeparator(bytes, ctx.string("sep"))))
    }

    public static let dirname = FunctionDeclaration(
        name: "dirname", summary: "A path without its last component.",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The path (a string or an OSPath)."),
            ArgumentSpec("sep", .string, "Separator (default /)."),
            ArgumentSpec("path_type", .string, "Split as this type of path (linux, windows, generic)."),
        ],
        returns: .string,
        examples: ["SELECT dirname(path='/etc/passwd') AS Dir FROM scope()"]
    ) { ctx in
        guard let (bytes, path) = pathArgument(ctx) else { return .null }
        if let path { return .object(path.dirname) }
        if let type = separatorType(ctx) {
            return .string(bytes: OSPath.render(Array(OSPath.split(bytes, type: type).dropLast()), type: type))
        }
        return .string(bytes: OSPath.rawDirname(normalizeSeparator(bytes, ctx.string("sep"))))
    }

    static func normalizeSeparator(_ path: [UInt8], _ sep: String?) -> [UInt8] {
        guard let sep, sep != "/", let byte = sep.utf8.first, sep.utf8.count == 1 else { return path }
        return path.map { $0 == byte ? UInt8(ascii: "/") : $0 }
    }

    public static let pathJoin = FunctionDeclaration(
        name: "path_join", summary: "Joins path components with a separator (default /).",
        arguments: [
            ArgumentSpec("components", .stringList, required: true, "The components."),
            ArgumentSpec("sep", .string, "Separator (default /)."),
            ArgumentSpec("path_type", .string, "Join as this type of path (windows uses \\)."),
        ],
        returns: .string,
        examples: ["SELECT path_join(components=['etc', 'passwd']) AS Path FROM scope()"]
    ) { ctx in
        let defaultSeparator = separatorType(ctx) == .windows ? "\\" : "/"
        let sep = Array((ctx.string("sep") ?? defaultSeparator).utf8)
        var out: [UInt8] = []
        let parts = (ctx.value("components")?.listElements ?? ctx.value("components").map { [$0] } ?? [])
            .compactMap { value -> [UInt8]? in
                if case .object(let path as OSPath) = value.reduced() { return path.path }
                return value.reduced().byteValue
            }
        for component in parts {
            var part = component[...]
            while part.first.map({ sep.contains($0) }) ?? false { part = part.dropFirst() }
            while part.last.map({ sep.contains($0) }) ?? false { part = part.dropLast() }
            if part.isEmpty { continue }
            out.append(contentsOf: sep)
            out.append(contentsOf: part)
        }
        return .string(bytes: out.isEmpty ? sep : out)
    }

    public static let pathSplit = FunctionDeclaration(
        name: "path_split", summary: "Splits a path into its components (separators by path type; `.` and empty parts dropped).",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The path (a string or an OSPath)."),
            ArgumentSpec("path_type", .string, "linux (default), windows or generic."),
        ],
        returns: .list,
        examples: ["SELECT path_split(path='/usr/bin/ls') AS Parts FROM scope()"]
    ) { ctx in
        guard let (bytes, path) = pathArgument(ctx) else { return .null }
        let components = path?.components ?? OSPath.split(bytes, type: separatorType(ctx) ?? .linux)
        return .list(components.map { .string(bytes: $0) })
    }

    public static let relpath = FunctionDeclaration(
        name: "relpath", summary: "A path relative to a base path (with `..` steps when it is not under the base).",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The path (a string or an OSPath)."),
            ArgumentSpec("base", .any, required: true, "The base path."),
            ArgumentSpec("sep", .string, "Separator for the result (default /)."),
        ],
        returns: .string,
        examples: ["SELECT relpath(path='/usr/lib/x.so', base='/usr', sep='/') AS Rel FROM scope()"]
    ) { ctx in
        guard let (bytes, path) = pathArgument(ctx), let base = ctx.value("base") else { return .null }
        let target = path?.components ?? OSPath.split(bytes, type: .generic)
        let baseComponents: [[UInt8]]
        if case .object(let b as OSPath) = base {
            baseComponents = b.components
        } else {
            baseComponents = OSPath.split(base.byteValue ?? [], type: .generic)
        }
        var common = 0
        while common < target.count && common < baseComponents.count && target[common] == baseComponents[common] { common += 1 }
        let parts = Array(repeating: [UInt8(ascii: "."), UInt8(ascii: ".")], count: baseComponents.count - common) + target[common...]
        if parts.isEmpty { return .string(".") }
        let sep = Array((ctx.string("sep") ?? "/").utf8)
        return .string(bytes: Array(parts.joined(separator: sep)))
    }
}
