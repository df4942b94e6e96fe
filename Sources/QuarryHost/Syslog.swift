import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `rsyslog()`: sends one RFC 5424 syslog message to a remote collector over UDP (one datagram)
/// or TCP (octet-counted framing, RFC 6587), so a query can raise findings into a SIEM. Messages
/// are bounded (64 KiB) and sending gives up after a few seconds.
public enum Syslog {
    public static let functions: [FunctionDeclaration] = [rsyslog]

    static let maxMessage = 64 << 10

    public static let rsyslog = FunctionDeclaration(
        name: "rsyslog",
        summary: "Sends an RFC 5424 syslog message to `hostname`:`port` over UDP (default) or TCP; `args` become structured data. TRUE when sent.",
        arguments: [
            ArgumentSpec("hostname", .string, required: true, "The syslog collector."),
            ArgumentSpec("port", .int, "Its port (default 514)."),
            ArgumentSpec("protocol", .string, "udp (default) or tcp; tls is not supported."),
            ArgumentSpec("message", .string, required: true, "The message text."),
            ArgumentSpec("facility", .int, "Facility number 0-23 (default 1, user)."),
            ArgumentSpec("severity", .int, "Severity number 0-7 (default 6, informational)."),
            ArgumentSpec("timestamp", .timestamp, "The message time (default now)."),
            ArgumentSpec("source_hostname", .string, "The HOSTNAME field (default this host's name)."),
            ArgumentSpec("app_name", .string, "The APP-NAME field (default quarry)."),
            ArgumentSpec("proc_id", .string, "The PROCID field (default this process id)."),
            ArgumentSpec("sd_id", .string, "The structured-data id for `args` (default quarry@32473)."),
            ArgumentSpec("args", .dict, "Key/value pairs sent as structured data."),
            ArgumentSpec("root_ca", .string, "Accepted for compatibility (TLS is not supported)."),
        ],
        returns: .bool,
        examples: ["SELECT rsyslog(hostname='127.0.0.1', port=9, message='quarry test') AS Sent FROM scope()"],
        permissions: [.network]
    ) { ctx in
        guard let host = ctx.string("hostname"), !host.isEmpty, let message = ctx.string("message") else {
            ctx.log(.error, "rsyslog(): hostname and message are required")
            return .bool(false)
        }
        let proto = (ctx.string("protocol") ?? "udp").lowercased()
        guard proto == "udp" || proto == "tcp" else {
            ctx.log(.error, "rsyslog(): protocol \(proto) is not supported (udp or tcp)")
            return .bool(false)
        }
        let facility = min(max(ctx.int("facility") ?? 1, 0), 23), severity = min(max(ctx.int("severity") ?? 6, 0), 7)
        let time: Timestamp
        if case .timestamp(let t)? = ctx.value("timestamp") { time = t } else { time = Timestamp(seconds: Date().timeIntervalSince1970) }
        var pairs: [(String, Value)] = []
        if case .dict(let d)? = ctx.value("args") { pairs = d.pairs }
        let line = format(priority: facility * 8 + severity, time: time,
                          hostname: ctx.string("source_hostname") ?? SystemInfo.shortHostName(ProcessInfo.processInfo.hostName),
                          app: ctx.string("app_name") ?? "quarry", procID: ctx.string("proc_id") ?? String(getpid()),
                          sdID: ctx.string("sd_id") ?? "quarry@32473", args: pairs, message: message)
        let port = UInt16(clamping: ctx.int("port") ?? 514)
        if let problem = send(Array(line.utf8.prefix(maxMessage)), to: host, port: port, tcp: proto == "tcp") {
            ctx.log(.warning, "rsyslog(): \(host):\(port): \(problem)")
            return .bool(false)
        }
        return .bool(true)
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - [SD] MSG`, with NILVALUE (-) for empty fields.
    static func format(priority: Int64, time: Timestamp, hostname: String, app: String, procID: String,
                       sdID: String, args: [(String, Value)], message: String) -> String {
        func field(_ text: String, _ limit: Int) -> String {
            let printable = String(text.unicodeScalars.filter { $0.value > 32 && $0.value < 127 }.map(Character.init).prefix(limit))
            return printable.isEmpty ? "-" : printable
        }
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "]", with: "\\]")
        }
        var data = "-"
        if !args.isEmpty {
            let params = args.map { key, value in
                let text = value.stringValue ?? JSONWriter.string(value.materialized())
                return field(key.filter { $0 != "=" && $0 != "\"" && $0 != "]" }, 32) + "=\"" + escaped(text) + "\""
            }
            data = "[" + field(sdID, 32) + " " + params.joined(separator: " ") + "]"
        }
        let stamp = JSONWriter.rfc3339(time)
        return "<\(priority)>1 \(stamp) \(field(hostname, 255)) \(field(app, 48)) \(field(procID, 128)) - \(data) \(message)"
    }

    /// Sends one message; nil on success, else why not.
    static func send(_ bytes: [UInt8], to host: String, port: UInt16, tcp: Bool) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return "cannot resolve" }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return String(cString: strerror(errno)) }
        let payload = tcp ? Array("\(bytes.count) ".utf8) + bytes : bytes
        var sent = 0
        while sent < payload.count {
            let n = payload[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return String(cString: strerror(errno)) }
            sent += n
        }
        return nil
    }
}
