/// Turning argument values into paths: what every path-taking plugin and function does with its
/// `filename=`/`path=`/`files=` and `accessor=` arguments, in one place.
public enum PathValues {
    /// A value as a path for `accessor`: strings are parsed by the accessor (JSON pathspecs
    /// included), OSPath values are kept, rows give their OSPath (or FullPath) column, pathspec
    /// dicts become pathspecs. Nil for NULL and empty strings.
    public static func path(_ value: Value, for accessor: any Accessor) -> OSPath? {
        switch value.reduced() {
        case .null: return nil
        case .string, .bytes:
            let bytes = value.reduced().byteValue ?? []
            return bytes.isEmpty ? nil : accessor.parse(bytes)
        case .object(let path as OSPath): return path
        case .object(let o):
            if let inner = o.member("OSPath") ?? o.member("FullPath") { return path(inner, for: accessor) }
            if let scalar = o.scalar { return path(scalar, for: accessor) }
            return nil
        case .dict(let d):
            if let inner = d["OSPath"] ?? d["FullPath"] { return path(inner, for: accessor) }
            if let spec = OSPath.pathspec(dict: d, type: accessor.pathType) { return spec }
            if d.count == 1 { return path(d.values[0], for: accessor) }
            return nil
        case .list(let items): return items.first.flatMap { path($0, for: accessor) }
        case .int, .double, .bool, .timestamp:
            return accessor.parse(Array((CellText.text(value.reduced())).utf8))
        case .query, .lazy: return nil
        }
    }

    /// A value holding one or more paths (a list, a query's rows, or one path).
    public static func paths(_ value: Value, for accessor: any Accessor) -> [OSPath] {
        switch value.reduced() {
        case .list, .query: return (value.reduced().listElements ?? []).compactMap { path($0, for: accessor) }
        default: return path(value, for: accessor).map { [$0] } ?? []
        }
    }

    /// A path for messages.
    public static func display(_ path: OSPath) -> String { String(decoding: path.text, as: UTF8.self) }
}

extension CallContext {
    /// What accessor calls made by this call can reach (its query and scope).
    public var accessorScope: AccessorScope { AccessorScope(context: context, env: env) }

    /// The accessor named by the `accessor` argument (default `auto`); nil, with an error logged
    /// once, when no accessor has that name.
    public func accessor(_ argument: String = "accessor") -> (any Accessor)? {
        let name = string(argument) ?? "auto"
        if let accessor = context.accessor(named: name) { return accessor }
        var message = "\(self.name): unknown accessor '\(name)'"
        if let remapped = context.remapping.accessors, remapped.cleared {
            message += " (a remapping left only: \(remapped.named.keys.sorted().joined(separator: ", ")))"
        } else if let suggestion = NameSuggester.closest(to: name, in: Array(context.registry.accessors.keys)), suggestion != name {
            message += " (did you mean '\(suggestion)'?)"
        }
        context.logOnce(.error, message)
        return nil
    }

    /// The argument as paths for `accessor` (see PathValues.path).
    public func paths(_ name: String, for accessor: any Accessor) -> [OSPath] {
        guard let value = raw(name) else { return [] }
        return PathValues.paths(value, for: accessor)
    }

    /// The argument as one path for `accessor`.
    public func path(_ name: String, for accessor: any Accessor) -> OSPath? {
        guard let value = raw(name) else { return nil }
        return PathValues.path(value, for: accessor)
    }

    /// Opens `path` with `accessor`; nil (a warning logged once, naming this call) on failure.
    public func open(_ path: OSPath, with accessor: any Accessor) -> (any ReadableFile)? {
        do {
            return try accessor.open(path, in: accessorScope)
        } catch {
            logFailure(path, error)
            return nil
        }
    }

    /// A whole file (at most `limit` bytes) through `accessor`; nil, logged, when unreadable.
    public func readWhole(_ path: OSPath, with accessor: any Accessor, limit: Int) -> [UInt8]? {
        guard let file = open(path, with: accessor) else { return nil }
        defer { file.close() }
        do {
            return try file.readAll(limit: limit)
        } catch {
            logFailure(path, error)
            return nil
        }
    }

    /// Logs an accessor failure once, as a warning naming this call and the path.
    public func logFailure(_ path: OSPath, _ error: any Error) {
        context.logOnce(.warning, "\(name): \(PathValues.display(path)): \(error)")
    }
}
