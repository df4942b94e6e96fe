import Foundation
import CLinuxEvents
import QuarryHost
#if canImport(Glibc)
import Glibc
#endif

/// Opens a netlink socket bound to multicast `groups`, with a receive timeout (so reader threads
/// can notice cancellation) and a 4 MiB receive buffer (bursts of kernel records are not dropped;
/// what still overflows shows as ENOBUFS, which the readers count and report).
/// The audit reader and the process connector both listen this way.
enum NetlinkSocket {
    static func open(type: Int32, protocol family: Int32, groups: UInt32, timeoutMicroseconds: Int) throws -> Int32 {
        let fd = socket(AF_NETLINK, type | Int32(SOCK_CLOEXEC.rawValue), family)
        guard fd >= 0 else { throw Errno(errno) }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = groups
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw Errno(code)
        }
        var timeout = timeval(tv_sec: timeoutMicroseconds / 1_000_000, tv_usec: timeoutMicroseconds % 1_000_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // SO_RCVBUF is capped by net.core.rmem_max (often 208 KiB); root may force past it.
        var size: Int32 = 4 << 20
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        return fd
    }
}
