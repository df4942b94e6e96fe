import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// netcat(): connects to a TCP, UDP or Unix socket, optionally sends data, and yields what comes
/// back split at a separator (one row per line by default). Reads wait in short polls so a
/// cancelled query stops at once; pieces longer than chunk_size are cut.
public enum NetcatPlugin {
    public static let plugin = PluginDeclaration(
        name: "netcat",
        summary: "Connects to a socket (tcp host:port, udp host:port, or a unix socket path), sends `send`, and yields the reply split at `sep` (default a newline) as rows with a Data column.",
        arguments: [
            ArgumentSpec("address", .string, required: true, "host:port, [v6]:port, or a socket path for unix."),
            ArgumentSpec("type", .string, "tcp (default), udp or unix."),
            ArgumentSpec("connection_type", .string, "Same as type."),
            ArgumentSpec("send", .string, "Data to send after connecting."),
            ArgumentSpec("sep", .string, "Separator between rows (default \"\\n\"; an empty string gives one row per read)."),
            ArgumentSpec("chunk_size", .int, "Largest read, and longest row (default 65536)."),
            ArgumentSpec("retry", .int, "Seconds to wait before connecting again after the peer closes (default 0: do not)."),
        ],
        columns: [ColumnSpec("Data", .string)],
        examples: ["SELECT * FROM chain(a={SELECT Data FROM netcat(address='127.0.0.1:9', send='hello\\n')}, b={SELECT 'port 9 closed' AS Data FROM scope()}) LIMIT 1"],
        permissions: [.network]
    ) { ctx in
        guard ctx.context.require(.network, for: "netcat"), let address = ctx.string("address") else { return ArrayCursor([]) }
        let kind = (ctx.string("type") ?? ctx.string("connection_type") ?? "tcp").lowercased()
        let send = ctx.bytes("send") ?? []
        let separator = ctx.has("sep") ? (ctx.bytes("sep") ?? []) : [0x0A]
        let chunk = Int(max(1, min(ctx.int("chunk_size") ?? 65536, 16 << 20)))
        let retry = max(0, ctx.int("retry") ?? 0)
        let schema = Schema(["Data"])
        var connection: SocketConnection?
        var pending: [UInt8] = []
        var ready: [[UInt8]] = []
        var finished = false
        return GeneratorCursor(onClose: { connection?.close() }) {
            while ready.isEmpty {
                try ctx.checkCancelled()
                if finished { return nil }
                if connection == nil {
                    do {
                        connection = try SocketConnection(kind: kind, address: address)
                        if !send.isEmpty { try connection?.write(send) }
                    } catch {
                        ctx.context.logOnce(.warning, "netcat: \(address): \(error)")
                        guard retry > 0 else { return nil }
                        try SocketConnection.pause(seconds: retry, ctx: ctx)
                        continue
                    }
                }
                let data = try connection?.read(max: chunk, ctx: ctx) ?? []
                if data.isEmpty {
                    connection?.close()
                    connection = nil
                    if !pending.isEmpty { ready.append(pending) }
                    pending = []
                    if retry > 0 { try SocketConnection.pause(seconds: retry, ctx: ctx) } else { finished = true }
                    continue
                }
                if separator.isEmpty || kind == "udp" {
                    ready.append(data)
                    continue
                }
                pending += data
                while let range = firstRange(of: separator, in: pending) {
                    ready.append(Array(pending[..<range.lowerBound]))
                    pending.removeSubrange(..<range.upperBound)
                }
                while pending.count > chunk {
                    ready.append(Array(pending.prefix(chunk)))
                    pending.removeFirst(chunk)
                }
            }
            return .dict(Dict(schema: schema, values: [.string(bytes: ready.removeFirst())]))
        }
    }

    static func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if needle.count == 1 || Array(haystack[i..<(i + needle.count)]) == needle { return i..<(i + needle.count) }
        }
        return nil
    }
}

/// A connected socket with cancellable reads (poll in 200 ms steps).
final class SocketConnection {
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    private var fd: Int32

    init(kind: String, address: String) throws {
        switch kind {
        case "unix":
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(message: String(cString: strerror(errno))) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let path = Array(address.utf8)
            guard path.count < MemoryLayout.size(ofValue: addr.sun_path) else {
                Glibc.close(fd)
                throw Failure(message: "socket path too long")
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in path.enumerated() { raw[i] = b }
            }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else {
                let message = String(cString: strerror(errno))
                Glibc.close(fd)
                throw Failure(message: message)
            }
        case "tcp", "udp":
            guard let colon = address.lastIndex(of: ":") else { throw Failure(message: "address must be host:port") }
            let host = address[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            let port = String(address[address.index(after: colon)...])
            var hints = addrinfo()
            hints.ai_socktype = Int32(kind == "udp" ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, port, &hints, &result)
            guard rc == 0, let first = result else { throw Failure(message: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
            defer { freeaddrinfo(result) }
            var lastError = "no address"
            var connected: Int32 = -1
            var info: UnsafeMutablePointer<addrinfo>? = first
            while let current = info {
                let s = socket(current.pointee.ai_family, current.pointee.ai_socktype, current.pointee.ai_protocol)
                if s >= 0 && connect(s, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 {
                    connected = s
                    break
                }
                lastError = String(cString: strerror(errno))
                if s >= 0 { Glibc.close(s) }
                info = current.pointee.ai_next
            }
            guard connected >= 0 else { throw Failure(message: lastError) }
            fd = connected
        default:
            throw Failure(message: "type must be tcp, udp or unix")
        }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a peer that went away is an error here, not a SIGPIPE.
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.send(fd, base + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(message: String(cString: strerror(errno)))
            }
            sent += n
        }
    }

    /// Up to `max` bytes; empty at the end of the stream.
    func read(max: Int, ctx: CallContext) throws -> [UInt8] {
        guard fd >= 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            try ctx.checkCancelled()
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 200)
            if ready == 0 { continue }
            if ready < 0 {
                if errno == EINTR { continue }
                return []
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return []
            }
            return Array(buffer.prefix(n))
        }
    }

    static func pause(seconds: Int64, ctx: CallContext) throws {
        let end = Date().addingTimeInterval(TimeInterval(seconds))
        while Date() < end {
            try ctx.checkCancelled()
            usleep(100_000)
        }
    }
}
