import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `filesystems()` (mounted file systems with their sizes) and `partitions()` (block device
/// partitions from /proc/partitions).
public enum Filesystems {
    public static var plugins: [PluginDeclaration] { [filesystems, partitions] }

    public static let filesystems = PluginDeclaration(
        name: "filesystems", summary: "Mounted file systems with their size and free space (statvfs).",
        columns: [
            ColumnSpec("Device", .string, "The mounted device or source."), ColumnSpec("Mountpoint", .string, "Where it is mounted."),
            ColumnSpec("Type", .string, "File system type."), ColumnSpec("Opts", .string, "Mount options."),
            ColumnSpec("Size", .int, "Total bytes."), ColumnSpec("Free", .int, "Bytes available to unprivileged users."),
            ColumnSpec("Used", .int, "Bytes in use."),
        ],
        examples: ["SELECT Mountpoint, Type, Size FROM filesystems() WHERE Mountpoint = '/'"],
        permissions: [.machineState]
    ) { ctx in
        let schema = Schema(["Device", "Mountpoint", "Type", "Opts", "Size", "Free", "Used"], caseInsensitiveFallback: true)
        guard let cursor = try? MountsPlugin.plugin.open(ctx) else { return ArrayCursor([]) }
        defer { cursor.close() }
        var rows: [Value] = []
        while let row = try cursor.next() {
            let mountpoint = row.member("Mountpoint").stringValue ?? ""
            var info = statvfs()
            var size: Value = .null, free: Value = .null, used: Value = .null
            if statvfs(mountpoint, &info) == 0 {
                let block = Int64(info.f_frsize)
                size = .int(Int64(info.f_blocks) &* block)
                free = .int(Int64(info.f_bavail) &* block)
                used = .int((Int64(info.f_blocks) &- Int64(info.f_bfree)) &* block)
            }
            rows.append(.dict(Dict(schema: schema, values: [row.member("Device"), .string(mountpoint), row.member("Type"), row.member("Opts"), size, free, used])))
        }
        return ArrayCursor(rows)
    }

    public static let partitions = PluginDeclaration(
        name: "partitions", summary: "Block devices and partitions (/proc/partitions): name, device numbers, size.",
        columns: [
            ColumnSpec("Name", .string, "Kernel name (sda1)."), ColumnSpec("Device", .string, "Device path (/dev/sda1)."),
            ColumnSpec("Major", .int), ColumnSpec("Minor", .int), ColumnSpec("Size", .int, "Bytes."),
        ],
        examples: ["SELECT Name, Size FROM partitions()"],
        permissions: [.machineState]
    ) { _ in
        let schema = Schema(["Name", "Device", "Major", "Minor", "Size"], caseInsensitiveFallback: true)
        guard let bytes = HostFS.procFile("/proc/partitions") else { return ArrayCursor([]) }
        var rows: [Value] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count == 4, let major = Int64(fields[0]), let minor = Int64(fields[1]), let blocks = Int64(fields[2]) else { continue }
            let name = String(fields[3])
            rows.append(.dict(Dict(schema: schema, values: [.string(name), .string("/dev/" + name), .int(major), .int(minor), .int(blocks &* 1024)])))
        }
        return ArrayCursor(rows)
    }
}
