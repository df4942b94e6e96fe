import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Reading files through accessors: `stat()` (plugin and function) and `read_file()` (plugin
/// and function). The file accessor keeps its lazy FileRow (no lstat until a column needs
/// it); other accessors give FileInfoRow rows with the same columns.
public enum FileFunctions {
    public static var plugins: [PluginDeclaration] { [stat, readFilePlugin] }
    public static var functions: [FunctionDeclaration] { [readFile, statFunction] }

    /// The default bound on reads of one file (the read_file function, devices).
    static let defaultLength = 10 << 20

    static func display(_ path: [UInt8]) -> String { String(decoding: path, as: UTF8.self) }

    /// The accessor argument's doc line, shared by every path-taking declaration.
    public static let accessorDoc = "How to reach the file: file (default), data, scope, zip, gzip, ext4, process, … (see accessors)."

    /// stat() as a function (Velociraptor artifacts use both forms): the file-info row of one file, or NULL.
    public static let statFunction = FunctionDeclaration(
        name: "stat", summary: "The file-info row (as glob's) of one file, or NULL when it does not exist.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The path (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, accessorDoc),
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
            ArgumentSpec("filename", .stringList, required: true, "One or more paths (strings, OSPaths or pathspecs)."),
            ArgumentSpec("accessor", .string, accessorDoc),
        ],
        columns: GlobPlugin.plugin.columns,
        examples: ["SELECT FullPath, Size, Mode.String AS Mode FROM stat(filename='/etc/passwd')"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor() else { return ArrayCursor([]) }
        var rows: [Value] = []
        let paths = ctx.paths("filename", for: accessor)
        if let file = accessor as? FileAccessor, file.isPlain {
            let root = HostFS.root(ctx.context)
            for path in paths where path.delegate == nil {
                let logical = FileAccessor.logical(path)
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
        for path in paths {
            do {
                rows.append(.object(FileInfoRow(try accessor.stat(path, follow: false, in: ctx.accessorScope))))
            } catch {
                ctx.logFailure(path, error)
            }
        }
        return ArrayCursor(rows)
    }

    public static let readFile = FunctionDeclaration(
        name: "read_file", summary: "Reads a file's content (up to `length` bytes from `offset`) through any accessor; /proc files included.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The file (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, accessorDoc),
            ArgumentSpec("offset", .int, "Start here."),
            ArgumentSpec("length", .int, "Read at most this many bytes (default 10 MiB)."),
        ],
        returns: .string,
        examples: [
            "SELECT read_file(filename='/proc/self/comm') AS Comm FROM scope()",
            "SELECT read_file(filename='Hello world', accessor='data', offset=6) AS World FROM scope()",
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("filename", for: accessor),
              let file = ctx.open(path, with: accessor) else { return .null }
        defer { file.close() }
        let length = Int(clamping: max(0, ctx.int("length") ?? Int64(defaultLength)))
        do {
            return .string(bytes: try file.readAll(from: max(0, ctx.int("offset") ?? 0), limit: length))
        } catch {
            ctx.logFailure(path, error)
            return .null
        }
    }

    public static let readFilePlugin = PluginDeclaration(
        name: "read_file", summary: "Reads files in chunks through any accessor: one row per chunk (Data, Offset, Filename).",
        arguments: [
            ArgumentSpec("filenames", .stringList, required: true, "The files (strings, OSPaths or pathspecs)."),
            ArgumentSpec("accessor", .string, accessorDoc),
            ArgumentSpec("chunk", .int, "Bytes per row (default 1 MiB)."),
            ArgumentSpec("max_length", .int, "Read at most this many bytes per file (default: all of a file, 10 MiB of a device)."),
        ],
        columns: [
            ColumnSpec("Data", .string, "The chunk's bytes."), ColumnSpec("Offset", .int, "Where the chunk starts."),
            ColumnSpec("Filename", .object, "The file read (its OSPath)."),
        ],
        examples: ["SELECT Data FROM read_file(filenames='/proc/self/status', chunk=100) LIMIT 1"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor() else { return ArrayCursor([]) }
        let files = ctx.paths("filenames", for: accessor)
        let chunk = Int(clamping: max(1, ctx.int("chunk") ?? (1 << 20)))
        let maxLength = ctx.int("max_length").map { max(0, $0) }
        let schema = Schema(["Data", "Offset", "Filename"], caseInsensitiveFallback: true)
        var index = 0
        var reader: ChunkReader?
        return GeneratorCursor(onClose: { reader?.close() }) {
            while true {
                try ctx.checkCancelled()
                if let current = reader {
                    if let (offset, data) = current.next(chunk) {
                        return .dict(Dict(schema: schema, values: [.string(bytes: data), .int(offset), .object(current.path)]))
                    }
                    current.close()
                    reader = nil
                }
                guard index < files.count else { return nil }
                let path = files[index]
                index += 1
                reader = ChunkReader.open(path, accessor: accessor, maxLength: maxLength, ctx: ctx)
            }
        }
    }
}

/// An open file read in chunks from the start (the read_file and parse_lines plugins); to its
/// end, or max_length, or — for devices that may never end — the default bound.
final class ChunkReader {
    private(set) var path: OSPath
    private var file: (any ReadableFile)?
    private var offset: Int64 = 0
    private let limit: Int64
    private var failed = false
    private let ctx: CallContext

    private init(path: OSPath, file: any ReadableFile, limit: Int64, ctx: CallContext) {
        self.path = path
        self.file = file
        self.limit = limit
        self.ctx = ctx
    }

    /// Opens the next file of a plugin's list; a file that cannot be read is logged once
    /// (naming the plugin) and skipped: nil.
    static func open(_ path: OSPath, accessor: any Accessor, maxLength: Int64?, ctx: CallContext) -> ChunkReader? {
        guard let file = ctx.open(path, with: accessor) else { return nil }
        let limit = maxLength ?? (file.mayNotEnd ? Int64(FileFunctions.defaultLength) : Int64.max)
        return ChunkReader(path: path, file: file, limit: limit, ctx: ctx)
    }

    func next(_ size: Int) -> (Int64, [UInt8])? {
        guard let file, offset < limit else { return nil }
        let want = Int(min(Int64(size), limit - offset))
        let data: [UInt8]
        do {
            data = try file.read(at: offset, count: want)
        } catch {
            ctx.logFailure(path, error)
            return nil
        }
        guard !data.isEmpty else { return nil }
        let start = offset
        offset += Int64(data.count)
        return (start, data)
    }

    /// The first `count` bytes, without moving on.
    func peek(_ count: Int) -> [UInt8]? {
        guard let file, offset == 0 else { return nil }
        return try? file.read(at: 0, count: count)
    }

    /// The same reader reporting `path` as its file name.
    func named(_ path: OSPath) -> ChunkReader {
        self.path = path
        return self
    }

    func close() {
        file?.close()
        file = nil
    }

    deinit { close() }
}
