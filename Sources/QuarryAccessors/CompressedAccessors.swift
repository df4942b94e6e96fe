import VQL

/// `gzip` and `bzip2`: the decompressed content of a compressed file. The path is the
/// compressed file itself (read with the `auto` accessor) or a pathspec whose delegate holds it
/// (`pathspec(DelegateAccessor="scope", DelegatePath="Data")` decompresses a variable).
/// Streams are decompressed as they are read; small ones are kept for random access, larger
/// ones restart on a backward seek, so memory stays bounded.
public struct CompressedAccessor: Accessor {
    public enum Format: Sendable { case gzip, bzip2 }

    public let format: Format
    public init(_ format: Format) { self.format = format }

    public var name: String { format == .gzip ? "gzip" : "bzip2" }
    public var summary: String {
        format == .gzip ? "The decompressed content of a gzip file (the path, or a pathspec's delegate)."
            : "The decompressed content of a bzip2 file (the path, or a pathspec's delegate)."
    }
    public var canList: Bool { false }

    /// The compressed file: the delegate, or the path read with `auto`.
    func compressed(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        if path.delegate != nil { return try scope.openDelegate(of: path) }
        let inner = try scope.deeper()
        let auto = try inner.accessor("auto")
        return try auto.open(auto.parse(path.raw ?? path.path), in: inner)
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let source = try compressed(path, in: scope)
        switch format {
        case .gzip: return StreamFile(limit: nil) { try InflateDecoder(source, format: .gzip) }
        case .bzip2: return StreamFile(limit: nil) { try Bzip2Decoder(source) }
        }
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let source = try compressed(path, in: scope)
        defer { source.close() }
        return FileInfo(path: path, size: source.size ?? 0, mode: FileInfo.regularMode)
    }
}
