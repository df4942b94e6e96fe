/// Accessors that need no operating system: `data` (the path is the content), `scope` (a
/// variable holds the content), `offset` (a delegate from an offset on) and `sparse` (a
/// delegate with only some ranges readable).
public enum CoreAccessors {
    public static var all: [any Accessor] { [DataAccessor(), ScopeAccessor(), OffsetAccessor(), SparseAccessor()] }
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
