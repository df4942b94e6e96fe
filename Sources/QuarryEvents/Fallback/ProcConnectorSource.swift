import CLibBPF
import CLinuxEvents
import Foundation
import QuarryHost
import Synchronization
import VQL

/// Process events without BPF: the kernel's netlink process connector (CN_IDX_PROC) announces
/// every fork, exec and exit; the rest of a row (argv, executable, uid) is read from /proc at
/// once, so a process that exits within microseconds may show only its pid. Needs
/// CAP_NET_ADMIN. Rows have the same shape as the BPF ones, with System.Source "proc_connector".
final class ProcConnectorSource: @unchecked Sendable {
    private let socketFD: Int32
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let deliver: @Sendable (DecodedEvent) -> Void

    // linux/connector.h and linux/cn_proc.h
    static let netlinkConnector: Int32 = 11
    static let idxProc: UInt32 = 1, valProc: UInt32 = 1
    static let mcastListen: UInt32 = 1, mcastIgnore: UInt32 = 2
    static let eventFork: UInt32 = 0x1, eventExec: UInt32 = 0x2, eventExit: UInt32 = 0x8000_0000

    init(deliver: @escaping @Sendable (DecodedEvent) -> Void) throws {
        self.deliver = deliver
        let fd = try NetlinkSocket.open(type: Int32(SOCK_DGRAM.rawValue), protocol: Self.netlinkConnector,
                                        groups: Self.idxProc, timeoutMicroseconds: 200_000)
        socketFD = fd
        guard Self.control(fd, Self.mcastListen) else {
            let code = errno
            close(fd)
            throw Errno(code)
        }
        let thread = Thread { [self] in run() }
        thread.name = "quarry-proc-connector"
        thread.start()
    }

    /// Sends PROC_CN_MCAST_LISTEN / IGNORE: nlmsghdr, cn_msg, then the u32 operation.
    static func control(_ fd: Int32, _ operation: UInt32) -> Bool {
        var message = [UInt8](repeating: 0, count: 16 + 20 + 4)
        func put32(_ value: UInt32, _ at: Int) { withUnsafeBytes(of: value.littleEndian) { message.replaceSubrange(at..<(at + 4), with: $0) } }
        put32(UInt32(message.count), 0)
        message[4] = 3 // NLMSG_DONE
        put32(UInt32(getpid()), 12)
        put32(idxProc, 16)
        put32(valProc, 20)
        message[32] = 4 // cn_msg.len
        put32(operation, 36)
        return message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == message.count
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !stopping.load(ordering: .relaxed) {
            let n = buffer.withUnsafeMutableBytes { recv(socketFD, $0.baseAddress, $0.count, 0) }
            if n <= 0 { continue }
            var offset = 0
            while offset + 16 <= n {
                let length = Int(read32(buffer, offset))
                guard length >= 16, offset + length <= n else { break }
                // proc_event after nlmsghdr (16) and cn_msg (20).
                let event = offset + 36
                if event + 16 <= offset + length { handle(buffer, event, end: offset + length) }
                offset += (length + 3) & ~3
            }
        }
        finished.signal()
    }

    private func read32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        guard at + 4 <= bytes.count else { return 0 }
        return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    private func handle(_ bytes: [UInt8], _ event: Int, end: Int) {
        let what = read32(bytes, event)
        let data = event + 16
        guard data + 8 <= end else { return }
        switch what {
        case Self.eventExec:
            let pid = Int32(bitPattern: read32(bytes, data)), tgid = Int32(bitPattern: read32(bytes, data + 4))
            guard pid == tgid else { return }
            if let decoded = FallbackRows.exec(pid: tgid) { deliver(decoded) }
        case Self.eventExit:
            guard data + 24 <= end else { return }
            let pid = Int32(bitPattern: read32(bytes, data)), tgid = Int32(bitPattern: read32(bytes, data + 4))
            guard pid == tgid else { return }
            let code = Int32(bitPattern: read32(bytes, data + 8))
            let parent = Int32(bitPattern: read32(bytes, data + 20))
            deliver(FallbackRows.exit(pid: tgid, parent: parent, code: code))
        case Self.eventFork:
            guard data + 16 <= end else { return }
            let parent = Int32(bitPattern: read32(bytes, data + 4))
            let child = Int32(bitPattern: read32(bytes, data + 8)), childTgid = Int32(bitPattern: read32(bytes, data + 12))
            guard child == childTgid else { return }
            deliver(FallbackRows.fork(parent: parent, child: childTgid))
        default:
            break
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        _ = Self.control(socketFD, Self.mcastIgnore)
        close(socketFD)
    }
}

/// Rows for user-space sources, in the BPF rows' shape, from what /proc still tells.
enum FallbackRows {
    static func identity(pid: Int32, row: ProcessRow?) -> SystemFields.Identity {
        let now = Timestamp(seconds: Date().timeIntervalSince1970)
        let ppid = Int64(row?.parentID ?? 0)
        return SystemFields.Identity(
            timestamp: now, threadStart: row?.startTime ?? now, pid: Int64(pid), tid: Int64(pid), ppid: ppid,
            hostPid: Int64(pid), hostTid: Int64(pid), hostPpid: ppid, uid: row?.userID ?? -1, comm: row?.commandName ?? [])
    }

