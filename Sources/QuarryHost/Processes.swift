import Foundation
import Synchronization
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Processes from /proc: `pslist()`, `getpid()` and `proc_maps()`. (The process tracker, which
/// also remembers exited processes, is the events module's.)
public enum Processes {
    public static var plugins: [PluginDeclaration] { [pslist, procMaps] }
    public static var functions: [FunctionDeclaration] { [getpid] }

    static let columns: [ColumnSpec] = [
        ColumnSpec("Pid", .int, "Process id."),
        ColumnSpec("Ppid", .int, "Parent process id."),
        ColumnSpec("Name", .string, "Command name (/proc/PID/stat comm)."),
        ColumnSpec("Exe", .string, "Executable path; ends in ' (deleted)' when unlinked."),
        ColumnSpec("CommandLine", .string, "Arguments joined by spaces."),
        ColumnSpec("Cwd", .string, "Current directory."),
        ColumnSpec("Username", .string, "Name of the real user."),
        ColumnSpec("Uid", .int, "Real user id."),
        ColumnSpec("Gid", .int, "Real group id."),
        ColumnSpec("CreateTime", .timestamp, "Start time."),
        ColumnSpec("Status", .string, "running, sleep, disk-sleep, zombie, stop, idle, …"),
        ColumnSpec("Threads", .int, "Number of threads."),
        ColumnSpec("MemoryInfo", .dict, "RSS, VMS, Shared, Text, Lib, Data, Dirty (bytes)."),
        ColumnSpec("Times", .dict, "User and System CPU seconds."),
    ]

    static let clockTicks: Double = {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }()

    static let pageSize: Int64 = {
        let size = sysconf(Int32(_SC_PAGESIZE))
        return size > 0 ? Int64(size) : 4096
    }()

    /// Boot time in epoch seconds (/proc/stat btime).
    static let bootTime: Double = {
        if let bytes = HostFS.readProc("/proc/stat") {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("btime ") {
                if let value = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) { return value }
            }
        }
        return Date().timeIntervalSince1970 - ProcessInfo.processInfo.systemUptime
    }()

    /// Every numeric entry of /proc, ascending.
    static func allPids() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if let pid = Int32(name), pid > 0 { pids.append(pid) }
        }
        return pids.sorted()
    }

    /// A cursor over processes (one pid or all); processes that exit mid-listing are skipped.
    static func cursor(_ ctx: CallContext, pid: Int64?) -> RowCursor {
        let users = UserNames(root: HostFS.root(ctx.context))
        if let pid {
            guard let pid32 = Int32(exactly: pid), let row = ProcessRow(pid: pid32, users: users) else { return ArrayCursor([]) }
            return ArrayCursor([.object(row)])
        }
        let pids = allPids()
        var index = 0
        return GeneratorCursor {
            while index < pids.count {
                if index % 64 == 0 { try ctx.checkCancelled() }
                let pid = pids[index]
                index += 1
                if let row = ProcessRow(pid: pid, users: users) { return .object(row) }
            }
            return nil
        }
    }

    public static let pslist = PluginDeclaration(
        name: "pslist", summary: "Running processes from /proc; columns are read only when used.",
        arguments: [ArgumentSpec("pid", .int, "Only this process.")],
        columns: columns,
        examples: ["SELECT Pid, Name, CommandLine FROM pslist() LIMIT 3", "SELECT Name FROM pslist(pid=1)"],
        permissions: [.machineState]
    ) { ctx in cursor(ctx, pid: ctx.int("pid")) }

    public static let getpid = FunctionDeclaration(
        name: "getpid", summary: "This process's id.", returns: .int,
        examples: ["SELECT getpid() AS Pid FROM scope()"]
    ) { _ in .int(Int64(Glibc.getpid())) }

    public static let procMaps = PluginDeclaration(
        name: "proc_maps", summary: "Memory mappings of a process (/proc/PID/maps).",
        arguments: [ArgumentSpec("pid", .int, required: true, "The process id.")],
        columns: [
            ColumnSpec("Pid", .int, "The process."), ColumnSpec("Start", .int, "Start address."), ColumnSpec("End", .int, "End address."),
            ColumnSpec("Size", .int, "End - Start."), ColumnSpec("Perms", .string, "e.g. r-xp."),
            ColumnSpec("Offset", .int, "File offset."), ColumnSpec("Dev", .string, "major:minor."),
            ColumnSpec("Inode", .int, "Inode of the mapped file."), ColumnSpec("Filename", .string, "Mapped file or [heap], [stack], …"),
        ],
        examples: ["SELECT Perms, Filename FROM proc_maps(pid=getpid()) LIMIT 3"],
        permissions: [.machineState]
    ) { ctx in
        guard let pid = ctx.int("pid"), let bytes = HostFS.readProc("/proc/\(pid)/maps") else {
            ctx.context.logOnce(.warning, "proc_maps: cannot read maps of pid \(ctx.int("pid") ?? 0)")
            return ArrayCursor([])
        }
        let schema = Schema(["Pid", "Start", "End", "Size", "Perms", "Offset", "Dev", "Inode", "Filename"], caseInsensitiveFallback: true)
        var rows: [Value] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5 else { continue }
            let range = fields[0].split(separator: UInt8(ascii: "-"))
            guard range.count == 2 else { continue }
            let start = UInt64(String(decoding: range[0], as: UTF8.self), radix: 16) ?? 0
            let end = UInt64(String(decoding: range[1], as: UTF8.self), radix: 16) ?? 0
            var name: [UInt8] = fields.count > 5 ? Array(fields[5]) : []
            while name.first == UInt8(ascii: " ") { name.removeFirst() }
            rows.append(.dict(Dict(schema: schema, values: [
                .int(pid), .int(Int64(bitPattern: start)), .int(Int64(bitPattern: end)), .int(Int64(bitPattern: end &- start)),
                .string(bytes: Array(fields[1])),
                .int(Int64(String(decoding: fields[2], as: UTF8.self), radix: 16) ?? 0),
                .string(bytes: Array(fields[3])), .int(Int64(String(decoding: fields[4], as: UTF8.self)) ?? 0),
                .string(bytes: name),
            ])))
        }
        return ArrayCursor(rows)
    }
}

