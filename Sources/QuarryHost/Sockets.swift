import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `netstat()` and its alias `connections()`: sockets from /proc/net/{tcp,tcp6,udp,udp6,unix},
/// each tied to its owning process by matching socket inodes against /proc/*/fd links.
public enum Sockets {
    public static var plugins: [PluginDeclaration] { [netstat, connections] }

    static let columns: [ColumnSpec] = [
        ColumnSpec("Fd", .int, "File descriptor in the owning process (-1 when unknown)."),
        ColumnSpec("Family", .int, "Address family: 2 (IPv4), 10 (IPv6), 1 (Unix)."),
        ColumnSpec("Type", .int, "Socket type: 1 (stream), 2 (datagram), 5 (seqpacket)."),
        ColumnSpec("Status", .string, "LISTEN, ESTAB, TIME_WAIT, CLOSE, …"),
        ColumnSpec("Laddr", .dict, "Local address {IP, Port} (Unix: the path as IP)."),
        ColumnSpec("Raddr", .dict, "Remote address {IP, Port}."),
        ColumnSpec("Pid", .int, "Owning process (-1 when unknown)."),
        ColumnSpec("Name", .string, "Owning process name."),
        ColumnSpec("FamilyString", .string, "IPv4, IPv6 or Unix."),
        ColumnSpec("TypeString", .string, "tcp, udp or unix."),
        ColumnSpec("Uid", .int, "Owner uid (TCP/UDP)."),
        ColumnSpec("Inode", .int, "Socket inode."),
    ]

    static let schema = Schema(columns.map(\.name), caseInsensitiveFallback: true)
    static let addressSchema = Schema(["IP", "Port"], caseInsensitiveFallback: true)

    static let tcpStates: [UInt8: String] = [
        0x01: "ESTAB", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2", 0x06: "TIME_WAIT",
        0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING", 0x0C: "NEW_SYN_RECV",
    ]

    static func open(_ ctx: CallContext) -> RowCursor {
        let owners = SocketOwners.scan(cancellation: ctx.context.cancellation)
        var rows: [Value] = []
        for (file, family, type, typeString) in [
            ("/proc/net/tcp", 2, 1, "tcp"), ("/proc/net/tcp6", 10, 1, "tcp"),
            ("/proc/net/udp", 2, 2, "udp"), ("/proc/net/udp6", 10, 2, "udp"),
        ] {
            guard let bytes = HostFS.readProc(file) else { continue }
            for line in bytes.split(separator: UInt8(ascii: "\n")).dropFirst() {
                let f = line.split(separator: UInt8(ascii: " "))
                guard f.count >= 10 else { continue }
                let local = address(f[1]), remote = address(f[2])
                let state = UInt8(String(decoding: f[3], as: UTF8.self), radix: 16) ?? 0
                let inode = Int64(String(decoding: f[9], as: UTF8.self)) ?? 0
                let uid = Int64(String(decoding: f[7], as: UTF8.self)) ?? -1
                rows.append(row(owners: owners, inode: inode, family: family, type: type, typeString: typeString,
                                status: tcpStates[state] ?? String(state), local: local, remote: remote, uid: uid))
            }
        }
        if let bytes = HostFS.readProc("/proc/net/unix") {
            for line in bytes.split(separator: UInt8(ascii: "\n")).dropFirst() {
                let f = line.split(separator: UInt8(ascii: " "), maxSplits: 7)
                guard f.count >= 7 else { continue }
                let flags = UInt32(String(decoding: f[3], as: UTF8.self), radix: 16) ?? 0
                let type = Int(String(decoding: f[4], as: UTF8.self), radix: 16) ?? 0
                let st = Int(String(decoding: f[5], as: UTF8.self), radix: 16) ?? 0
                let inode = Int64(String(decoding: f[6], as: UTF8.self)) ?? 0
                let path: Value = f.count > 7 ? .string(bytes: Array(f[7])) : .string("")
                let status = flags & 0x10000 != 0 ? "LISTEN" : (st == 3 ? "ESTAB" : (st == 2 ? "SYN_SENT" : "CLOSE"))
                rows.append(row(owners: owners, inode: inode, family: 1, type: type, typeString: "unix", status: status,
                                local: (path, 0), remote: (.string(""), 0), uid: -1))
            }
        }
        return ArrayCursor(rows)
    }

