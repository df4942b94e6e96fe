import Foundation
import NIOCore
import NIOPosix

/// Tells systemd how a `quarry server` or `quarry client` service is doing, over the notification
/// socket systemd passes in NOTIFY_SOCKET (Type=notify units): READY=1 once it serves, STOPPING=1
/// on the way out, and — when the unit sets WatchdogSec — WATCHDOG=1 at half the interval, but only
/// while the process's event loops still answer, so a wedged process is restarted by systemd
/// instead of lingering. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
struct SystemdNotifier: Sendable {
    let socketPath: String?
    let watchdogInterval: Duration?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        let pidMatches = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if pidMatches, let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 {
            watchdogInterval = .microseconds(usec)
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends one notification (e.g. "READY=1\nSTATUS=…"); failures are ignored, as systemd's own
    /// sd_notify does.
    func notify(_ message: String) {
        guard let socketPath else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // "@name" is an abstract socket: a leading NUL byte instead of the "@".
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), $0, length) }
        }
    }

    /// Pings the watchdog at half its interval while every event loop of `group` runs a task within
    /// that half; stops when the task is cancelled.
    func startWatchdog(group: any EventLoopGroup) -> Task<Void, Never>? {
        guard socketPath != nil, let interval = watchdogInterval else { return nil }
        let half = interval / 2
        return Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: half)
                if await Self.loopsAnswer(group, within: half) { notify("WATCHDOG=1") }
            }
        }
    }

    /// Whether each event loop runs a trivial task within `limit`. A wedged loop never answers:
    /// the wait never ends, no ping follows, and systemd's watchdog restarts the service.
    static func loopsAnswer(_ group: any EventLoopGroup, within limit: Duration) async -> Bool {
        let started = ContinuousClock.now
        for loop in group.makeIterator() {
            guard (try? await loop.submit({ true }).get()) == true else { return false }
        }
        return ContinuousClock.now - started <= limit
    }
}
