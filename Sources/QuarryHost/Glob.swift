import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `glob()`: walks the file system once for all glob expressions, as an NFA over path
/// components, reading each directory at most once and stat-ing nothing unless a row asks.
public enum GlobPlugin {
    public static let plugin = PluginDeclaration(
        name: "glob",
        summary: "Finds files matching glob expressions (*, ?, […], {a,b}, ** and **N); rows are lazy file infos.",
        arguments: [
            ArgumentSpec("globs", .stringList, required: true, "One or more glob expressions (a pathspec glob carries its own delegate)."),
            ArgumentSpec("root", .any, "Directory the globs are relative to (a path or a pathspec, e.g. inside a zip)."),
            ArgumentSpec("accessor", .string, "How to reach the files: file (default), zip, ext4, file_nocase, … (see accessors)."),
            ArgumentSpec("nosymlink", .bool, "Do not follow symbolic links to directories."),
            ArgumentSpec("one_filesystem", .bool, "Do not descend into other file systems."),
            ArgumentSpec("recursion_callback", .lambda, "Lambda given a directory row; descend only when it is true."),
        ],
        columns: [
            ColumnSpec("OSPath", .object, "The path (indexable; Components, Basename, Dirname)."),
            ColumnSpec("Name", .string, "The file name."),
            ColumnSpec("FullPath", .string, "The path as a string."),
            ColumnSpec("Size", .int, "Size in bytes."),
            ColumnSpec("Mode", .object, "The mode; .String is like -rw-r--r--."),
            ColumnSpec("IsDir", .bool, "A directory (or a link to one)."),
            ColumnSpec("IsLink", .bool, "A symbolic link."),
            ColumnSpec("Mtime", .timestamp, "Modification time."),
            ColumnSpec("Atime", .timestamp, "Access time."),
            ColumnSpec("Ctime", .timestamp, "Inode change time."),
            ColumnSpec("Btime", .timestamp, "Birth time (statx), else Ctime."),
            ColumnSpec("Uid", .int, "Owner user id."),
            ColumnSpec("Gid", .int, "Owner group id."),
            ColumnSpec("Data", .dict, "Link target, device numbers, file system type."),
            ColumnSpec("Globs", .list, "The glob expressions this file matched."),
        ],
        examples: [
            "SELECT FullPath, Size FROM glob(globs='/etc/host*')",
            "SELECT OSPath.Basename AS Name FROM glob(globs='*', root='/etc') LIMIT 3",
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor() else { return ArrayCursor([]) }
        guard accessor.canList else {
            ctx.context.logOnce(.error, "glob: the \(accessor.name) accessor cannot list directories")
            return ArrayCursor([])
        }
        let rootPath = ctx.raw("root").flatMap { PathValues.path($0, for: accessor) }
        let globValues = ctx.value("globs").map { $0.listElements ?? [$0] } ?? []
        let delegated = globValues.contains { PathValues.path($0, for: accessor)?.delegate != nil }
        let callback = ctx.has("recursion_callback") ? ctx.lambda("recursion_callback") : nil
        if let file = accessor as? FileAccessor, file.isPlain, rootPath?.delegate == nil, !delegated {
            return fileGlob(ctx, root: rootPath.map(FileAccessor.logical) ?? [], globs: globArguments(ctx), callback: callback)
        }
        return accessorGlob(ctx, accessor: accessor, root: rootPath, globs: globValues, callback: callback)
    }

    /// The live file system: GlobWalker (getdents, lazy stat, openat) on a background thread.
    static func fileGlob(_ ctx: CallContext, root: [UInt8], globs: [[UInt8]], callback: Lambda?) -> RowCursor {
        var rootArgument = root
        var patterns: [GlobPattern] = []
        if !rootArgument.isEmpty && rootArgument.first != PathBytes.slash { rootArgument.insert(PathBytes.slash, at: 0) }
        for glob in globs {
            let absolute = rootArgument.isEmpty
                ? (glob.first == PathBytes.slash ? glob : [PathBytes.slash] + glob)
                : PathBytes.join(rootArgument, glob)
            let source = String(decoding: glob, as: UTF8.self)
            for expanded in GlobPattern.expandBraces(absolute) {
                patterns.append(GlobPattern(expanded, source: source))
            }
        }
        let walker = GlobWalker(
            patterns: patterns, root: HostFS.root(ctx.context), ctx: ctx,
            followLinks: !(ctx.bool("nosymlink") ?? false), oneFileSystem: ctx.bool("one_filesystem") ?? false,
            callback: callback)
        if walker.callback != nil { return GeneratorCursor { try walker.next() } }
        return BackgroundGlobCursor(walker)
    }

    /// Any other accessor: globs relative to the root (or to the delegate of a glob given as a
    /// pathspec), walked through Accessor.list; one walk per distinct root.
    static func accessorGlob(_ ctx: CallContext, accessor: any Accessor, root: OSPath?, globs: [Value], callback: Lambda?) -> RowCursor {
        let caseInsensitive = (accessor as? FileAccessor)?.flavour == .caseInsensitive || accessor.name.hasSuffix("_nocase")
        var walks: [(root: OSPath, patterns: [GlobPattern])] = []
        func add(_ text: [UInt8], source: String, root: OSPath) {
            let folded = caseInsensitive ? text.lowercasedASCII : text
            let patterns = GlobPattern.expandBraces(folded).map { GlobPattern($0, source: source) }
            if let i = walks.firstIndex(where: { $0.root.text == root.text }) {
                walks[i].patterns += patterns
            } else {
                walks.append((root, patterns))
            }
        }
        let defaultRoot = root ?? OSPath(components: [], type: accessor.pathType)
        for value in globs {
            if let spec = PathValues.path(value, for: accessor), spec.delegate != nil {
                let text = OSPath.render(spec.components, type: .generic)
                add(text, source: String(decoding: text, as: UTF8.self), root: OSPath(components: [], type: spec.type, delegate: spec.delegate))
            } else if let text = value.reduced().byteValue ?? PathValues.path(value, for: accessor)?.path, !text.isEmpty {
                add(text, source: String(decoding: text, as: UTF8.self), root: defaultRoot)
            }
        }
        var index = 0
        var walker: AccessorGlobWalker?
        return GeneratorCursor {
            while true {
                if let current = walker, let row = try current.next() { return row }
                guard index < walks.count else { return nil }
                let walk = walks[index]
                index += 1
                walker = AccessorGlobWalker(patterns: walk.patterns, root: walk.root, accessor: accessor, ctx: ctx,
                                            caseInsensitive: caseInsensitive, callback: callback)
            }
        }
    }

    /// The globs argument as byte strings (a string, a list, or path objects).
    static func globArguments(_ ctx: CallContext) -> [[UInt8]] {
        guard let value = ctx.value("globs") else { return [] }
        switch value {
        case .list, .query:
            return (value.listElements ?? []).compactMap { HostFS.pathBytes($0) }.filter { !$0.isEmpty }
        default:
            return HostFS.pathBytes(value).map { [$0] } ?? []
        }
    }
}

/// glob() rows produced by a walker on a background thread (directory reads and the engine's
/// projection/output overlap on two cores). Closing the cursor stops the walker.
final class BackgroundGlobCursor: RowCursor {
    private let queue = BoundedQueue<[Value]>(capacity: 32)
    private var batch: [Value] = []
    private var position = 0
    private let cancellation: CancellationFlag

    init(_ walker: GlobWalker) {
        cancellation = walker.context.cancellation
        let queue = self.queue
        let box = WalkerBox(walker)
        let thread = Thread {
            box.walker.walkAll { queue.put($0) }
            queue.finish()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func next() throws -> Value? {
        while position >= batch.count {
            guard let more = queue.take() else {
                try cancellation.check()
                return nil
            }
            batch = more
            position = 0
        }
        defer { position += 1 }
        return batch[position]
    }

    func close() { queue.close() }

    deinit { queue.close() }
}

/// Hands a walker to exactly one background thread; nothing else touches it afterwards.
private final class WalkerBox: @unchecked Sendable {
    let walker: GlobWalker
    init(_ walker: GlobWalker) { self.walker = walker }
}