    static func row(owners: SocketOwners, inode: Int64, family: Int, type: Int, typeString: String, status: String,
                    local: (Value, Int64), remote: (Value, Int64), uid: Int64) -> Value {
        let owner = owners.byInode[inode]
        return .dict(Dict(schema: schema, values: [
            .int(owner?.fd ?? -1), .from(family), .from(type), .string(status),
            .dict(Dict(schema: addressSchema, values: [local.0, .int(local.1)])),
            .dict(Dict(schema: addressSchema, values: [remote.0, .int(remote.1)])),
            .int(Int64(owner?.pid ?? -1)), owner.map { .string(owners.name(of: $0.pid)) } ?? .string(""),
            .string(family == 2 ? "IPv4" : family == 10 ? "IPv6" : "Unix"), .string(typeString),
            .int(uid), .int(inode),
        ]))
    }

    /// Decodes "0100007F:1F90" (IPv4) or the 32-hex-digit IPv6 form (four little-endian words).
    static func address(_ field: ArraySlice<UInt8>) -> (Value, Int64) {
        let parts = field.split(separator: UInt8(ascii: ":"))
        guard parts.count == 2 else { return (.string(""), 0) }
        let port = Int64(String(decoding: parts[1], as: UTF8.self), radix: 16) ?? 0
        let hex = Array(parts[0])
        var bytes: [UInt8] = []
        var i = 0
        while i + 8 <= hex.count {
            guard let word = UInt32(String(decoding: hex[i..<(i + 8)], as: UTF8.self), radix: 16) else { return (.string(""), port) }
            let little = word.byteSwapped
            bytes.append(contentsOf: [UInt8(little >> 24), UInt8((little >> 16) & 0xff), UInt8((little >> 8) & 0xff), UInt8(little & 0xff)])
            i += 8
        }
        return (.string(IPAddress.format(bytes) ?? ""), port)
    }

    public static let netstat = PluginDeclaration(
        name: "netstat", summary: "Open sockets (TCP, UDP, Unix) with their owning process.",
        columns: columns,
        examples: ["SELECT Laddr.Port AS Port, Pid, Name FROM netstat() WHERE Status = 'LISTEN'"],
        permissions: [.machineState]
    ) { ctx in open(ctx) }

    public static let connections = PluginDeclaration(
        name: "connections", summary: "Alias of netstat(): open sockets with their owning process.",
        columns: columns,
        examples: ["SELECT Status, FamilyString FROM connections() LIMIT 3"],
        permissions: [.machineState]
    ) { ctx in open(ctx) }
}

/// Socket inode → (pid, fd), from the `socket:[INODE]` links under /proc/*/fd.
final class SocketOwners {
    var byInode: [Int64: (pid: Int32, fd: Int64)] = [:]
    private var names: [Int32: String] = [:]

    static func scan(cancellation: CancellationFlag) -> SocketOwners {
        let owners = SocketOwners()
        var link = [CChar](repeating: 0, count: 64)
        let prefix = Array("socket:[".utf8)
        for pid in Processes.allPids() {
            if cancellation.isCancelled { break }
            let dirPath = "/proc/\(pid)/fd"
            guard let dir = opendir(dirPath) else { continue }
            defer { closedir(dir) }
            let fdDescriptor = dirfd(dir)
            while let entry = readdir(dir) {
                let n = withUnsafePointer(to: &entry.pointee.d_name) { name -> Int in
                    let cName = UnsafeRawPointer(name).assumingMemoryBound(to: CChar.self)
                    if cName[0] == 0x2e { return -1 }
                    return link.withUnsafeMutableBufferPointer { buffer in
                        guard let base = buffer.baseAddress else { return -1 }
                        return readlinkat(fdDescriptor, cName, base, 63)
                    }
                }
                guard n > prefix.count else { continue }
                let matches = link.withUnsafeBufferPointer { buffer in
                    (0..<prefix.count).allSatisfy { UInt8(bitPattern: buffer[$0]) == prefix[$0] }
                }
                guard matches else { continue }
                var inode: Int64 = 0
                for i in prefix.count..<n {
                    let c = UInt8(bitPattern: link[i])
                    guard c >= 0x30 && c <= 0x39 else { break }
                    inode = inode * 10 + Int64(c - 0x30)
                }
                let fdName = withUnsafePointer(to: &entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
                if owners.byInode[inode] == nil { owners.byInode[inode] = (pid, Int64(fdName) ?? -1) }
            }
        }
        return owners
    }

    func name(of pid: Int32) -> String {
        if let name = names[pid] { return name }
        var bytes = HostFS.readProc("/proc/\(pid)/comm") ?? []
        while bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        let name = String(decoding: bytes, as: UTF8.self)
        names[pid] = name
        return name
    }
}
