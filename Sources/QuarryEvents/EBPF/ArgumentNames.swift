import CLibBPF
import QuarryHost
import VQL

/// Socket arguments rendered as Tracee does: a type name, and addresses as maps of strings
/// (`sa_family`, `sin_addr`, `sin_port`, …) so Tracee-style filters carry over.
enum SocketNames {
    static func type(_ type: UInt32) -> String {
        switch type & 0xF {
        case 1: return "SOCK_STREAM"
        case 2: return "SOCK_DGRAM"
        case 3: return "SOCK_RAW"
        case 4: return "SOCK_RDM"
        case 5: return "SOCK_SEQPACKET"
        case 6: return "SOCK_DCCP"
        case 10: return "SOCK_PACKET"
        default: return String(type)
        }
    }

    static func family(_ family: UInt16) -> String {
        switch family {
        case 0: return "AF_UNSPEC"
        case 1: return "AF_UNIX"
        case 2: return "AF_INET"
        case 10: return "AF_INET6"
        case 16: return "AF_NETLINK"
        case 17: return "AF_PACKET"
        default: return String(family)
        }
    }

    static func ip(_ address: qe_sockaddr) -> String {
        let bytes = withUnsafeBytes(of: address.addr) { Array($0) }
        switch address.family {
        case 2: return IPAddress.format(Array(bytes.prefix(4))) ?? ""
        case 10: return IPAddress.format(bytes) ?? ""
        default: return ""
        }
    }

    static func address(_ address: qe_sockaddr, unixPath: [UInt8]) -> Value {
        var pairs: [(String, Value)] = [("sa_family", .string(family(address.family)))]
        switch address.family {
        case 2:
            pairs += [("sin_port", .string(String(address.port))), ("sin_addr", .string(ip(address)))]
        case 10:
            pairs += [("sin6_port", .string(String(address.port))), ("sin6_flowinfo", .string("0")),
                      ("sin6_addr", .string(ip(address))), ("sin6_scopeid", .string(String(address.scope)))]
        case 1:
            pairs.append(("sun_path", .string(bytes: unixPath)))
        default:
            break
        }
        return .dict(Dict(pairs))
    }
}

/// open(2) flags as Tracee prints them: "O_WRONLY|O_CREAT|O_TRUNC".
enum OpenFlags {
    static let names: [(UInt32, String)] = [
        (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"), (0o20000, "O_ASYNC"), (0o40000, "O_DIRECT"),
        (0o100000, "O_LARGEFILE"), (0o200000, "O_DIRECTORY"), (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"), (0o4000000, "O_SYNC"), (0o10000000, "O_PATH"), (0o20000000, "O_TMPFILE"),
    ]

    static func describe(_ flags: UInt32) -> String {
        var parts: [String]
        switch flags & 3 {
        case 1: parts = ["O_WRONLY"]
        case 2: parts = ["O_RDWR"]
        default: parts = ["O_RDONLY"]
        }
        // O_SYNC includes O_DSYNC; O_TMPFILE includes O_DIRECTORY.
        var rest = flags & ~3
        for (bit, name) in names.reversed() where rest & bit == bit {
            parts.append(name)
            rest &= ~bit
        }
        return parts.joined(separator: "|")
    }

    /// True when the flags open for writing or create/truncate the file.
    static func writes(_ flags: UInt32) -> Bool { flags & 3 != 0 || flags & (0o100 | 0o1000) != 0 }
}

/// ptrace(2) request names.
enum PtraceRequests {
    static let names: [Int64: String] = [
        0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSER", 4: "PTRACE_POKETEXT",
        5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSER", 7: "PTRACE_CONT", 8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP",
        12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS", 14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH",
        17: "PTRACE_DETACH", 24: "PTRACE_SYSCALL", 0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG",
        0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET", 0x4205: "PTRACE_SETREGSET",
        0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT", 0x4208: "PTRACE_LISTEN",
    ]

    static func name(_ request: Int64) -> String { names[request] ?? String(request) }
}
