/// Accessors that need no operating system: `data` (the path is the content), `scope` (a
/// variable holds the content), `offset` (a delegate from an offset on), `sparse` (a
/// delegate with only some ranges readable) and `ranged` (a sparse file rebuilt from the
/// packed ranges an upload stored and their index).
public enum CoreAccessors {
    public static var all: [any Accessor] { [DataAccessor(), ScopeAccessor(), OffsetAccessor(), SparseAccessor(), RangedAccessor(), PipeAccessor(), OverlayAccessor()] }
}

/// `data`: the path text itself is the file's content, so every file plugin also reads strings.
public struct DataAccessor: Accessor {
    public init() {}
    public var name: String { "data" }
    public var summary: String { "The path is the data: reads the argument itself as the file's content." }
    public var canList: Bool { false }
    public func parse(_ text: [UInt8]) -> OSPath { OSPath(text) }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        MemoryFile(path.raw ?? path.path)
    }
}

/// `scope`: the path names a variable (dots reach members: `String.Data`) whose value is the
/// content, so binary data need not travel through a path string (nor into logs).
public struct ScopeAccessor: Accessor {
    public init() {}
    public var name: String { "scope" }
    public var summary: String { "The path names a scope variable whose value is the file's content." }
    public var canList: Bool { false }
    public func parse(_ text: [UInt8]) -> OSPath { OSPath(text) }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let name = String(decoding: path.raw ?? Array(path.components.joined(separator: [UInt8(ascii: ".")])), as: UTF8.self)
        guard let env = scope.env else { throw AccessorError.invalid("scope accessor: no scope to read '\(name)' from") }
        var parts = name.split(separator: ".").map(String.init)
        guard !parts.isEmpty, var value = env.lookup(parts.removeFirst())?.reduced() else {
            throw AccessorError.notFound("scope variable '\(name)'")
        }
        for part in parts { value = value.member(part).reduced() }
        guard let bytes = value.byteValue else {
            if case .null = value { throw AccessorError.notFound("scope variable '\(name)'") }
            return MemoryFile(Array(JSONWriter.string(value.materialized()).utf8))
        }
        return MemoryFile(bytes)
    }
}

/// `offset`: the delegate's bytes from an offset on (the path's first component), rebased to 0 —
/// a partition inside a disk image, a file carved from a larger one.
public struct OffsetAccessor: Accessor {
    public init() {}
    public var name: String { "offset" }
    public var summary: String { "Reads a delegate from an offset (the Path, e.g. /32256) on, rebased to 0." }
    public var canList: Bool { false }

    static func offset(_ path: OSPath) throws -> Int64 {
        guard let first = path.components.first, let offset = Int64(String(decoding: first, as: UTF8.self)), offset >= 0 else {
            throw AccessorError.invalid("offset accessor: the Path must be a byte offset such as /512")
        }
        return offset
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let offset = try OffsetAccessor.offset(path)
        return WindowFile(try scope.openDelegate(of: path), start: offset, length: nil)
    }
}

/// `sparse`: the delegate with only the listed ranges readable (the rest reads as zeros and is
/// left out of uploads); offsets stay the delegate's own. The Path is a JSON list of
/// `{"Offset": …, "Length": …}`.
public struct SparseAccessor: Accessor {
    public init() {}
    public var name: String { "sparse" }
    public var summary: String { "A delegate with only some ranges readable: Path is a list of {Offset, Length}." }
    public var canList: Bool { false }

    static func ranges(_ path: OSPath) throws -> [Range<Int64>] {
        var text = path.path
        while text.first == UInt8(ascii: "/") { text.removeFirst() }
        guard let value = try? JSONParser.parse(bytes: text), let items = value.listElements else {
            throw AccessorError.invalid("sparse accessor: the Path must be a JSON list of {Offset, Length}")
        }
        var ranges: [Range<Int64>] = []
        for item in items {
            guard let offset = item.member("Offset").intValue, let length = item.member("Length").intValue,
                  offset >= 0, length >= 0, offset <= Int64.max - length else {
                throw AccessorError.invalid("sparse accessor: bad range \(JSONWriter.string(item))")
            }
            if length > 0 { ranges.append(offset..<(offset + length)) }
        }
        return ranges.sorted { $0.lowerBound < $1.lowerBound }
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        SparseFile(try scope.openDelegate(of: path), ranges: try SparseAccessor.ranges(path))
    }
}

/// A file where only `ranges` hold data; reads elsewhere give zeros.
public final class SparseFile: ReadableFile {
    let base: any ReadableFile
    public let ranges: [Range<Int64>]?

