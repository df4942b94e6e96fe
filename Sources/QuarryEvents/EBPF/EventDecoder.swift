import CLibBPF
import Foundation
import QuarryHost
import VQL

/// One event from any source, decoded once and shared by every subscription it matches: the
/// fields the user-space filter and the process tracker need, and the row in Velociraptor's
/// shape (`System` and `EventData`, Tracee's names).
struct DecodedEvent: @unchecked Sendable {
    var type: UInt32
    var uid: UInt32
    var comm: [UInt8]
    var path: [UInt8]?
    /// Kernel slots whose filters matched (all ones for user-space sources).
    var matched: UInt64
    var hostPid: Int32
    var hostPpid: Int32
    /// The process's start (epoch), which tells a pid's successive owners apart.
    var startTime: Timestamp
    var row: Value
}

/// Fields of `System`, in output order.
enum SystemFields {
    static let schema = Schema([
        "Timestamp", "ThreadStartTime", "ProcessorID", "ProcessID", "CgroupID", "ThreadID", "ParentProcessID",
        "HostProcessID", "HostThreadID", "HostParentProcessID", "UserID", "MountNS", "PIDNS", "ProcessName",
        "HostName", "EventID", "EventName", "ArgsNum", "ReturnValue", "Source",
    ])
    static let rowSchema = Schema(["System", "EventData"])
    static let hostName: String = ProcessInfo.processInfo.hostName

    /// Nanoseconds to add to CLOCK_BOOTTIME to get the epoch.
    static func bootOffset() -> Int64 {
        var real = timespec(), boot = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        return (Int64(real.tv_sec) - Int64(boot.tv_sec)) * 1_000_000_000 + Int64(real.tv_nsec) - Int64(boot.tv_nsec)
    }

    struct Identity {
        var timestamp: Timestamp
        var threadStart: Timestamp
        var cpu: Int64 = 0
        var pid: Int64, tid: Int64, ppid: Int64
        var hostPid: Int64, hostTid: Int64, hostPpid: Int64
        var uid: Int64
        var cgroup: Int64 = 0, mountNS: Int64 = 0, pidNS: Int64 = 0
        var comm: [UInt8]
        var retval: Int64 = 0
    }

    static func row(_ id: Identity, kind: EventKind, data: Dict, source: String) -> Value {
        let system = Dict(schema: schema, values: [
            .timestamp(id.timestamp), .timestamp(id.threadStart), .int(id.cpu), .int(id.pid), .int(id.cgroup), .int(id.tid),
            .int(id.ppid), .int(id.hostPid), .int(id.hostTid), .int(id.hostPpid), .int(id.uid), .int(id.mountNS), .int(id.pidNS),
            .string(bytes: id.comm), .string(hostName), .int(Int64(kind.type)), .string(kind.name), .from(data.count),
            .int(id.retval), .string(source),
        ])
        return .dict(Dict(schema: rowSchema, values: [.dict(system), .dict(data)]))
    }
}

/// Decodes records written by quarry.bpf.c (layouts from quarry_events.h).
enum EventDecoder {
    static let headerSize = MemoryLayout<qe_header>.size

    static func decode(_ record: UnsafeRawBufferPointer, bootOffset: Int64) -> DecodedEvent? {
        guard record.count >= headerSize, let base = record.baseAddress else { return nil }
        let header = base.loadUnaligned(as: qe_header.self)
        guard let kind = EventCatalog.kind(type: header.type) else { return nil }
        let size = min(Int(header.size), record.count)
        let payload = UnsafeRawBufferPointer(rebasing: record[headerSize..<size])
        let comm = withUnsafeBytes(of: header.comm) { Array($0.prefix { $0 != 0 }) }
        var identity = SystemFields.Identity(
            timestamp: Timestamp(nanoseconds: Int64(bitPattern: header.timestamp_ns) &+ bootOffset),
            threadStart: Timestamp(nanoseconds: Int64(bitPattern: header.start_time_ns) &+ bootOffset),
            cpu: Int64(header.cpu),
            pid: Int64(header.pid), tid: Int64(header.tid), ppid: Int64(header.ppid),
            hostPid: Int64(header.host_pid), hostTid: Int64(header.host_tid), hostPpid: Int64(header.host_ppid),
            uid: Int64(header.uid), cgroup: Int64(bitPattern: header.cgroup_id),
            mountNS: Int64(header.mnt_ns), pidNS: Int64(header.pid_ns), comm: comm, retval: header.retval)
        let lengths = withUnsafeBytes(of: header.str_len) { raw in (0..<8).map { Int(raw.load(fromByteOffset: $0 * 2, as: UInt16.self)) } }
        var reader = PayloadReader(bytes: payload, lengths: lengths)
        var path: [UInt8]?
        let data: Dict
        switch kind.type {
        case UInt32(QE_EXEC.rawValue): (data, path) = exec(&reader)
        case UInt32(QE_EXIT.rawValue): data = exit(&reader)
        case UInt32(QE_FORK.rawValue): data = fork(&reader, identity: identity, bootOffset: bootOffset)
        case UInt32(QE_CONNECT.rawValue), UInt32(QE_ACCEPT.rawValue), UInt32(QE_BIND.rawValue): data = socket(&reader, type: kind.type)
        case UInt32(QE_DNS.rawValue):
            let (dnsData, known) = dns(&reader)
            data = dnsData
            if !known { identity.comm = [] }
        case UInt32(QE_FILE_OPEN.rawValue): (data, path) = fileOpen(&reader)
        case UInt32(QE_COMMIT_CREDS.rawValue): data = commitCreds(&reader)
        case UInt32(QE_SETUID.rawValue): data = Dict([("uid", .int(Int64(reader.fixed(qe_setuid.self)?.uid ?? 0)))])
        case UInt32(QE_MODULE_LOAD.rawValue), UInt32(QE_INIT_MODULE.rawValue), UInt32(QE_FINIT_MODULE.rawValue): data = module(&reader, type: kind.type)
        case UInt32(QE_PTRACE.rawValue): data = ptrace(&reader)
        case UInt32(QE_MEMFD_CREATE.rawValue):
            let memfd = reader.fixed(qe_memfd.self)
            data = Dict([("name", .string(bytes: reader.string(0))), ("flags", .int(Int64(memfd?.flags ?? 0)))])
        default: return nil
        }
        return DecodedEvent(
            type: kind.type, uid: header.uid, comm: identity.comm, path: path, matched: header.matched,
            hostPid: Int32(bitPattern: header.host_pid), hostPpid: Int32(bitPattern: header.host_ppid),
            startTime: identity.threadStart, row: SystemFields.row(identity, kind: kind, data: data, source: "ebpf"))
    }

