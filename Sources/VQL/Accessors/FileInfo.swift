/// What an accessor knows about one file: the same facts whatever holds the file (a directory,
/// a zip, an ext4 image), so glob() and stat() give the same columns for all of them.
public struct FileInfo: Sendable {
    public var path: OSPath
    public var size: Int64
    /// Unix st_mode bits (file type and permissions).
    public var mode: UInt32
    public var mtime: Timestamp?
    public var atime: Timestamp?
    public var ctime: Timestamp?
    public var btime: Timestamp?
    public var uid: Int64?
    public var gid: Int64?
    /// A symbolic link's target.
    public var link: [UInt8]?
    /// Accessor-specific facts (ext4 flags, a zip member's compression, …).
    public var data: Dict
    /// Accessor-specific record (`Sys`: the ext4 inode number as `mft`, for instance).
    public var sys: Value

    public static let regularMode: UInt32 = 0o100644
    public static let directoryMode: UInt32 = 0o040755

    public init(path: OSPath, size: Int64, mode: UInt32, mtime: Timestamp? = nil, atime: Timestamp? = nil,
                ctime: Timestamp? = nil, btime: Timestamp? = nil, uid: Int64? = nil, gid: Int64? = nil,
                link: [UInt8]? = nil, data: Dict = Dict(), sys: Value = .null) {
        self.path = path
        self.size = size
        self.mode = mode
        self.mtime = mtime
        self.atime = atime
        self.ctime = ctime
        self.btime = btime
        self.uid = uid
        self.gid = gid
        self.link = link
        self.data = data
        self.sys = sys
    }

    public var isDirectory: Bool { mode & 0o170000 == 0o040000 }
    public var isLink: Bool { mode & 0o170000 == 0o120000 }
    public var isRegular: Bool { mode & 0o170000 == 0o100000 }
    public var name: [UInt8] { path.basename }
}

/// A file's mode as VQL sees it: stands for its Go-style string ("-rw-r--r--", "drwxr-xr-x",
/// "Lrwxrwxrwx") and has String, IsDir, IsRegular, IsLink, Perm and Bits members, as
/// Velociraptor's os.FileMode does.
public final class FileMode: HostObject {
    public let mode: UInt32
    public init(_ mode: UInt32) { self.mode = mode }
    public var typeName: String { "FileMode" }
    public var memberNames: [String] { ["String", "IsDir", "IsRegular", "IsLink", "Perm", "Bits"] }
    public var scalar: Value? { .string(FileMode.string(mode)) }

    public func member(_ name: String) -> Value? {
        switch name {
        case "String": return .string(FileMode.string(mode))
        case "IsDir": return .bool(mode & 0o170000 == 0o040000)
        case "IsRegular": return .bool(mode & 0o170000 == 0o100000)
        case "IsLink": return .bool(mode & 0o170000 == 0o120000)
        case "Perm": return .int(Int64(mode & 0o7777))
        case "Bits": return .int(Int64(mode))
        default: return nil
        }
    }

    /// Go's os.FileMode.String() rendering of Unix mode bits.
    public static func string(_ mode: UInt32) -> String {
        var s = ""
        switch mode & 0o170000 {
        case 0o040000: s += "d"
        case 0o120000: s += "L"
        case 0o010000: s += "p"
        case 0o140000: s += "S"
        case 0o020000: s += "Dc"
        case 0o060000: s += "D"
        default: break
        }
        if mode & 0o4000 != 0 { s += "u" }
        if mode & 0o2000 != 0 { s += "g" }
        if mode & 0o1000 != 0 { s += "t" }
        if s.isEmpty { s = "-" }
        let letters: [Character] = ["r", "w", "x"]
        for bit in 0..<9 {
            s.append(mode & (UInt32(1) << UInt32(8 - bit)) != 0 ? letters[bit % 3] : "-")
        }
        return s
    }

    /// The mode as Go's os.FileMode number (what Velociraptor prints for a Mode in JSON).
    public static func goBits(_ mode: UInt32) -> Int64 {
        var bits = Int64(mode & 0o777)
        switch mode & 0o170000 {
        case 0o040000: bits |= 1 << 31
        case 0o120000: bits |= 1 << 27
        case 0o010000: bits |= 1 << 25
        case 0o140000: bits |= 1 << 24
        case 0o020000: bits |= (1 << 26) | (1 << 21)
        case 0o060000: bits |= 1 << 26
        default: break
        }
        if mode & 0o4000 != 0 { bits |= 1 << 23 }
        if mode & 0o2000 != 0 { bits |= 1 << 22 }
        if mode & 0o1000 != 0 { bits |= 1 << 20 }
        return bits
    }
}

/// A glob()/stat() row for a file reached through an accessor: the columns of the file
/// accessor's rows (OSPath, Name, FullPath, Size, Mode, IsDir, IsLink, times, Uid, Gid, Data,
/// Globs), plus Sys.
public final class FileInfoRow: HostObject {
    public let info: FileInfo
    public let globs: [String]

    public static let names = [
        "OSPath", "Name", "FullPath", "Size", "Mode", "IsDir", "IsLink",
        "Mtime", "Atime", "Ctime", "Btime", "Uid", "Gid", "Data", "Globs",
    ]

    public init(_ info: FileInfo, globs: [String] = []) {
        self.info = info
        self.globs = globs
    }

    public var typeName: String { "FileInfo" }
    public var memberNames: [String] { FileInfoRow.names }

    public func member(_ name: String) -> Value? {
        switch name {
        case "OSPath": return .object(info.path)
        case "Name": return .string(bytes: info.name)
        case "FullPath": return .string(bytes: info.path.text)
        case "Size": return .int(info.size)
        case "Mode": return .object(FileMode(info.mode))
        case "IsDir": return .bool(info.isDirectory)
        case "IsLink": return .bool(info.isLink)
        case "Mtime": return .timestamp(info.mtime ?? .goZero)
        case "Atime": return .timestamp(info.atime ?? .goZero)
        case "Ctime": return .timestamp(info.ctime ?? .goZero)
        case "Btime": return .timestamp(info.btime ?? .goZero)
        case "Uid": return info.uid.map { .int($0) } ?? .null
        case "Gid": return info.gid.map { .int($0) } ?? .null
        case "Data":
            if let link = info.link {
                var data = info.data
                data["Link"] = .string(bytes: link)
                return .dict(data)
            }
            return .dict(info.data)
        case "Globs": return .list(globs.map { .string($0) })
        case "Sys": return info.sys
        default:
            let lowered = name.lowercased()
            if let match = FileInfoRow.names.first(where: { $0.lowercased() == lowered }) { return member(match) }
            if lowered == "modtime" { return member("Mtime") }
            if lowered == "sys" { return info.sys }
            return nil
        }
    }
}

extension Timestamp {
    /// Go's zero time (0001-01-01T00:00:00Z): what Velociraptor prints for a time a file does not have.
    public static let goZero = Timestamp(nanoseconds: Int64.min)
}
