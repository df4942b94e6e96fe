import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Reading files and working with paths: `stat()`, `read_file()` (plugin and function),
/// `basename()`, `dirname()`, `path_join()` and `pathspec()`. All reads go through `HostFS`, so FIFOs and sockets are
/// refused and devices are only read up to a bound.
public enum FileFunctions {
    public static var plugins: [PluginDeclaration] { [stat, readFilePlugin] }
    public static var functions: [FunctionDeclaration] { [readFile, basename, dirname, pathJoin, pathspec, statFunction] }

    /// The default bound on reads of one file (files that report size 0, devices).
    static let defaultLength = 10 << 20

    /// A list-or-string argument of paths, byte-exact.
    static func paths(_ ctx: CallContext, _ name: String) -> [[UInt8]] {
        guard let value = ctx.value(name) else { return [] }
        switch value {
        case .list, .query: return (value.listElements ?? []).compactMap { HostFS.pathBytes($0) }.filter { !$0.isEmpty }
        default: return HostFS.pathBytes(value).map { [$0] } ?? []
        }
    }

    static func display(_ path: [UInt8]) -> String { String(decoding: path, as: UTF8.self) }

    static func checkAccessor(_ ctx: CallContext) -> Bool {
        let accessor = ctx.string("accessor") ?? "file"
        if ["file", "auto", ""].contains(accessor) { return true }
        ctx.context.logOnce(.error, "\(ctx.name): accessor '\(accessor)' is not supported")
        return false
    }

