import CLinuxEvents
import Foundation
import QuarryHost
import VQL

/// `audit()` and `watch_auditd()`: Linux audit events as go-libaudit-shaped rows. audit()
/// reads the kernel directly (the netlink audit read-only multicast group, which leaves any
/// audit daemon in place) when no auditd runs, and follows auditd's log file when one does.
/// watch_auditd() follows the given auditd log files. Configure rules with auditctl.
public enum WatchAudit {
    public static var plugins: [PluginDeclaration] { [audit, watchAuditd] }

    static let defaultLog = "/var/log/audit/audit.log"

    public static let audit = PluginDeclaration(
        name: "audit",
        summary: "Linux audit events as they happen (Tags, Summary, Process, User, Paths, …): from the kernel's audit "
            + "netlink group when no auditd runs, else from auditd's log. Rules come from auditctl. Never ends.",
        columns: [
            ColumnSpec("Timestamp", .timestamp, "When the event happened."), ColumnSpec("Sequence", .int, "The audit serial."),
            ColumnSpec("Category", .string, "audit-rule, user-login, …"), ColumnSpec("RecordType", .string, "syscall, user_login, …"),
            ColumnSpec("Result", .string, "success, fail or unknown."), ColumnSpec("Tags", .list, "The rule keys (auditctl -k)."),
            ColumnSpec("Summary", .dict, "Actor {Primary, Secondary}, Action, Object, How."),
            ColumnSpec("Process", .dict, "PID, PPID, Title, Name, Exe, CWD, Args."),
            ColumnSpec("User", .dict, "IDs and Names (auid, uid, euid, …)."), ColumnSpec("Paths", .list, "PATH records."),
        ],
        permissions: [.machineState]
    ) { ctx in
        guard ctx.context.require(.machineState, for: "audit") else { return ArrayCursor([]) }
        if auditdRunning() {
            ctx.log(.info, "audit: auditd is running: following \(defaultLog)")
            return AuditLogCursor(paths: [defaultLog], cancellation: ctx.context.cancellation)
        }
        do {
            let socket = try AuditNetlink()
            ctx.log(.info, "audit: reading the kernel's audit netlink group")
            let context = ctx.context
            return AuditNetlinkCursor(socket: socket, cancellation: context.cancellation) { lost in
                context.log(.warning, "audit: the kernel dropped records for this reader (its receive buffer overflowed \(lost) time(s) so far)")
            }
        } catch {
            ctx.log(.warning, "audit: the audit netlink group is refused (\(error)); following \(defaultLog)")
            return AuditLogCursor(paths: [defaultLog], cancellation: ctx.context.cancellation)
        }
    }

    public static let watchAuditd = PluginDeclaration(
        name: "watch_auditd",
        summary: "New events of auditd log files as they are written (follows rotation), coalesced like audit(). Never ends.",
        arguments: [
            ArgumentSpec("filename", .stringList, required: true, "The auditd log file(s)."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
            ArgumentSpec("buffer_size", .int, "The longest line kept, in bytes (default 64 KiB)."),
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "watch_auditd"), WatchFiles.checkAccessor(ctx) else { return ArrayCursor([]) }
        return AuditLogCursor(paths: ctx.strings("filename") ?? [], cancellation: ctx.context.cancellation,
                              maxLine: Int(clamping: ctx.int("buffer_size") ?? 64 * 1024))
    }

    /// True when an audit daemon has registered (its pid file names a live process).
    static func auditdRunning() -> Bool {
        guard let text = try? String(contentsOfFile: "/var/run/auditd.pid", encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else { return false }
        return kill(pid, 0) == 0
    }
}

/// Events from followed auditd log files.
final class AuditLogCursor: RowCursor {
    private let followers: [FileFollower]
    private let coalescer = AuditCoalescer()
    private let cancellation: CancellationFlag
    private var ready: [Value] = []

    init(paths: [String], cancellation: CancellationFlag, maxLine: Int = 64 * 1024) {
        followers = paths.map { FileFollower(path: $0, startAtEnd: true, maxLine: maxLine) }
        for follower in followers { _ = follower.poll() }
        self.cancellation = cancellation
    }

    func next() throws -> Value? {
        while ready.isEmpty {
            try cancellation.check()
            for follower in followers {
                for line in follower.poll() {
                    if let record = AuditRecord.parse(line: String(decoding: line, as: UTF8.self)) { ready += coalescer.add(record) }
                }
            }
            ready += coalescer.expired()
            if ready.isEmpty { usleep(250_000) }
        }
        return ready.removeFirst()
    }
}

/// A socket in the kernel's read-only audit multicast group (needs CAP_AUDIT_READ). Records
/// arrive whether or not an audit daemon is registered; the daemon is not disturbed.
final class AuditNetlink {
    let fd: Int32
    /// Receives that failed with ENOBUFS: the kernel dropped records because we were too slow.
    private(set) var overruns = 0

    init() throws {
        fd = try NetlinkSocket.open(type: Int32(SOCK_RAW.rawValue), protocol: NETLINK_AUDIT,
                                    groups: UInt32(1) << (UInt32(AUDIT_NLGRP_READLOG.rawValue) - 1), timeoutMicroseconds: 250_000)
    }

    deinit { close(fd) }

    /// The records of one receive (empty on timeout).
    func receive(into buffer: inout [UInt8]) -> [AuditRecord] {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0, errno == ENOBUFS { overruns += 1 }
        guard n > 0 else { return [] }
        var records: [AuditRecord] = []
        var offset = 0
        while offset + 16 <= n {
            let length = Int(UInt32(buffer[offset]) | UInt32(buffer[offset + 1]) << 8 | UInt32(buffer[offset + 2]) << 16 | UInt32(buffer[offset + 3]) << 24)
            let type = Int(UInt16(buffer[offset + 4]) | UInt16(buffer[offset + 5]) << 8)
            guard length >= 16, offset + length <= n else { break }
            let body = buffer[(offset + 16)..<(offset + length)].prefix { $0 != 0 }
            if let record = AuditRecord.parse(type: type, body: String(decoding: body, as: UTF8.self)) { records.append(record) }
            offset += (length + 3) & ~3
        }
        return records
    }
}

/// Events from the audit netlink group.
final class AuditNetlinkCursor: RowCursor {
    private let socket: AuditNetlink
    private let coalescer = AuditCoalescer()
    private let cancellation: CancellationFlag
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var ready: [Value] = []
    private let reportLoss: (Int) -> Void
    private var reported = 0

    init(socket: AuditNetlink, cancellation: CancellationFlag, reportLoss: @escaping (Int) -> Void) {
        self.socket = socket
        self.cancellation = cancellation
        self.reportLoss = reportLoss
    }

    func next() throws -> Value? {
        while ready.isEmpty {
            try cancellation.check()
            for record in socket.receive(into: &buffer) { ready += coalescer.add(record) }
            // Losses are said, never silent: the first, then at each doubling.
            if socket.overruns > reported, socket.overruns >= max(1, reported * 2) {
                reported = socket.overruns
                reportLoss(reported)
            }
            ready += coalescer.expired()
        }
        return ready.removeFirst()
    }
}