    static func exec(_ reader: inout PayloadReader) -> (Dict, [UInt8]) {
        let e = reader.fixed(qe_exec.self) ?? qe_exec()
        var pathname = reader.string(0)
        let fileless = e.fileless != 0
        // A memfd lives at the root of an internal mount: Tracee's form is "memfd:NAME".
        if fileless, pathname.starts(with: Array("/memfd:".utf8)) { pathname.removeFirst() }
        let argv = split(reader.string(3))
        var pairs: [(String, Value)] = [
            ("cmdpath", .string(bytes: reader.string(1))), ("pathname", .string(bytes: pathname)),
            ("dev", .int(Int64(e.dev))), ("inode", .int(Int64(bitPattern: e.inode))), ("ctime", .int(Int64(bitPattern: e.ctime_ns))),
            ("inode_mode", .int(Int64(e.inode_mode))), ("interp", .string(bytes: reader.string(2))),
            ("argv", .list(argv.map { .string(bytes: $0) })), ("fileless", .bool(fileless)),
        ]
        let environment = reader.string(4)
        if !environment.isEmpty { pairs.append(("env", .list(split(environment).map { .string(bytes: $0) }))) }
        return (Dict(pairs), pathname)
    }

    /// NUL-separated strings (argv, environment); a trailing NUL ends the last.
    static func split(_ bytes: [UInt8]) -> [[UInt8]] {
        var parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
        if parts.last?.isEmpty == true { parts.removeLast() }
        return parts
    }

    static func exit(_ reader: inout PayloadReader) -> Dict {
        let e = reader.fixed(qe_exit.self) ?? qe_exit()
        return Dict([("exit_code", .int(Int64(e.exit_code))), ("process_group_exit", .bool(e.group_exit != 0))])
    }

    static func fork(_ reader: inout PayloadReader, identity: SystemFields.Identity, bootOffset: Int64) -> Dict {
        let e = reader.fixed(qe_fork.self) ?? qe_fork()
        return Dict([
            ("parent_tid", .int(identity.hostTid)), ("parent_ns_tid", .int(identity.tid)),
            ("parent_pid", .int(identity.hostPid)), ("parent_ns_pid", .int(identity.pid)),
            ("child_tid", .int(Int64(e.child_host_pid))), ("child_ns_tid", .int(Int64(e.child_pid))),
            ("child_pid", .int(Int64(e.child_host_pid))), ("child_ns_pid", .int(Int64(e.child_pid))),
            ("start_time", .timestamp(Timestamp(nanoseconds: Int64(bitPattern: e.child_start_time_ns) &+ bootOffset))),
        ])
    }

    static func socket(_ reader: inout PayloadReader, type: UInt32) -> Dict {
        let e = reader.fixed(qe_socket.self) ?? qe_socket()
        let unixPath = reader.string(0)
        var pairs: [(String, Value)] = [("sockfd", .int(e.fd)), ("type", .string(SocketNames.type(e.type)))]
        switch type {
        case UInt32(QE_CONNECT.rawValue):
            pairs.append(("remote_addr", SocketNames.address(e.addr, unixPath: unixPath)))
            if e.peer.family != 0 { pairs.append(("local_addr", SocketNames.address(e.peer, unixPath: []))) }
        case UInt32(QE_ACCEPT.rawValue):
            pairs.append(("local_addr", SocketNames.address(e.addr, unixPath: [])))
            pairs.append(("remote_addr", SocketNames.address(e.peer, unixPath: [])))
        default:
            pairs.append(("local_addr", SocketNames.address(e.addr, unixPath: unixPath)))
        }
        return Dict(pairs)
    }

