import Foundation
import Testing

@testable import FleetCore
@testable import FleetPostgres

/// The URL forms `PostgresFleetStore` accepts.
@Suite struct PostgresURLTests {
    @Test func tcpForm() throws {
        let url = try PostgresURL("postgres://quarry:s%40cret@db.example.com:6543/fleet")
        #expect(url.endpoint == .tcp(host: "db.example.com", port: 6543))
        #expect(url.user == "quarry" && url.password == "s@cret" && url.database == "fleet")
        #expect(url.tls == .prefer)

        let defaults = try PostgresURL("postgresql://alice@localhost/")
        #expect(defaults.endpoint == .tcp(host: "localhost", port: 5432))
        #expect(defaults.password == nil)
        #expect(defaults.database == "alice")

        let ipv6 = try PostgresURL("postgres://bob@[::1]:5433/db?sslmode=disable")
        #expect(ipv6.endpoint == .tcp(host: "::1", port: 5433))
        #expect(ipv6.tls == .disable)
    }

    @Test func unixSocketForm() throws {
        let url = try PostgresURL("postgres:///fleet?host=/var/run/postgresql&user=quarry")
        #expect(url.endpoint == .unixSocket(path: "/var/run/postgresql/.s.PGSQL.5432"))
        #expect(url.user == "quarry" && url.database == "fleet")
        let port = try PostgresURL("postgres:///fleet?host=/tmp/pg/&port=6000")
        #expect(port.endpoint == .unixSocket(path: "/tmp/pg/.s.PGSQL.6000"))
        #expect(port.user == "postgres")
    }

    @Test func sameServerOtherDatabase() throws {
        for text in ["postgres://u:p%2Fw@h:7/a?sslmode=require", "postgres:///a?host=/tmp/s%20d&user=u&port=9"] {
            let url = try PostgresURL(text)
            var other = try PostgresURL(url.url(database: "b"))
            #expect(other.database == "b")
            other.database = url.database
            #expect(other == url)
        }
    }

    @Test(arguments: [
        "mysql://u@h/db", "postgres:///db", "postgres://u@h/db?sslmode=maybe", "postgres://u@h/db?port=x",
        "postgres://u@h/db?colour=blue", "postgres://u@h/a/b", "not a url at all",
    ])
    func malformedURLsAreRejected(_ text: String) {
        #expect(throws: StoreError.self) { try PostgresURL(text) }
        #expect(throws: StoreError.self) { try PostgresFleetStore(url: text) }
    }

    @Test func errorsDoNotShowThePassword() {
        let error = #expect(throws: StoreError.self) { try PostgresURL("postgres://u:hunter2@/db") }
        #expect(error?.message.contains("hunter2") == false)
    }
}
