/// How a path's text splits into components and prints back. Velociraptor keeps a "path type"
/// with every path so a path read from one accessor prints the way that accessor's users expect.
public enum PathType: String, Sendable {
    /// `/`-separated, printed `/a/b` (the file accessors).
    case linux
    /// `/` or `\`-separated, printed `/a/b` (pathspecs, archives, images).
    case generic
    /// `\` or `/`-separated, printed `C:\a\b`.
    case windows

    /// The type named by a `path_type=` argument (Velociraptor's names; unknown names are generic).
    public init(name: String) {
        switch name.lowercased() {
        case "linux", "": self = .linux
        case "windows", "ntfs", "registry": self = .windows
        default: self = .generic
        }
    }

    func isSeparator(_ byte: UInt8) -> Bool {
        switch self {
        case .linux: return byte == UInt8(ascii: "/")
        case .generic, .windows: return byte == UInt8(ascii: "/") || byte == UInt8(ascii: "\\")
        }
    }
}

/// The accessor and path a pathspec reads its bytes through (a zip's own file, an image's device).
public struct PathDelegate: Sendable, Equatable {
    /// The accessor that opens the delegate.
    public var accessor: String
    /// The delegate's path as text (itself a JSON pathspec when the delegate is nested).
    public var path: [UInt8]

    public init(accessor: String, path: [UInt8]) {
        self.accessor = accessor
        self.path = path
    }
}

/// A path as VQL sees it: a list of components, a path type, and (for paths inside archives or
/// images) the delegate that holds the bytes. It stands for its string in comparisons, regex and
/// output — the plain path, or Velociraptor's JSON pathspec text when it has a delegate — and
/// `+` appends components. A plain file path keeps its exact bytes (non-UTF-8 names survive and
/// relative paths stay relative); components are split from them only when asked for.
public final class OSPath: HostObject {
    public let type: PathType
    public let delegate: PathDelegate?
    /// The exact text of a plain file path (no delegate); nil when built from components.
    public let raw: [UInt8]?
    private let stored: [[UInt8]]

    /// A plain file path kept byte for byte.
    public init(_ raw: [UInt8]) {
        self.type = .linux
        self.delegate = nil
        self.raw = raw
        self.stored = []
    }

    public init(components: [[UInt8]], type: PathType = .linux, delegate: PathDelegate? = nil) {
        self.type = type
        self.delegate = delegate
        self.raw = nil
        self.stored = components
    }

    public var typeName: String { "OSPath" }
    public var memberNames: [String] { ["Components", "Basename", "Dirname", "Path"] }
    public var scalar: Value? { .string(bytes: text) }

    /// The components (split from the raw text when there is one).
    public var components: [[UInt8]] {
        guard let raw else { return stored }
        return OSPath.split(raw, type: type)
    }

    /// The path within its accessor, printed the way its type prints paths (the `Path` member).
    public var path: [UInt8] {
        if let raw { return raw }
        return OSPath.render(stored, type: type)
    }

    /// The string form: the path, or the JSON pathspec when there is a delegate.
    public var text: [UInt8] {
        guard let delegate else { return path }
        return Array(JSONWriter.string(.dict(pathspecDict(delegate))).utf8)
    }

    func pathspecDict(_ delegate: PathDelegate) -> Dict {
        var pairs: [(String, Value)] = []
        if !delegate.accessor.isEmpty { pairs.append(("DelegateAccessor", .string(delegate.accessor))) }
        if !delegate.path.isEmpty { pairs.append(("DelegatePath", .string(bytes: delegate.path))) }
        let components = self.components
        if !components.isEmpty { pairs.append(("Path", .string(bytes: OSPath.render(components, type: type)))) }
        return Dict(pairs)
    }

    /// The last component (empty for the root).
    public var basename: [UInt8] {
        if let raw { return OSPath.rawBasename(raw) }
        return stored.last ?? []
    }

    /// The path without its last component, same delegate and type.
    public var dirname: OSPath {
        if let raw { return OSPath(OSPath.rawDirname(raw)) }
        return OSPath(components: Array(stored.dropLast()), type: type, delegate: delegate)
    }

    /// This path with `more` components appended (same delegate and type).
    public func appending(_ more: [[UInt8]]) -> OSPath {
        if let raw {
            var out = raw
            for component in more where !component.isEmpty {
                if out.last != UInt8(ascii: "/") { out.append(UInt8(ascii: "/")) }
                out.append(contentsOf: component)
            }
            return OSPath(out)
        }
        return OSPath(components: stored + more.filter { !$0.isEmpty }, type: type, delegate: delegate)
    }

    /// This path with the components of `text` (parsed with this path's type) appended.
    public func appending(text: [UInt8]) -> OSPath {
        appending(OSPath.split(text, type: type))
    }

    /// The same components under another delegate (or none).
    public func with(delegate: PathDelegate?, type: PathType? = nil) -> OSPath {
        OSPath(components: components, type: type ?? self.type, delegate: delegate)
    }

    /// The delegate as a path of its own (parsed from its text), for `OSPath.Delegate`.
    public var delegatePath: OSPath? {
        delegate.map { OSPath.parse($0.path, type: .generic) }
    }

    /// A readable form: the delegate's readable form followed by the path.
    public var humanString: [UInt8] {
        guard let delegate else { return path }
        let inner = OSPath.parse(delegate.path, type: .generic).humanString
        return inner + path
    }

