import Foundation
import VQL

/// `raw_ext4` and `ext4`: files of an ext2/3/4 file system parsed from its raw bytes, so flags
/// the OS hides (IMMUTABLE, APPEND) and files a rootkit hides from readdir are visible.
/// raw_ext4 reads the image through the pathspec's delegate; ext4 does too when given one,
/// and otherwise takes live paths (`/home/x`) and reads the ext4 device mounted there.
public struct Ext4Accessor: Accessor {
    public let name: String
    let live: Bool

    public init(live: Bool) {
        self.name = live ? "ext4" : "raw_ext4"
        self.live = live
    }

    public var summary: String {
        live ? "Live paths read by parsing the ext4 device mounted there (or an image given as a pathspec delegate)."
            : "Files inside an ext2/3/4 image or partition (the pathspec's delegate), parsed read-only."
    }

    public var pathType: PathType { live ? .linux : .generic }

    /// The volume and the path's components inside it.
    func volume(_ path: OSPath, in scope: AccessorScope) throws -> (Ext4Volume, [[UInt8]]) {
        let cache = ArchiveCache.of(scope)
        if path.delegate != nil || !live {
            let volume = try cache.get(scope.containerKey(path, kind: "ext4")) { () throws -> Ext4Volume in
                try Ext4Volume(file: try scope.openDelegate(of: path))
            }
            return (volume, path.components)
        }
        let components = path.components
        guard let mount = LiveMounts.ext4Mount(containing: components) else {
            throw AccessorError.unsupported("ext4: \(PathValues.display(path)) is not on a mounted ext2/3/4 file system")
        }
        let volume = try cache.get("ext4-live\u{0}" + mount.device) { () throws -> Ext4Volume in
            let inner = try scope.deeper()
            let raw = try inner.accessor("raw_file")
            return try Ext4Volume(file: try raw.open(raw.parse(Array(mount.device.utf8)), in: inner))
        }
        return (volume, mount.root + Array(components.dropFirst(mount.mountPoint.count)))
    }

    func info(_ volume: Ext4Volume, _ inode: Ext4Volume.Inode, path: OSPath) -> FileInfo {
        var link: [UInt8]?
        if inode.isSymlink, inode.size <= 4096, let file = try? volume.open(inode) {
            link = try? file.readAll(limit: Int(inode.size))
        }
        let data = Dict([("Flags", .string(Ext4Volume.flagString(inode.flags))), ("Links", .int(Int64(inode.links)))])
        let sys = Value.dict(Dict([("mft", .int(Int64(inode.number))), ("Inode", .int(Int64(inode.number)))]))
        return FileInfo(path: path, size: inode.size, mode: inode.mode, mtime: inode.mtime, atime: inode.atime,
                        ctime: inode.ctime, btime: inode.crtime ?? inode.ctime, uid: Int64(inode.uid), gid: Int64(inode.gid),
                        link: link, data: data, sys: sys)
    }

    public func stat(_ path: OSPath, follow: Bool, in scope: AccessorScope) throws -> FileInfo {
        let (volume, components) = try volume(path, in: scope)
        return info(volume, try volume.lookup(components), path: path)
    }

    public func list(_ path: OSPath, in scope: AccessorScope) throws -> [FileInfo] {
        let (volume, components) = try volume(path, in: scope)
        let directory = try volume.lookup(components)
        guard directory.isDirectory else { throw AccessorError.notDirectory(PathValues.display(path)) }
        var result: [FileInfo] = []
        for entry in try volume.entries(directory) {
            try scope.checkCancelled()
            guard let inode = try? volume.inode(entry.inode) else {
                scope.context.logOnce(.warning, "\(name): \(PathValues.display(path)): entry with a bad inode number \(entry.inode), skipped")
                continue
            }
            result.append(info(volume, inode, path: path.appending([entry.name])))
        }
        return result
    }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let (volume, components) = try volume(path, in: scope)
        let inode = try volume.lookup(components)
        guard !inode.isDirectory else { throw AccessorError.invalid("\(PathValues.display(path)) is a directory") }
        return try volume.open(inode)
    }
}

/// The host's ext2/3/4 mounts, from /proc/self/mountinfo (read once per process).
enum LiveMounts {
    struct Mount {
        var mountPoint: [[UInt8]]
        /// The directory of the file system mounted there (not / for bind mounts).
        var root: [[UInt8]]
        var device: String
        var type: String
    }

    /// Every mount, longest mount point first.
    static let mounts: [Mount] = {
        guard let data = FileManager.default.contents(atPath: "/proc/self/mountinfo") else { return [] }
        var mounts: [Mount] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count, fields.count > 4 else { continue }
            mounts.append(Mount(mountPoint: OSPath.split(Array(unescape(fields[4]).utf8), type: .linux),
                                root: OSPath.split(Array(unescape(fields[3]).utf8), type: .linux), device: unescape(fields[dash + 2]),
                                type: fields[dash + 1]))
        }
        return mounts.sorted { $0.mountPoint.count > $1.mountPoint.count }
    }()

    /// The mount a path is on, when that is an ext2/3/4 file system on a device.
    static func ext4Mount(containing components: [[UInt8]]) -> Mount? {
        guard let mount = mounts.first(where: { components.starts(with: $0.mountPoint) }),
              ["ext2", "ext3", "ext4"].contains(mount.type), mount.device.hasPrefix("/") else { return nil }
        return mount
    }

    /// mountinfo escapes spaces, tabs, newlines and backslashes as \ooo.
    static func unescape(_ text: String) -> String {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count, let value = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(value)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
