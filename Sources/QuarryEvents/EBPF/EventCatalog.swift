import CLibBPF

/// One kind of event `watch_ebpf()` can report: its Tracee name (the one Velociraptor's
/// artifacts use), its number on the wire, the BPF programs that must be attached for it, and
/// what provides it when BPF is refused.
public struct EventKind: Sendable, Hashable {
    public let type: UInt32
    public let name: String
    public let summary: String
    let programs: [String]
    /// The source used when BPF cannot load, or nil when there is none.
    let fallback: FallbackSource?
    /// Whether a path prefix filter applies (the event has a path).
    let hasPath: Bool

    public static func == (a: EventKind, b: EventKind) -> Bool { a.type == b.type }
    public func hash(into hasher: inout Hasher) { hasher.combine(type) }
}

/// What replaces BPF for an event when the kernel refuses it.
enum FallbackSource: String, Sendable {
    /// Netlink process connector (exec, exit, fork; needs CAP_NET_ADMIN).
    case procConnector = "proc_connector"
    /// fanotify (privileged) or inotify (unprivileged) file events.
    case fileNotify = "fanotify"
}

/// Every event kind, by name and number.
public enum EventCatalog {
    public static let all: [EventKind] = [
        EventKind(type: UInt32(QE_EXEC.rawValue), name: "sched_process_exec",
                  summary: "A process executed a program (path, argv, inode; fileless when the file has no name).",
                  programs: ["on_exec"], fallback: .procConnector, hasPath: true),
        EventKind(type: UInt32(QE_EXIT.rawValue), name: "sched_process_exit",
                  summary: "A process (its last thread) exited, with its exit code.",
                  programs: ["on_exit"], fallback: .procConnector, hasPath: false),
        EventKind(type: UInt32(QE_FORK.rawValue), name: "sched_process_fork",
                  summary: "A process created a child process.",
                  programs: ["on_fork"], fallback: .procConnector, hasPath: false),
        EventKind(type: UInt32(QE_CONNECT.rawValue), name: "security_socket_connect",
                  summary: "connect() on a socket: the remote address, the result.",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_ACCEPT.rawValue), name: "security_socket_accept",
                  summary: "accept() returned a connection: local and remote addresses.",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_BIND.rawValue), name: "security_socket_bind",
                  summary: "bind() of a socket to a local address.",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_DNS.rawValue), name: "net_packet_dns",
                  summary: "A DNS packet (UDP port 53) sent or received, parsed into questions and answers.",
                  programs: ["on_dns_egress", "on_dns_ingress"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_FILE_OPEN.rawValue), name: "security_file_open",
                  summary: "A file was opened (open, openat, openat2, creat): resolved path, flags, inode.",
                  programs: ["on_sys_exit"], fallback: .fileNotify, hasPath: true),
        EventKind(type: UInt32(QE_COMMIT_CREDS.rawValue), name: "commit_creds",
                  summary: "A process's credentials changed (set*id, capset, exec of a set-user-id program).",
                  programs: ["on_sys_enter", "on_sys_exit", "on_exec"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_SETUID.rawValue), name: "setuid",
                  summary: "The setuid() syscall, with its result.",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_MODULE_LOAD.rawValue), name: "module_load",
                  summary: "A kernel module was loaded (kernels with module support).",
                  programs: ["on_module_load"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_INIT_MODULE.rawValue), name: "init_module",
                  summary: "The init_module() syscall (loading a module from memory), with its result.",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_FINIT_MODULE.rawValue), name: "finit_module",
                  summary: "The finit_module() syscall (loading a module from a file), with its result.",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_PTRACE.rawValue), name: "ptrace",
                  summary: "The ptrace() syscall: request, target pid, result.",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
        EventKind(type: UInt32(QE_MEMFD_CREATE.rawValue), name: "memfd_create",
                  summary: "An anonymous in-memory file was created (the first step of fileless execution).",
                  programs: ["on_sys_exit"], fallback: nil, hasPath: false),
    ]

    static let byName: [String: EventKind] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    static let byType: [UInt32: EventKind] = Dictionary(uniqueKeysWithValues: all.map { ($0.type, $0) })

    public static func kind(named name: String) -> EventKind? { byName[name] }
    public static func kind(type: UInt32) -> EventKind? { byType[type] }

    /// A kind the catalogue is known to hold (every qe_event_type below QE_EVENT_COUNT).
    static func kind(_ type: qe_event_type) -> EventKind {
        byType[UInt32(type.rawValue)] ?? all[0]
    }
}