    public func member(_ name: String) -> Value? {
        switch name {
        case "Components": return .list(components.map { .string(bytes: $0) })
        case "Basename": return .string(bytes: basename)
        case "Dirname": return .object(dirname)
        case "Path": return .string(bytes: path)
        case "String": return .string(bytes: text)
        case "HumanString": return .string(bytes: humanString)
        case "Type": return .string(type.rawValue)
        case "DelegateAccessor": return .string(delegate?.accessor ?? "")
        case "DelegatePath": return .string(bytes: delegate?.path ?? [])
        case "Delegate": return delegatePath.map { .object($0) } ?? .null
        case "Length": return .from(components.count)
        default:
            let lowered = name.lowercased()
            for known in ["Components", "Basename", "Dirname", "Path", "String", "HumanString", "Type",
                          "DelegateAccessor", "DelegatePath", "Delegate", "Length"] where known.lowercased() == lowered {
                return member(known)
            }
            return nil
        }
    }

    public func element(at index: Int) -> Value? {
        let parts = components
        let i = index < 0 ? parts.count + index : index
        guard i >= 0 && i < parts.count else { return nil }
        return .string(bytes: parts[i])
    }

    // MARK: - Parsing and printing

    /// Splits path text into components (empty components and `.` dropped).
    public static func split(_ text: [UInt8], type: PathType) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var current: [UInt8] = []
        for byte in text {
            if type.isSeparator(byte) {
                if !current.isEmpty && current != [UInt8(ascii: ".")] { parts.append(current) }
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(byte)
            }
        }
        if !current.isEmpty && current != [UInt8(ascii: ".")] { parts.append(current) }
        return parts
    }

    public static func render(_ components: [[UInt8]], type: PathType) -> [UInt8] {
        switch type {
        case .linux, .generic:
            if components.isEmpty { return [UInt8(ascii: "/")] }
            var out: [UInt8] = []
            for component in components {
                out.append(UInt8(ascii: "/"))
                out.append(contentsOf: component)
            }
            return out
        case .windows:
            var out: [UInt8] = []
            for (i, component) in components.enumerated() {
                if i > 0 { out.append(UInt8(ascii: "\\")) }
                out.append(contentsOf: component)
            }
            if components.count == 1, components[0].last == UInt8(ascii: ":") { out.append(UInt8(ascii: "\\")) }
            return out
        }
    }

    /// Parses path text: a JSON pathspec (`{"DelegateAccessor": …, "DelegatePath": …, "Path": …}`)
    /// becomes a delegated path; anything else splits by `type`. A plain Linux path keeps its bytes.
    public static func parse(_ text: [UInt8], type: PathType) -> OSPath {
        if text.first == UInt8(ascii: "{"), let spec = pathspec(json: text) { return spec }
        if type == .linux { return OSPath(text) }
        return OSPath(components: split(text, type: type), type: type)
    }

    /// A pathspec from its JSON text; nil when the text is not a JSON object with pathspec keys.
    public static func pathspec(json text: [UInt8], depth: Int = 0) -> OSPath? {
        guard depth < AccessorScope.maximumDepth,
              let value = try? JSONParser.parse(bytes: text), case .dict(let d) = value else { return nil }
        return pathspec(dict: d, depth: depth)
    }

    /// A pathspec from a dict with DelegateAccessor / DelegatePath / Delegate / Path keys.
    public static func pathspec(dict d: Dict, type: PathType = .generic, depth: Int = 0) -> OSPath? {
        let keys = Set(d.keys)
        guard !keys.isDisjoint(with: ["DelegateAccessor", "DelegatePath", "Delegate", "Path"]) else { return nil }
        var delegatePath = d["DelegatePath"]?.byteValue ?? []
        if delegatePath.isEmpty, case .dict(let inner)? = d["Delegate"], depth < AccessorScope.maximumDepth,
           let nested = pathspec(dict: inner, depth: depth + 1) {
            delegatePath = nested.text
        }
        let accessor = d["DelegateAccessor"]?.stringValue ?? ""
        let pathText = d["Path"]?.byteValue ?? []
        let delegate = accessor.isEmpty && delegatePath.isEmpty ? nil : PathDelegate(accessor: accessor, path: delegatePath)
        if delegate == nil && type == .linux { return OSPath(pathText) }
        return OSPath(components: split(pathText, type: type == .linux ? .generic : type), type: type == .linux ? .generic : type, delegate: delegate)
    }

    /// The last component of raw path text (trailing slashes ignored; "/" for the root).
    public static func rawBasename(_ path: [UInt8]) -> [UInt8] {
        let slash = UInt8(ascii: "/")
        var end = path.count
        while end > 1 && path[end - 1] == slash { end -= 1 }
        let trimmed = path[0..<end]
        guard let i = trimmed.lastIndex(of: slash) else { return Array(trimmed) }
        if i == trimmed.count - 1 { return [slash] }
        return Array(trimmed[(i + 1)...])
    }

    /// Raw path text without its last component ("." for a bare name, "/" for the root).
    public static func rawDirname(_ path: [UInt8]) -> [UInt8] {
        let slash = UInt8(ascii: "/")
        var end = path.count
        while end > 1 && path[end - 1] == slash { end -= 1 }
        let trimmed = path[0..<end]
        guard var i = trimmed.lastIndex(of: slash) else { return [UInt8(ascii: ".")] }
        while i > 0 && path[i - 1] == slash { i -= 1 }
        return i == 0 ? [slash] : Array(path[0..<i])
    }
}

extension OSPath {
    /// `path + x`: a string (or OSPath) appends its components, a list appends each element;
    /// nil when `other` is not something a path can be extended with.
    public func adding(_ other: Value) -> Value? {
        switch other.reduced() {
        case .string, .bytes:
            return .object(appending(text: other.reduced().byteValue ?? []))
        case .object(let o as OSPath):
            return .object(appending(o.components))
        case .list(let items):
            var parts: [[UInt8]] = []
            for item in items {
                guard let bytes = item.reduced().byteValue else { return nil }
                parts.append(bytes)
            }
            return .object(appending(parts))
        default: return nil
        }
    }
}