/// uid → user name from /etc/passwd (under the root), loaded on first use and shared by the
/// rows of one listing.
final class UserNames: Sendable {
    private let root: [UInt8]
    private let table = Mutex<[UInt32: String]?>(nil)

    init(root: [UInt8]) { self.root = root }

    func name(_ uid: UInt32) -> String? {
        table.withLock { table in
            if table == nil {
                var names: [UInt32: String] = [:]
                for line in HostFS.lines("/etc/passwd", root: root) ?? [] {
                    let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                    if fields.count > 2, let id = UInt32(fields[2]), names[id] == nil { names[id] = String(fields[0]) }
                }
                table = names
            }
            return table?[uid]
        }
    }
}

/// One process: /proc/PID/stat is read when the row is made (a process that has exited is
/// skipped); status, cmdline, statm and the exe/cwd links only when a column needs them.
public final class ProcessRow: HostObject {
    let pid: Int32
    let ppid: Int32
    let name: [UInt8]
    let state: UInt8
    let threads: Int64
    let startTicks: Double
    let userTicks: Double
    let systemTicks: Double
    let users: UserNames
    private let status = Mutex<(uid: Int64, gid: Int64)??>(nil)

    static let names = Processes.columns.map(\.name)

    init?(pid: Int32, users: UserNames) {
        guard let stat = HostFS.readProc("/proc/\(pid)/stat"),
              let open = stat.firstIndex(of: UInt8(ascii: "(")),
              let close = stat.lastIndex(of: UInt8(ascii: ")")), close > open else { return nil }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 21 else { return nil }
        func number(_ i: Int) -> Double { Double(String(decoding: fields[i], as: UTF8.self)) ?? 0 }
        func integer(_ i: Int) -> Int64 { Int64(String(decoding: fields[i], as: UTF8.self)) ?? 0 }
        self.pid = pid
        self.ppid = Int32(clamping: integer(1))
        self.name = Array(stat[(open + 1)..<close])
        self.state = fields[0].first ?? UInt8(ascii: "?")
        self.userTicks = number(11)
        self.systemTicks = number(12)
        self.threads = integer(17)
        self.startTicks = number(19)
        self.users = users
    }

    public var typeName: String { "Process" }
    public var memberNames: [String] { ProcessRow.names }

    var ids: (uid: Int64, gid: Int64)? {
        if let cached = status.withLock({ $0 }) { return cached }
        var result: (uid: Int64, gid: Int64)?
        if let bytes = HostFS.readProc("/proc/\(pid)/status") {
            var uid: Int64?, gid: Int64?
            for line in bytes.split(separator: UInt8(ascii: "\n")) {
                if line.starts(with: Array("Uid:".utf8)) { uid = ProcessRow.firstNumber(line.dropFirst(4)) }
                if line.starts(with: Array("Gid:".utf8)) { gid = ProcessRow.firstNumber(line.dropFirst(4)); break }
            }
            if let uid, let gid { result = (uid, gid) }
        }
        status.withLock { $0 = .some(result) }
        return result
    }

