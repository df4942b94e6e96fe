import Foundation
import Testing
import VQL
@testable import QuarryHost
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SocketTests {
    /// A listening TCP socket on 127.0.0.1 (kernel-chosen port).
    static func listen() -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        _ = Glibc.listen(fd, 5)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: bound.sin_port)))
    }

    @Test func findsOurListeningSocket() throws {
        let (fd, port) = Self.listen()
        defer { close(fd) }
        #expect(port > 0)
        for plugin in ["netstat", "connections"] {
            let rows = try Host.rows("SELECT * FROM \(plugin)() WHERE Laddr.Port = \(port) AND TypeString = 'tcp'")
            #expect(rows.count == 1)
            guard let row = rows.first else { continue }
            #expect(Host.string(row, "Status") == "LISTEN")
            #expect(Host.int(row, "Pid") == Int64(getpid()))
            #expect(Host.int(row, "Fd") == Int64(fd))
            #expect(Host.string(row, "FamilyString") == "IPv4")
            #expect(Host.int(row, "Family") == 2)
            #expect(Host.int(row, "Type") == 1)
            if case .dict(let laddr)? = Host.field(row, "Laddr") {
                #expect(laddr["IP"]?.stringValue == "127.0.0.1")
            } else {
                Issue.record("Laddr should be a dict")
            }
            for column in Sockets.columns {
                #expect(Host.field(row, column.name) != nil, "missing column \(column.name)")
            }
        }
    }

    @Test func establishedConnectionBothEnds() throws {
        let (server, port) = Self.listen()
        defer { close(server) }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        defer { close(client) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        let rows = try Host.rows("SELECT Status FROM netstat() WHERE Raddr.Port = \(port) AND Pid = getpid()")
        #expect(rows.compactMap { Host.string($0, "Status") } == ["ESTAB"])
    }

    @Test func addressFunctions() throws {
        let rows = try Host.rows("""
            SELECT ip(parse='::ffff:10.0.0.1') AS Mapped, ip(parse='2001:db8::0:1') AS V6, ip(parse='nope') AS Bad,
                   ip(netaddr4_le=16777343) AS LE,
                   cidr_contains(ip='10.1.2.3', ranges=['192.168.0.0/16', '10.0.0.0/8']) AS In,
                   cidr_contains(ip='11.1.2.3', ranges='10.0.0.0/8') AS Out,
                   cidr_contains(ip='fe80::1', ranges='fe80::/10') AS V6In
            FROM scope()
            """)
        guard let row = rows.first else {
            Issue.record("no row")
            return
        }
        #expect(Host.string(row, "Mapped") == "10.0.0.1")
        #expect(Host.string(row, "V6") == "2001:db8::1")
        #expect(Host.field(row, "Bad")?.isNull == true)
        #expect(Host.string(row, "LE") == "127.0.0.1")
        #expect(Host.field(row, "In")?.isTruthy == true)
        #expect(Host.field(row, "Out")?.isTruthy == false)
        #expect(Host.field(row, "V6In")?.isTruthy == true)
    }

    @Test func interfacesIncludeLoopback() throws {
        let rows = try Host.rows("SELECT * FROM interfaces()")
        let loopback = rows.first { Host.string($0, "Name") == "lo" }
        #expect(loopback != nil)
        if let loopback {
            #expect(Host.string(loopback, "Flags")?.contains("loopback") == true)
            let addresses = Host.field(loopback, "Addrs")?.listElements ?? []
            #expect(addresses.contains { Host.string($0, "IP") == "127.0.0.1" })
        }
    }
}