    static func dns(_ reader: inout PayloadReader) -> (Dict, Bool) {
        let d = reader.fixed(qe_dns.self) ?? qe_dns()
        let payload = reader.rest(limit: Int(d.payload_len))
        let src = SocketNames.ip(d.src), dst = SocketNames.ip(d.dst)
        let metadata = Dict([
            ("Direction", .string(d.ingress != 0 ? "ingress" : "egress")), ("TotalLength", .int(Int64(d.packet_len))),
            ("Protocol", .string("UDP")),
        ])
        let pairs: [(String, Value)] = [
            ("src", .string(src)), ("dst", .string(dst)), ("src_port", .int(Int64(d.src.port))), ("dst_port", .int(Int64(d.dst.port))),
            ("metadata", .dict(metadata)), ("proto_dns", DNSMessage.parse(payload)),
        ]
        return (Dict(pairs), d.owner_known != 0)
    }

    static func fileOpen(_ reader: inout PayloadReader) -> (Dict, [UInt8]) {
        let e = reader.fixed(qe_file_open.self) ?? qe_file_open()
        let path = reader.string(0)
        return (Dict([
            ("pathname", .string(bytes: path)), ("flags", .string(OpenFlags.describe(e.flags))),
            ("dev", .int(Int64(e.dev))), ("inode", .int(Int64(bitPattern: e.inode))), ("ctime", .int(Int64(bitPattern: e.ctime_ns))),
            ("mode", .int(Int64(e.mode))),
        ]), path)
    }

    static let credSchema = Schema([
        "Uid", "Gid", "Suid", "Sgid", "Euid", "Egid", "Fsuid", "Fsgid", "SecureBits",
        "CapInheritable", "CapPermitted", "CapEffective", "CapBounding", "CapAmbient",
    ])

    static func cred(_ c: qe_cred) -> Value {
        let ids = [c.uid, c.gid, c.suid, c.sgid, c.euid, c.egid, c.fsuid, c.fsgid, c.securebits].map { Value.int(Int64($0)) }
        let caps = [c.cap_inheritable, c.cap_permitted, c.cap_effective, c.cap_bounding, c.cap_ambient].map { Value.int(Int64(bitPattern: $0)) }
        return .dict(Dict(schema: credSchema, values: ids + caps))
    }

    static func commitCreds(_ reader: inout PayloadReader) -> Dict {
        let e = reader.fixed(qe_commit_creds.self) ?? qe_commit_creds()
        return Dict([("old_cred", cred(e.old_cred)), ("new_cred", cred(e.new_cred))])
    }

    static func module(_ reader: inout PayloadReader, type: UInt32) -> Dict {
        let e = reader.fixed(qe_module.self) ?? qe_module()
        switch type {
        case UInt32(QE_MODULE_LOAD.rawValue):
            return Dict([("name", .string(bytes: reader.string(0))), ("version", .string(bytes: reader.string(1))),
                         ("src_version", .string(bytes: reader.string(2)))])
        case UInt32(QE_FINIT_MODULE.rawValue):
            return Dict([("fd", .int(e.fd)), ("param_values", .string(bytes: reader.string(0))), ("flags", .int(Int64(e.flags)))])
        default:
            return Dict([("len", .int(Int64(bitPattern: e.length))), ("param_values", .string(bytes: reader.string(0)))])
        }
    }

    static func ptrace(_ reader: inout PayloadReader) -> Dict {
        let e = reader.fixed(qe_ptrace.self) ?? qe_ptrace()
        return Dict([
            ("request", .string(PtraceRequests.name(e.request))), ("pid", .int(e.target)),
            ("addr", .int(Int64(bitPattern: e.addr))), ("data", .int(Int64(bitPattern: e.data))),
        ])
    }
}

/// Reads a record's fixed payload, then its length-described strings in order.
struct PayloadReader {
    let bytes: UnsafeRawBufferPointer
    let lengths: [Int]
    var offset = 0
    private var strings: [[UInt8]]?

    init(bytes: UnsafeRawBufferPointer, lengths: [Int]) {
        self.bytes = bytes
        self.lengths = lengths
    }

    mutating func fixed<T>(_ type: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count, let base = bytes.baseAddress else { return nil }
        defer { offset += size }
        return (base + offset).loadUnaligned(as: T.self)
    }

    /// String number `index` (all strings are sliced once, after the fixed part).
    mutating func string(_ index: Int) -> [UInt8] {
        if strings == nil {
            var position = offset
            var result: [[UInt8]] = []
            for length in lengths {
                let end = min(bytes.count, position + length)
                result.append(position < end ? Array(bytes[position..<end]) : [])
                position = end
            }
            strings = result
        }
        guard let strings, index < strings.count else { return [] }
        return strings[index]
    }

    /// The bytes after the fixed part (a packet), at most `limit`.
    mutating func rest(limit: Int) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, limit))
        return offset < end ? Array(bytes[offset..<end]) : []
    }
}
