import Foundation
import Testing
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// rsyslog() against real loopback UDP and TCP listeners.
@Suite struct SyslogTests {
    /// A bound loopback socket of `type` and its port.
    static func listener(_ type: Int32) -> (Int32, UInt16) {
        let fd = socket(AF_INET, type, 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    static func receive(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }

    @Test func udpMessageIsRFC5424() throws {
        let (fd, port) = Self.listener(Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        let rows = try Host.rows("""
            SELECT rsyslog(hostname='127.0.0.1', port=\(port), message='found it', facility=4, severity=2,
                           timestamp=timestamp(epoch=1700000000), source_hostname='box1', app_name='triage', proc_id='77',
                           sd_id='hit@32473', args=dict(Path='/tmp/a"b]', Size=3)) AS Sent
            FROM scope()
            """)
        #expect(Host.field(rows[0], "Sent")?.isTruthy == true)
        #expect(Self.receive(fd) == #"<34>1 2023-11-14T22:13:20Z box1 triage 77 - [hit@32473 Path="/tmp/a\"b\]" Size="3"] found it"#)
    }

    @Test func tcpMessageIsOctetCounted() throws {
        let (server, port) = Self.listener(Int32(SOCK_STREAM.rawValue))
        defer { close(server) }
        listen(server, 1)
        let rows = try Host.rows("SELECT rsyslog(hostname='127.0.0.1', port=\(port), protocol='tcp', message='hello', source_hostname='h', app_name='a', proc_id='1', timestamp=timestamp(epoch=0)) AS Sent FROM scope()")
        #expect(Host.field(rows[0], "Sent")?.isTruthy == true)
        let client = accept(server, nil, nil)
        defer { close(client) }
        let expected = "<14>1 1970-01-01T00:00:00Z h a 1 - - hello"
        #expect(Self.receive(client) == "\(expected.utf8.count) \(expected)")
    }

    @Test func refusedAndUnsupportedAreReported() throws {
        let (session, logger) = Host.session()
        let rows = try session.run("SELECT rsyslog(hostname='127.0.0.1', port=1, protocol='tcp', message='x') AS A, rsyslog(hostname='127.0.0.1', protocol='tls', message='x') AS B FROM scope()").last.flatMap { $0 } ?? []
        #expect(Host.field(rows[0], "A")?.isTruthy == false)
        #expect(Host.field(rows[0], "B")?.isTruthy == false)
        #expect(logger.messages.contains { $0.contains("refused") })
        #expect(logger.messages.contains { $0.contains("tls is not supported") })
    }
}
