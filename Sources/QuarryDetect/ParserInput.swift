import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Random-access bytes a parser reads: a file opened through an accessor, or a string held in
/// memory. Parsers never assume the whole input fits in memory; they ask for ranges.
public protocol ParserSource: AnyObject {
    /// Size in bytes, when known.
    var size: Int64? { get }
    /// Up to `count` bytes at `offset` (fewer at the end, none past it or on error).
    func read(at offset: Int64, count: Int) -> [UInt8]
}

extension ParserSource {
    /// The whole input (at most `limit` bytes), for formats that are parsed in one piece.
    public func readAll(limit: Int) -> [UInt8] {
        var out: [UInt8] = []
        var position: Int64 = 0
        while out.count < limit {
            let piece = read(at: position, count: min(1 << 20, limit - out.count))
            if piece.isEmpty { break }
            out.append(contentsOf: piece)
            position += Int64(piece.count)
        }
        return out
    }
}

/// Bytes in memory as a source (the `data` accessor, decompressed members).
public final class MemorySource: ParserSource {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: Int64? { Int64(bytes.count) }
    public func read(at offset: Int64, count: Int) -> [UInt8] {
        guard offset >= 0, offset < Int64(bytes.count), count > 0 else { return [] }
        let start = Int(offset)
        return Array(bytes[start..<min(bytes.count, start + count)])
    }
}

/// A regular file read with pread through a small page cache (binary profiles read many small
/// fields close together). Closed on deinit.
public final class FileSource: ParserSource {
    private let fd: Int32
    public let size: Int64?
    private static let pageSize = 4096
    private static let maxPages = 64
    private var pages: [Int64: [UInt8]] = [:]
    private var order: [Int64] = []

    init(fd: Int32, size: Int64) {
        self.fd = fd
        self.size = size
    }

    deinit { close(fd) }

    public func read(at offset: Int64, count: Int) -> [UInt8] {
        guard offset >= 0, count > 0 else { return [] }
        // Large reads bypass the cache.
        if count > FileSource.pageSize * 4 { return pread(offset, count) }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var position = offset
        while out.count < count {
            let pageStart = position - position % Int64(FileSource.pageSize)
            let page = self.page(pageStart)
            let within = Int(position - pageStart)
            guard within < page.count else { break }
            let take = min(page.count - within, count - out.count)
            out.append(contentsOf: page[within..<within + take])
            position += Int64(take)
            if page.count < FileSource.pageSize { break }
        }
        return out
    }

    private func page(_ start: Int64) -> [UInt8] {
        if let cached = pages[start] { return cached }
        let bytes = pread(start, FileSource.pageSize)
        pages[start] = bytes
        order.append(start)
        if order.count > FileSource.maxPages { pages[order.removeFirst()] = nil }
        return bytes
    }

    private func pread(_ offset: Int64, _ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = out.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return Glibc.pread(fd, base + filled, count - filled, off_t(offset) + off_t(filled))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            filled += n
        }
        out.removeSubrange(filled...)
        return out
    }
}

/// THE seam between parsers and the file system: every parser in this module gets its input
/// from `ParserInput.open` (a `filename`-style argument plus `accessor=`). Today it serves the
/// `data` accessor (the argument is the content) and the plain file system (`file`, `auto` or
/// none); when the accessor layer lands, only `open(path:accessor:ctx:)` changes to route
/// through it.
public enum ParserInput {
    /// The input named by argument `argument` of the call, opened through the call's accessor.
    /// Nil, with a logged warning, when it cannot be opened.
    public static func open(_ ctx: CallContext, _ argument: String, accessor: String? = nil) -> (any ParserSource)? {
        guard let value = ctx.value(argument), !value.isNull else { return nil }
        return open(value, accessor: accessor ?? ctx.string("accessor"), ctx: ctx)
    }

    /// The inputs named by a list-or-single argument (plugins that take several files).
    public static func paths(_ ctx: CallContext, _ argument: String) -> [Value] {
        guard let value = ctx.value(argument) else { return [] }
        switch value {
        case .null: return []
        case .list, .query: return (value.listElements ?? []).map { $0.reduced() }.filter { !$0.isNull }
        default: return [value]
        }
    }

