import VQL

/// `zip` and `zip_nocase`: the members of a zip file as a directory tree. The path's delegate
/// opens the zip itself (any accessor: a file, data, another zip's member — so zips nest);
/// the path's components name a member. zip_nocase matches names case-insensitively and
/// reports them as the archive spells them. Encrypted members (WinZip AES) are opened with
/// the passwords in the ZIP_PASSWORDS variable.
public struct ZipAccessor: Accessor {
    public let name: String
    let fold: Bool

    public init(caseInsensitive: Bool = false) {
        self.name = caseInsensitive ? "zip_nocase" : "zip"
        self.fold = caseInsensitive
    }

    public var summary: String {
        fold ? "Members of a zip file, names matched case-insensitively (Windows collections)."
            : "Members of a zip file as a directory tree; the pathspec's delegate opens the zip (zips nest)."
    }

    func archive(_ path: OSPath, in scope: AccessorScope) throws -> ZipArchive {
        let archive = try ArchiveCache.of(scope).get(scope.containerKey(path, kind: "zip")) { () throws -> ZipArchive in
            try ZipArchive(file: try scope.openDelegate(of: path))
        }
        for problem in archive.problems { scope.context.logOnce(.warning, "\(name): \(problem)") }
        return archive
    }

    /// The node a path names and the path spelled as the archive spells it.
    func lookup(_ path: OSPath, in scope: AccessorScope) throws -> (ZipArchive, ZipArchive.Node, OSPath) {
        let archive = try archive(path, in: scope)
        var node = fold ? archive.foldedRoot : archive.root
        var spelled: [[UInt8]] = []
        for component in path.components {
            guard let child = node.children[fold ? component.lowercasedASCII : component] else {
                throw AccessorError.notFound(PathValues.display(path))
            }
            node = child
            spelled.append(child.name)
        }
        return (archive, node, OSPath(components: spelled, type: .generic, delegate: path.delegate))
    }

    func info(_ archive: ZipArchive, _ node: ZipArchive.Node, path: OSPath) -> FileInfo {
        if let index = node.entry {
            let entry = archive.entries[index]
            let isDirectory = entry.isDirectory || !node.children.isEmpty
            let mode = isDirectory ? (entry.mode & 0o7777) | 0o040000 : entry.mode
            return FileInfo(path: path, size: isDirectory ? 0 : entry.size, mode: mode, mtime: entry.mtime, atime: entry.mtime,
                            ctime: entry.mtime, btime: entry.mtime,
                            data: Dict([("CompressedSize", .int(entry.compressedSize)), ("Method", .int(Int64(entry.method)))]))
        }
        return FileInfo(path: path, size: 0, mode: FileInfo.directoryMode)
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let (archive, node, spelled) = try lookup(path, in: scope)
        return info(archive, node, path: spelled)
    }

    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] {
        let (archive, node, spelled) = try lookup(path, in: scope)
        if node.children.isEmpty, let index = node.entry, !archive.entries[index].isDirectory {
            throw AccessorError.notDirectory(PathValues.display(path))
        }
        return node.children.values.map { child in info(archive, child, path: spelled.appending([child.name])) }
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let (archive, node, _) = try lookup(path, in: scope)
        guard let index = node.entry, !archive.entries[index].isDirectory else {
            throw AccessorError.invalid("\(PathValues.display(path)) is a directory in the zip")
        }
        return try archive.open(index, passwords: scope.zipPasswords)
    }
}
