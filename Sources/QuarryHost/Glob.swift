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
            ArgumentSpec("globs", .stringList, required: true, "One or more glob expressions."),
            ArgumentSpec("root", .string, "Directory the globs are relative to."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
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
        let accessor = ctx.string("accessor") ?? "file"
        guard ["file", "auto", ""].contains(accessor) else {
            ctx.log(.error, "glob: accessor '\(accessor)' is not supported")
            return ArrayCursor([])
        }
        var rootArgument = ctx.raw("root").flatMap { HostFS.pathBytes($0) } ?? []
        let globs = globArguments(ctx)
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
            callback: ctx.has("recursion_callback") ? ctx.lambda("recursion_callback") : nil)
        if walker.callback != nil { return GeneratorCursor { try walker.next() } }
        return BackgroundGlobCursor(walker)
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