    /// One path value (string, bytes or OSPath object) opened through `accessor`.
    public static func open(_ value: Value, accessor: String?, ctx: CallContext) -> (any ParserSource)? {
        guard let path = pathBytes(value) else {
            ctx.context.logOnce(.warning, "\(ctx.name): the file argument must be a path or a string")
            return nil
        }
        switch accessor ?? "" {
        case "data":
            return MemorySource(path)
        case "", "file", "auto":
            return openFile(path, ctx: ctx)
        case let other:
            ctx.context.logOnce(.error, "\(ctx.name): accessor '\(other)' is not available to this parser")
            return nil
        }
    }

    /// A folder named by argument `argument` (LevelDB databases are folders of files).
    public static func folder(_ ctx: CallContext, _ argument: String) -> (any ParserFolder)? {
        guard let value = ctx.value(argument), let path = pathBytes(value) else { return nil }
        switch ctx.string("accessor") ?? "" {
        case "", "file", "auto":
            let display = String(decoding: path, as: UTF8.self)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: display, isDirectory: &isDirectory) else {
                ctx.context.logOnce(.warning, "\(ctx.name): \(display): no such file or folder")
                return nil
            }
            return FileFolder(path: display, isDirectory: isDirectory.boolValue, ctx: ctx)
        case let other:
            ctx.context.logOnce(.error, "\(ctx.name): accessor '\(other)' is not available to this parser")
            return nil
        }
    }

    /// A printable name for an input, for log messages.
    public static func describe(_ value: Value, accessor: String?) -> String {
        if accessor == "data" { return "<data>" }
        return pathBytes(value).map { String(decoding: $0, as: UTF8.self) } ?? "<none>"
    }

    static func pathBytes(_ value: Value) -> [UInt8]? {
        let value = value.reduced()
        if let bytes = value.byteValue { return bytes }
        if case .dict(let d) = value, let path = d["OSPath"] ?? d["FullPath"] { return path.byteValue }
        return nil
    }

    /// Opens a regular file (or block device) read-only; FIFOs, sockets and directories are refused.
    static func openFile(_ path: [UInt8], ctx: CallContext) -> (any ParserSource)? {
        let display = String(decoding: path, as: UTF8.self)
        guard !path.contains(0) else {
            ctx.context.logOnce(.warning, "\(ctx.name): \(display): path contains NUL")
            return nil
        }
        let fd = display.withCString { Glibc.open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        guard fd >= 0 else {
            ctx.context.logOnce(.warning, "\(ctx.name): \(display): \(String(cString: strerror(errno)))")
            return nil
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            return nil
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFBLK else {
            close(fd)
            ctx.context.logOnce(.warning, "\(ctx.name): \(display): not a regular file")
            return nil
        }
        var size = Int64(st.st_size)
        if kind == S_IFBLK {
            let end = lseek(fd, 0, SEEK_END)
            size = end > 0 ? Int64(end) : 0
        }
        return FileSource(fd: fd, size: size)
    }
}

/// A folder of files a parser reads by name (or one file standing alone).
public protocol ParserFolder: AnyObject {
    /// The file names in the folder (just the file's own name when it is a single file).
    func names() -> [String]
    func open(_ name: String) -> (any ParserSource)?
}

/// A folder (or single file) on the file system.
final class FileFolder: ParserFolder {
    let path: String
    let isDirectory: Bool
    let ctx: CallContext

    init(path: String, isDirectory: Bool, ctx: CallContext) {
        self.path = path
        self.isDirectory = isDirectory
        self.ctx = ctx
    }

    func names() -> [String] {
        guard isDirectory else { return [(path as NSString).lastPathComponent] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    func open(_ name: String) -> (any ParserSource)? {
        guard !name.contains("/"), name != "..", name != "." else { return nil }
        let full = isDirectory ? path + "/" + name : path
        return ParserInput.openFile(Array(full.utf8), ctx: ctx)
    }
}