    /// stat() as a function (Velociraptor artifacts use both forms): the file-info row of one file, or NULL.
    public static let statFunction = FunctionDeclaration(
        name: "stat", summary: "The file-info row (as glob's) of one file, or NULL when it does not exist.",
        arguments: [
            ArgumentSpec("filename", .string, required: true, "The path."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
        ],
        returns: .object, examples: ["SELECT stat(filename='/etc/passwd').Size > 0 AS HasPasswd FROM scope()"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let cursor = try? stat.open(ctx) else { return .null }
        defer { cursor.close() }
        return ((try? cursor.next()) ?? nil) ?? .null
    }

    public static let stat = PluginDeclaration(
        name: "stat", summary: "One file-info row (as glob's) per file name; missing files give no row.",
        arguments: [
            ArgumentSpec("filename", .stringList, required: true, "One or more paths."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
        ],
        columns: GlobPlugin.plugin.columns,
        examples: ["SELECT FullPath, Size, Mode.String AS Mode FROM stat(filename='/etc/passwd')"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard checkAccessor(ctx) else { return ArrayCursor([]) }
        let root = HostFS.root(ctx.context)
        var rows: [Value] = []
        for logical in paths(ctx, "filename") {
            let host = HostFS.resolve(logical, root: root, followLast: false)
            switch HostFS.stat(host) {
            case .success(let st):
                rows.append(.object(FileRow(logical: logical, host: host, directoryType: GlobWalker.directoryType(st.kind),
                                            globs: [], stat: st, root: root, context: ctx.context)))
            case .failure(let e):
                ctx.context.logOnce(.warning, "stat: \(display(logical)): \(e)")
            }
        }
        return ArrayCursor(rows)
    }

    public static let readFile = FunctionDeclaration(
        name: "read_file", summary: "Reads a file's content (up to `length` bytes from `offset`); /proc files included.",
        arguments: [
            ArgumentSpec("filename", .string, required: true, "The file."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
            ArgumentSpec("offset", .int, "Start here."),
            ArgumentSpec("length", .int, "Read at most this many bytes (default 10 MiB)."),
        ],
        returns: .string,
        examples: ["SELECT read_file(filename='/proc/self/comm') AS Comm FROM scope()"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard checkAccessor(ctx), let logical = ctx.raw("filename").flatMap({ HostFS.pathBytes($0) }) else { return .null }
        let length = Int(clamping: max(0, ctx.int("length") ?? Int64(defaultLength)))
        let path = HostFS.resolve(logical, root: HostFS.root(ctx.context))
        switch HostFS.read(path, offset: max(0, ctx.int("offset") ?? 0), length: length) {
        case .success(let bytes): return .string(bytes: bytes)
        case .failure(let e):
            ctx.context.logOnce(.warning, "read_file: \(display(logical)): \(e)")
            return .null
        }
    }

    public static let readFilePlugin = PluginDeclaration(
        name: "read_file", summary: "Reads files in chunks: one row per chunk (Data, Offset, Filename).",
        arguments: [
            ArgumentSpec("filenames", .stringList, required: true, "The files."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
            ArgumentSpec("chunk", .int, "Bytes per row (default 1 MiB)."),
            ArgumentSpec("max_length", .int, "Read at most this many bytes per file (default: all of a regular file, 10 MiB of anything else)."),
        ],
        columns: [
            ColumnSpec("Data", .string, "The chunk's bytes."), ColumnSpec("Offset", .int, "Where the chunk starts."),
            ColumnSpec("Filename", .string, "The file read."),
        ],
        examples: ["SELECT Data FROM read_file(filenames='/proc/self/status', chunk=100) LIMIT 1"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard checkAccessor(ctx) else { return ArrayCursor([]) }
        let files = paths(ctx, "filenames")
        let chunk = Int(clamping: max(1, ctx.int("chunk") ?? (1 << 20)))
        let maxLength = ctx.int("max_length").map { max(0, $0) }
        let root = HostFS.root(ctx.context)
        let schema = Schema(["Data", "Offset", "Filename"], caseInsensitiveFallback: true)
        var index = 0
        var reader: ChunkReader?
        return GeneratorCursor(onClose: { reader?.close() }) {
            while true {
                try ctx.checkCancelled()
                if let current = reader {
                    if let (offset, data) = current.next(chunk) {
                        return .dict(Dict(schema: schema, values: [.string(bytes: data), .int(offset), .string(bytes: current.logical)]))
                    }
                    current.close()
                    reader = nil
                }
                guard index < files.count else { return nil }
                let logical = files[index]
                index += 1
                reader = ChunkReader.open(logical: logical, root: root, maxLength: maxLength, plugin: "read_file", context: ctx.context)
            }
        }
    }

    public static let basename = FunctionDeclaration(
        name: "basename", summary: "The last component of a path.",
        arguments: [ArgumentSpec("path", .string, required: true, "The path."), ArgumentSpec("sep", .string, "Separator (default /).")],
        returns: .string,
        examples: ["SELECT basename(path='/etc/passwd') AS Name FROM scope()"]
    ) { ctx in
        guard let path = ctx.raw("path").flatMap({ HostFS.pathBytes($0) }) else { return .null }
        return .string(bytes: PathBytes.basename(normalizeSeparator(path, ctx.string("sep"))))
    }

    public static let dirname = FunctionDeclaration(
        name: "dirname", summary: "A path without its last component.",
        arguments: [ArgumentSpec("path", .string, required: true, "The path."), ArgumentSpec("sep", .string, "Separator (default /).")],
        returns: .string,
        examples: ["SELECT dirname(path='/etc/passwd') AS Dir FROM scope()"]
    ) { ctx in
        guard let path = ctx.raw("path").flatMap({ HostFS.pathBytes($0) }) else { return .null }
        return .string(bytes: PathBytes.dirname(normalizeSeparator(path, ctx.string("sep"))))
    }

    static func normalizeSeparator(_ path: [UInt8], _ sep: String?) -> [UInt8] {
        guard let sep, sep != "/", let byte = sep.utf8.first, sep.utf8.count == 1 else { return path }
        return path.map { $0 == byte ? PathBytes.slash : $0 }
    }

    public static let pathJoin = FunctionDeclaration(
        name: "path_join", summary: "Joins path components with a separator (default /).",
        arguments: [
            ArgumentSpec("components", .stringList, required: true, "The components."),
            ArgumentSpec("sep", .string, "Separator (default /)."),
        ],
        returns: .string,
        examples: ["SELECT path_join(components=['etc', 'passwd']) AS Path FROM scope()"]
    ) { ctx in
        let sep = Array((ctx.string("sep") ?? "/").utf8)
        var out: [UInt8] = []
        for component in paths(ctx, "components") {
            var part = component[...]
            while part.first.map({ sep.contains($0) }) ?? false { part = part.dropFirst() }
            while part.last.map({ sep.contains($0) }) ?? false { part = part.dropLast() }
            if part.isEmpty { continue }
            out.append(contentsOf: sep)
            out.append(contentsOf: part)
        }
        return .string(bytes: out.isEmpty ? sep : out)
    }

    public static let pathspec = FunctionDeclaration(
        name: "pathspec", summary: "Parses a path (or a JSON path spec) into Path, Components, DelegateAccessor, DelegatePath.",
        arguments: [
            ArgumentSpec("parse", .string, "The path or JSON path spec."),
            ArgumentSpec("Path", .string, "Build from this path instead."),
            ArgumentSpec("DelegateAccessor", .string, "The delegate accessor."),
            ArgumentSpec("DelegatePath", .string, "The delegate path."),
        ],
        returns: .dict,
        examples: ["SELECT pathspec(parse='/etc/passwd').Components AS C FROM scope()"]
    ) { ctx in
        var path = ctx.string("parse") ?? ctx.string("Path") ?? ""
        var accessor = ctx.string("DelegateAccessor") ?? ""
        var delegate = ctx.string("DelegatePath") ?? ""
        if path.hasPrefix("{"), let parsed = try? JSONParser.parse(path), case .dict(let d) = parsed {
            accessor = d["DelegateAccessor"]?.stringValue ?? accessor
            delegate = d["DelegatePath"]?.stringValue ?? delegate
            path = d["Path"]?.stringValue ?? ""
        }
        let components = path.split(separator: "/").map { Value.string(String($0)) }
        return .dict(Dict([
            ("DelegateAccessor", .string(accessor)), ("DelegatePath", .string(delegate)),
            ("Path", .string(path)), ("Components", .list(components)),
        ]))
    }
}

/// An open file read in chunks by the read_file and parse_lines plugins; regular files to EOF
/// (or max_length), anything else bounded by the default length.
final class ChunkReader {
    let logical: [UInt8]
    private var fd: Int32
    private var offset: Int64 = 0
    private let limit: Int64

    private init(logical: [UInt8], fd: Int32, limit: Int64) {
        self.logical = logical
        self.fd = fd
        self.limit = limit
    }

    static func open(logical: [UInt8], host: [UInt8], maxLength: Int64?) -> Result<ChunkReader, ReadError> {
        switch HostFS.openForReading(host, allowDevices: true) {
        case .failure(let e): return .failure(e)
        case .success(let (fd, st)):
            let limit = maxLength ?? (st.kind == .regular ? Int64.max : Int64(FileFunctions.defaultLength))
            return .success(ChunkReader(logical: logical, fd: fd, limit: limit))
        }
    }

    /// Opens the next file of a plugin's list under the root remap; a file that cannot be read is
    /// logged once (naming the plugin) and skipped: nil.
    static func open(logical: [UInt8], root: [UInt8], maxLength: Int64?, plugin: String, context: QueryContext) -> ChunkReader? {
        switch open(logical: logical, host: HostFS.resolve(logical, root: root), maxLength: maxLength) {
        case .success(let reader): return reader
        case .failure(let error):
            context.logOnce(.warning, "\(plugin): \(FileFunctions.display(logical)): \(error)")
            return nil
        }
    }

    func next(_ size: Int) -> (Int64, [UInt8])? {
        guard fd >= 0, offset < limit else { return nil }
        let want = Int(min(Int64(size), limit - offset))
        var buffer = [UInt8](repeating: 0, count: want)
        var n = 0
        while true {
            n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            break
        }
        guard n > 0 else { return nil }
        let start = offset
        offset += Int64(n)
        return (start, Array(buffer[0..<n]))
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}