    public init(_ base: any ReadableFile, ranges: [Range<Int64>]) {
        self.base = base
        self.ranges = ranges
    }

    public var size: Int64? { ranges?.last?.upperBound ?? 0 }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard let end = size, offset >= 0, offset < end, let start = buffer.baseAddress else { return 0 }
        let count = Int(min(Int64(buffer.count), end - offset))
        start.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        for range in ranges ?? [] where range.upperBound > offset && range.lowerBound < offset + Int64(count) {
            let from = max(range.lowerBound, offset)
            let to = min(range.upperBound, offset + Int64(count))
            let target = UnsafeMutableRawBufferPointer(start: start + Int(from - offset), count: Int(to - from))
            var filled = 0
            while filled < target.count {
                let n = try base.read(into: UnsafeMutableRawBufferPointer(rebasing: target[filled...]), at: from + Int64(filled))
                if n <= 0 { break }
                filled += n
            }
        }
        return count
    }

    public func close() { base.close() }
}

/// `ranged`: a sparse file rebuilt from a packed delegate (the data ranges stored one after
/// another, as a sparse upload stores them) and its index. The Path is the index as JSON: a list
/// of `{"file_offset", "original_offset", "file_length", "length"}` or `{"ranges": [...]}`.
public struct RangedAccessor: Accessor {
    public init() {}
    public var name: String { "ranged" }
    public var summary: String { "Rebuilds a sparse file from packed ranges (the delegate) and its index (the Path, JSON)." }
    public var canList: Bool { false }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        var text = path.path
        while text.first == UInt8(ascii: "/") { text.removeFirst() }
        return RangedFile(try scope.openDelegate(of: path), index: try RangedFile.index(text))
    }
}

/// A sparse file rebuilt from packed data: each run maps `original_offset` (in the rebuilt
/// file) to `file_offset` (in the packed file); between runs the file reads as zeros.
public final class RangedFile: ReadableFile {
    public struct Run: Sendable {
        public var fileOffset: Int64
        public var originalOffset: Int64
        public var length: Int64
    }

    let base: any ReadableFile
    let runs: [Run]

    public init(_ base: any ReadableFile, index: [Run]) {
        self.base = base
        self.runs = index.sorted { $0.originalOffset < $1.originalOffset }
    }

    /// Parses an index (a JSON list of runs, or an object with a "ranges" list).
    public static func index(_ json: [UInt8]) throws -> [Run] {
        guard let value = try? JSONParser.parse(bytes: json) else { throw AccessorError.invalid("ranged: the index is not JSON") }
        let items: [Value]
        if case .dict(let d) = value { items = d["ranges"]?.listElements ?? [] } else { items = value.listElements ?? [] }
        var runs: [Run] = []
        for item in items {
            guard let fileOffset = item.member("file_offset").intValue, let original = item.member("original_offset").intValue,
                  fileOffset >= 0, original >= 0 else {
                throw AccessorError.invalid("ranged: bad index entry \(JSONWriter.string(item))")
            }
            let length = item.member("file_length").intValue ?? item.member("length").intValue ?? 0
            guard length >= 0, original <= Int64.max - length, fileOffset <= Int64.max - length else {
                throw AccessorError.invalid("ranged: bad index entry \(JSONWriter.string(item))")
            }
            if length > 0 { runs.append(Run(fileOffset: fileOffset, originalOffset: original, length: length)) }
        }
        return runs
    }

    public var size: Int64? { runs.map { $0.originalOffset + $0.length }.max() ?? 0 }
    public var ranges: [Range<Int64>]? { runs.map { $0.originalOffset..<($0.originalOffset + $0.length) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard let end = size, offset >= 0, offset < end, let start = buffer.baseAddress else { return 0 }
        let count = Int(min(Int64(buffer.count), end - offset))
        start.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        for run in runs where run.originalOffset + run.length > offset && run.originalOffset < offset + Int64(count) {
            let from = max(run.originalOffset, offset)
            let to = min(run.originalOffset + run.length, offset + Int64(count))
            let target = UnsafeMutableRawBufferPointer(start: start + Int(from - offset), count: Int(to - from))
            var filled = 0
            while filled < target.count {
                let n = try base.read(into: UnsafeMutableRawBufferPointer(rebasing: target[filled...]),
                                      at: run.fileOffset + (from - run.originalOffset) + Int64(filled))
                if n <= 0 { break }
                filled += n
            }
        }
        return count
    }

    public func close() { base.close() }
}