    static func firstNumber(_ bytes: ArraySlice<UInt8>) -> Int64? {
        let parts = bytes.split(whereSeparator: { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: " ") })
        return parts.first.flatMap { Int64(String(decoding: $0, as: UTF8.self)) }
    }

    var statusWord: String {
        switch state {
        case UInt8(ascii: "R"): return "running"
        case UInt8(ascii: "S"): return "sleep"
        case UInt8(ascii: "D"): return "disk-sleep"
        case UInt8(ascii: "Z"): return "zombie"
        case UInt8(ascii: "T"): return "stop"
        case UInt8(ascii: "t"): return "tracing-stop"
        case UInt8(ascii: "I"): return "idle"
        case UInt8(ascii: "X"), UInt8(ascii: "x"): return "dead"
        case UInt8(ascii: "W"): return "wait"
        default: return String(UnicodeScalar(state))
        }
    }

    var commandLine: Value {
        guard var bytes = HostFS.readProc("/proc/\(pid)/cmdline") else { return .string("") }
        while bytes.last == 0 { bytes.removeLast() }
        for i in bytes.indices where bytes[i] == 0 { bytes[i] = UInt8(ascii: " ") }
        return .string(bytes: bytes)
    }

    var memoryInfo: Value {
        guard let bytes = HostFS.readProc("/proc/\(pid)/statm") else { return .null }
        let numbers = bytes.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
            .map { (Int64(String(decoding: $0, as: UTF8.self)) ?? 0) * Processes.pageSize }
        guard numbers.count >= 7 else { return .null }
        // statm order: size resident shared text lib data dirty.
        let values: [Value] = [numbers[1], numbers[0], numbers[2], numbers[3], numbers[4], numbers[5], numbers[6]].map { .int($0) }
        return .dict(Dict(schema: ProcessRow.memorySchema, values: values))
    }

    static let memorySchema = Schema(["RSS", "VMS", "Shared", "Text", "Lib", "Data", "Dirty"], caseInsensitiveFallback: true)
    static let timesSchema = Schema(["User", "System"], caseInsensitiveFallback: true)

    var createTime: Timestamp { Timestamp(seconds: Processes.bootTime + startTicks / Processes.clockTicks) }

    public func member(_ member: String) -> Value? {
        switch member {
        case "Pid": return .int(Int64(pid))
        case "Ppid": return .int(Int64(ppid))
        case "Name": return .string(bytes: name)
        case "Exe": return HostFS.readlink(Array("/proc/\(pid)/exe".utf8)).map { .string(bytes: $0) } ?? .string("")
        case "CommandLine": return commandLine
        case "Cwd": return HostFS.readlink(Array("/proc/\(pid)/cwd".utf8)).map { .string(bytes: $0) } ?? .string("")
        case "Username":
            guard let uid = ids?.uid else { return .null }
            return .string(users.name(UInt32(truncatingIfNeeded: uid)) ?? String(uid))
        case "Uid": return ids.map { .int($0.uid) } ?? .null
        case "Gid": return ids.map { .int($0.gid) } ?? .null
        case "CreateTime": return .timestamp(createTime)
        case "Status": return .string(statusWord)
        case "Threads": return .int(threads)
        case "MemoryInfo": return memoryInfo
        case "Times":
            return .dict(Dict(schema: ProcessRow.timesSchema, values: [
                .double(userTicks / Processes.clockTicks), .double(systemTicks / Processes.clockTicks),
            ]))
        // The process-tracker entry shape (Velociraptor's ProcessEntry), for artifacts using it.
        case "Id": return .string(String(pid))
        case "ParentId": return .string(String(ppid))
        case "StartTime": return .timestamp(createTime)
        case "EndTime": return .null
        case "Data": return .object(self)
        default:
            let lowered = member.lowercased()
            if let match = ProcessRow.names.first(where: { $0.lowercased() == lowered }) { return self.member(match) }
            return nil
        }
    }
}

/// The live-process surface other modules build on (the event sources and the process tracker).
extension ProcessRow {
    /// One process from the live /proc, or nil when it has exited.
    public static func live(pid: Int32) -> ProcessRow? { ProcessRow(pid: pid, users: UserNames.host) }

    public var processID: Int32 { pid }
    public var parentID: Int32 { ppid }
    public var commandName: [UInt8] { name }
    public var startTime: Timestamp { createTime }
    /// The real uid (nil when /proc/PID/status cannot be read).
    public var userID: Int64? { ids?.uid }
    /// argv as the process sees it (/proc/PID/cmdline split at NULs).
    public var arguments: [[UInt8]] {
        guard var bytes = HostFS.readProc("/proc/\(pid)/cmdline") else { return [] }
        if bytes.last == 0 { bytes.removeLast() }
        return bytes.isEmpty ? [] : bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
    }
    public var executable: [UInt8] { HostFS.readlink(Array("/proc/\(pid)/exe".utf8)) ?? [] }

    /// User name for a uid from the live /etc/passwd.
    public static func userName(_ uid: UInt32) -> String? { UserNames.host.name(uid) }
}

extension Processes {
    /// Every pid in /proc, ascending.
    public static func livePids() -> [Int32] { allPids() }
}

extension UserNames {
    static let host = UserNames(root: [UInt8(ascii: "/")])
}