    static func event(_ kind: EventKind, _ identity: SystemFields.Identity, data: Dict, path: [UInt8]? = nil, source: String) -> DecodedEvent {
        DecodedEvent(
            type: kind.type, uid: UInt32(truncatingIfNeeded: identity.uid), comm: identity.comm, path: path, matched: .max,
            hostPid: Int32(truncatingIfNeeded: identity.hostPid), hostPpid: Int32(truncatingIfNeeded: identity.hostPpid),
            startTime: identity.threadStart, row: SystemFields.row(identity, kind: kind, data: data, source: source))
    }

    static func exec(pid: Int32) -> DecodedEvent? {
        let kind = EventCatalog.kind(QE_EXEC)
        let row = ProcessRow.live(pid: pid)
        var exe = row?.executable ?? []
        let deleted = exe.count > 10 && exe.suffix(10).elementsEqual(Array(" (deleted)".utf8))
        if deleted { exe.removeLast(10) }
        let fileless = deleted || exe.starts(with: Array("/memfd:".utf8))
        if exe.starts(with: Array("/memfd:".utf8)) { exe.removeFirst() }
        var stats = stat()
        let found = !exe.isEmpty && stat("/proc/\(pid)/exe", &stats) == 0
        let data = Dict([
            ("cmdpath", .string(bytes: exe)), ("pathname", .string(bytes: exe)),
            ("dev", .int(found ? Int64(stats.st_dev) : 0)), ("inode", .int(found ? Int64(stats.st_ino) : 0)),
            ("ctime", .int(found ? Int64(stats.st_ctim.tv_sec) * 1_000_000_000 + Int64(stats.st_ctim.tv_nsec) : 0)),
            ("inode_mode", .int(found ? Int64(stats.st_mode) : 0)), ("interp", .string("")),
            ("argv", .list((row?.arguments ?? []).map { .string(bytes: $0) })), ("fileless", .bool(fileless)),
        ])
        return event(kind, identity(pid: pid, row: row), data: data, path: exe, source: "proc_connector")
    }

    static func exit(pid: Int32, parent: Int32, code: Int32) -> DecodedEvent {
        let kind = EventCatalog.kind(QE_EXIT)
        var identity = identity(pid: pid, row: nil)
        identity.ppid = Int64(parent)
        identity.hostPpid = Int64(parent)
        let data = Dict([("exit_code", .int(Int64(code))), ("process_group_exit", .bool(true))])
        return event(kind, identity, data: data, source: "proc_connector")
    }

    static func fork(parent: Int32, child: Int32) -> DecodedEvent {
        let kind = EventCatalog.kind(QE_FORK)
        let parentRow = ProcessRow.live(pid: parent)
        let childRow = ProcessRow.live(pid: child)
        let identity = identity(pid: parent, row: parentRow)
        let data = Dict([
            ("parent_tid", .int(Int64(parent))), ("parent_ns_tid", .int(Int64(parent))), ("parent_pid", .int(Int64(parent))),
            ("parent_ns_pid", .int(Int64(parent))), ("child_tid", .int(Int64(child))), ("child_ns_tid", .int(Int64(child))),
            ("child_pid", .int(Int64(child))), ("child_ns_pid", .int(Int64(child))),
            ("start_time", childRow.map { .timestamp($0.startTime) } ?? .null),
        ])
        return event(kind, identity, data: data, source: "proc_connector")
    }
}
