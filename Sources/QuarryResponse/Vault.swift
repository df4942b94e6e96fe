import CResponse
import Crypto
import Foundation
import PrivateFiles
#if canImport(Glibc)
import Glibc
#endif

/// What the vault knows about one quarantined file: everything needed to put it back exactly.
struct QuarantineManifest: Codable, Sendable {
    var id: String
    var path: String
    var sha256: String
    var stat: FileStat
    /// Extended attributes, values in base64.
    var xattrs: [String: String]
    var quarantinedAt: Double
    var reason: String
}

/// The quarantine vault: `<state>/quarantine/<id>/` (0700) holding `content` and `manifest.json`
/// (0600, owned by the agent's user). A file is copied in while hashed, checked unchanged, then
/// unlinked from its place; restoring writes a private temporary file next to the original path,
/// sets owner, mode, xattrs and times on it, and renames it into place.
struct Vault {
    let root: String
    var folder: String { root + "/quarantine" }

    init(root: String) { self.root = root }

    static func newId() -> String { "Q." + String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }

    static func validId(_ id: String) -> Bool {
        id.count == 18 && id.hasPrefix("Q.") && id.dropFirst(2).allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    func entry(_ id: String) -> String { folder + "/" + id }

    /// Moves the regular file at `path` into the vault and returns its manifest.
    func store(_ path: String, reason: String) throws -> QuarantineManifest {
        guard path.hasPrefix("/") else { throw ResponseError("\(path): an absolute path is needed") }
        let real = URL(fileURLWithPath: path).standardizedFileURL.path
        guard !real.hasPrefix(root + "/") else { throw ResponseError("\(path) is inside the response state folder") }
        guard let (before, type) = FileStat.at(path) else { throw ResponseError("\(path): no such file") }
        guard type == S_IFREG else { throw ResponseError("\(path) is not a regular file (symbolic links, folders and devices are not quarantined)") }
        // O_NOATIME (allowed to root and the owner) keeps the copy from moving the access time.
        var source = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | quarry_o_noatime)
        if source < 0 && errno == EPERM { source = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        guard source >= 0 else { throw ResponseError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(source) }
        let opened = try FileStat.of(fd: source)
        guard opened.inode == before.inode, opened.device == before.device else { throw ResponseError("\(path) was replaced while opened") }
        let xattrs = ExtendedAttributes.read(fd: source)

        try ResponseSettings.privateFolder(folder)
        let id = Vault.newId()
        try ResponseSettings.privateFolder(entry(id))
        do {
            let digest = try copy(from: source, to: entry(id) + "/content")
            let after = try FileStat.of(fd: source)
            guard after.size == opened.size, after.mtime == opened.mtime, after.mtimeNanos == opened.mtimeNanos else {
                throw ResponseError("\(path) changed while it was copied")
            }
            let manifest = QuarantineManifest(
                id: id, path: path, sha256: digest, stat: opened,
                xattrs: xattrs.mapValues { Data($0).base64EncodedString() },
                quarantinedAt: Date().timeIntervalSince1970, reason: reason)
            try PrivateFile.write(try JSONEncoder().encode(manifest), to: entry(id) + "/manifest.json")
            guard let (now, _) = FileStat.at(path), now.inode == opened.inode, now.device == opened.device else {
                throw ResponseError("\(path) was replaced while it was copied")
            }
            guard unlink(path) == 0 else { throw ResponseError("cannot remove \(path): \(String(cString: strerror(errno)))") }
            PrivateFile.syncFolder(of: path)
            return manifest
        } catch {
            try? FileManager.default.removeItem(atPath: entry(id))
            throw error
        }
    }

    /// Copies `fd` into a new private file at `path`, fsynced; returns the SHA-256 of the bytes.
    func copy(from fd: Int32, to path: String) throws -> String {
        let out = try PrivateFile.create(path)
        defer { close(out) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ResponseError("read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            hasher.update(data: buffer[0..<n])
            try PrivateFile.writeAll(out, buffer[0..<n], path: path)
            offset += off_t(n)
        }
        guard fsync(out) == 0 else { throw ResponseError("cannot sync \(path)") }
        return FileDigest.hex(hasher.finalize())
    }

    func manifest(_ id: String) throws -> QuarantineManifest {
        guard Vault.validId(id) else { throw ResponseError("'\(id)' is not a quarantine id (Q. and 16 hex digits)") }
        guard let data = FileManager.default.contents(atPath: entry(id) + "/manifest.json") else { throw ResponseError("nothing held as \(id)") }
        return try JSONDecoder().decode(QuarantineManifest.self, from: data)
    }

    /// Every manifest held, oldest first (unreadable entries skipped).
    func all() -> [QuarantineManifest] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return ids.filter(Vault.validId).compactMap { try? manifest($0) }.sorted { $0.quarantinedAt < $1.quarantinedAt }
    }

    /// Puts the file held as `id` back where it was; returns attributes that could not be set.
    func restore(_ id: String, overwrite: Bool) throws -> (QuarantineManifest, [String]) {
        let m = try manifest(id)
        let content = entry(id) + "/content"
        guard try FileDigest.sha256(path: content) == m.sha256 else { throw ResponseError("\(id): the held content no longer matches its SHA-256") }
        if let (_, type) = FileStat.at(m.path) {
            guard overwrite else { throw ResponseError("\(m.path) exists: not overwriting it (overwrite=TRUE replaces it)") }
            guard type == S_IFREG || type == S_IFLNK else { throw ResponseError("\(m.path) exists and is not a regular file") }
        }
        let parent = (m.path as NSString).deletingLastPathComponent
        guard FileStat.at(parent)?.1 == S_IFDIR else { throw ResponseError("the folder \(parent) no longer exists") }
        let temporary = parent + "/.quarry-restore-" + id
        let source = open(content, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard source >= 0 else { throw ResponseError("cannot open \(content)") }
        defer { close(source) }
        _ = unlink(temporary)
        let digest = try copy(from: source, to: temporary)
        var problems: [String] = []
        do {
            guard digest == m.sha256 else { throw ResponseError("\(id): copy does not match its SHA-256") }
            let out = open(temporary, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
            guard out >= 0 else { throw ResponseError("cannot reopen \(temporary)") }
            defer { close(out) }
            guard fchown(out, m.stat.uid, m.stat.gid) == 0, fchmod(out, mode_t(m.stat.mode)) == 0 else {
                throw ResponseError("cannot set owner and mode: \(String(cString: strerror(errno)))")
            }
            let xattrs = m.xattrs.compactMapValues { Data(base64Encoded: $0).map { [UInt8]($0) } }
            problems = ExtendedAttributes.write(xattrs, fd: out)
            try m.stat.applyTimes(fd: out)
            guard fsync(out) == 0 else { throw ResponseError("cannot sync \(temporary)") }
            guard rename(temporary, m.path) == 0 else { throw ResponseError("cannot put back \(m.path): \(String(cString: strerror(errno)))") }
        } catch {
            unlink(temporary)
            throw error
        }
        PrivateFile.syncFolder(of: m.path)
        try? FileManager.default.removeItem(atPath: entry(id))
        return (m, problems)
    }
}
