import VQL

/// `collector`: the files inside a collection container (Quarry's or Velociraptor's offline
/// collector zip) as a directory tree. It knows what the zip accessor does not: a
/// password-protected collection keeps its content in an encrypted `data.zip` (opened with
/// ZIP_PASSWORDS), and a sparse upload is stored packed beside a `.idx` index, which this
/// accessor expands back to the original layout (zeros in the gaps). Everything is read through
/// the session's `zip` accessor, so the same bounds and checks apply.
///
/// `collector_sparse` is the same without the expansion: a sparse upload reads as the packed data
/// that was uploaded (what an analyst wants when re-exporting it, not re-inflating it).
public struct CollectorAccessor: Accessor {
    /// Whether sparse uploads are expanded to their original layout (`collector`) or not (`collector_sparse`).
    public let expandsSparse: Bool
    public init(expandsSparse: Bool = true) { self.expandsSparse = expandsSparse }
    public var name: String { expandsSparse ? "collector" : "collector_sparse" }
    public var summary: String {
        expandsSparse
            ? "Files inside a collection container (encrypted data.zip opened, sparse uploads expanded)."
            : "Files inside a collection container as stored (encrypted data.zip opened, sparse uploads left packed)."
    }

    /// The zip accessor and the delegate holding the collection's files (the container, or its data.zip).
    func content(_ path: OSPath, in scope: AccessorScope) throws -> (any Accessor, PathDelegate) {
        let zip = try scope.accessor("zip")
        let container: PathDelegate
        if let delegate = path.delegate {
            container = delegate
        } else {
            throw AccessorError.invalid("collector accessor: give the container as a pathspec delegate (DelegatePath=collection.zip)")
        }
        let root = OSPath(components: [], type: .generic, delegate: container)
        let dataZip = root.appending([Array("data.zip".utf8)])
        let metadata = root.appending([Array("metadata.json".utf8)])
        if (try? zip.stat(dataZip, follow: true, in: scope)) != nil {
            if let file = try? zip.open(metadata, in: scope) {
                defer { file.close() }
                let text = (try? file.readAll(limit: 1 << 20)) ?? []
                if String(decoding: text, as: UTF8.self).contains("\"X509\"") && scope.zipPasswordsAreEmpty {
                    throw AccessorError.unsupported("collector: this collection is encrypted to a certificate (X509); decrypt it with the server's key first")
                }
            }
            return (zip, PathDelegate(accessor: "zip", path: dataZip.text))
        }
        return (zip, container)
    }

    /// The same components under the collector's own delegate.
    func outer(_ info: FileInfo, _ path: OSPath) -> FileInfo {
        var info = info
        info.path = OSPath(components: info.path.components, type: .generic, delegate: path.delegate)
        return info
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let (zip, inner) = try content(path, in: scope)
        var info = outer(try zip.stat(path.with(delegate: inner), follow: follow, in: scope), path)
        if expandsSparse, let index = try? sparseIndex(path, zip: zip, inner: inner, scope: scope) {
            info.size = index.map { $0.originalOffset + $0.length }.max() ?? 0
        }
        return info
    }

    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] {
        let (zip, inner) = try content(path, in: scope)
        return try zip.list(path.with(delegate: inner), in: scope).map { outer($0, path) }
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let (zip, inner) = try content(path, in: scope)
        let file = try zip.open(path.with(delegate: inner), in: scope)
        if expandsSparse, let index = try? sparseIndex(path, zip: zip, inner: inner, scope: scope) { return RangedFile(file, index: index) }
        return file
    }

    /// The ranges of a sparse upload, from its `.idx` sibling; nil when there is none.
    func sparseIndex(_ path: OSPath, zip: any Accessor, inner: PathDelegate, scope: AccessorScope) throws -> [RangedFile.Run]? {
        guard let last = path.components.last else { return nil }
        let index = path.dirname.appending([last + Array(".idx".utf8)]).with(delegate: inner)
        guard let file = try? zip.open(index, in: scope) else { return nil }
        defer { file.close() }
        return try RangedFile.index(try file.readAll(limit: 64 << 20))
    }
}

extension AccessorScope {
    var zipPasswordsAreEmpty: Bool {
        guard let value = env?.lookup("ZIP_PASSWORDS")?.reduced() else { return true }
        return !value.isTruthy
    }
}
