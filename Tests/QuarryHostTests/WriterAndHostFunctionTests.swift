import Foundation
import Testing
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// write_jsonl/write_csv write real files (0600) and pass rows through; host() asks the real
/// resolver; sysinfo() is info()'s row.
@Suite struct WriterAndHostFunctionTests {
    @Test func writeJSONLPassesRowsThroughAndWritesA0600File() throws {
        let dir = Host.temporaryDirectory("writers")
        defer { Host.cleanup(dir) }
        let path = dir + "/out.jsonl"
        let rows = try Host.rows("SELECT * FROM write_jsonl(filename=\(Host.quoted(path)), query={ SELECT * FROM range(end=3) })")
        #expect(rows.map { JSONWriter.string($0) } == [#"{"_value":0}"#, #"{"_value":1}"#, #"{"_value":2}"#])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"_value\":0}\n{\"_value\":1}\n{\"_value\":2}\n")
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        // append=TRUE adds; the default replaces.
        _ = try Host.rows("SELECT * FROM write_jsonl(filename=\(Host.quoted(path)), append=TRUE, query={ SELECT 'x' AS A FROM scope() })")
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix("{\"_value\":2}\n{\"A\":\"x\"}\n"))
    }

    @Test func writeCSVQuotesFields() throws {
        let dir = Host.temporaryDirectory("writers")
        defer { Host.cleanup(dir) }
        let path = dir + "/out.csv"
        let rows = try Host.rows("""
            SELECT * FROM write_csv(filename=\(Host.quoted(path)), query={
              SELECT 1 AS N, 'a,b' AS T, 'say "hi"' AS Q, [1, 2] AS L, NULL AS Z FROM scope() })
            """)
        #expect(rows.count == 1)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "N,T,Q,L,Z\n1,\"a,b\",\"say \"\"hi\"\"\",\"[1,2]\",\n")
    }

    @Test func writersReportUnwritablePaths() throws {
        let (session, logger) = Host.session()
        let results = try session.run("SELECT * FROM write_jsonl(filename='/nonexistent-dir/x.jsonl', query={ SELECT 1 AS A FROM scope() })")
        #expect((results.last ?? nil)?.isEmpty == true)
        #expect(logger.messages.contains { $0.hasPrefix("ERROR") && $0.contains("cannot open") })
        let other = try session.run("SELECT * FROM write_csv(filename='x.csv', accessor='zip', query={ SELECT 1 AS A FROM scope() })")
        #expect((other.last ?? nil)?.isEmpty == true)
        #expect(logger.messages.contains { $0.contains("accessor 'zip'") })
    }

    @Test func hostResolvesLocalhost() throws {
        let rows = try Host.rows("SELECT host(name='localhost') AS A, host(name='localhost', type='A4') AS V4, host(name='no-such-host.invalid') AS N FROM scope()")
        guard let row = rows.first, case .list(let all)? = Host.field(row, "A"), case .list(let v4)? = Host.field(row, "V4") else {
            Issue.record("no rows")
            return
        }
        #expect(all.contains { $0.stringValue == "127.0.0.1" || $0.stringValue == "::1" })
        #expect(v4.allSatisfy { $0.stringValue?.contains(".") == true })
        #expect(Host.field(row, "N").map { JSONWriter.string($0) } == "[]")
    }

    @Test func sysinfoIsInfosRow() throws {
        let rows = try Host.rows("SELECT sysinfo().OS AS OS, sysinfo().Hostname = Hostname AS Same FROM info()")
        #expect(rows.map { JSONWriter.string($0) } == [#"{"OS":"linux","Same":true}"#])
    }
}

/// ip() values print as their address and answer Go's net.IP predicates.
@Suite struct IPObjectTests {
    @Test func predicates() throws {
        let rows = try Host.rows("""
            SELECT ip(parse='0:0:0:0:0:FFFF:129.144.52.38') AS Mapped, ip(parse='192.168.1.2').IsPrivate AS P,
                   ip(parse='8.8.8.8').IsPrivate AS NP, ip(parse='127.0.0.1').IsLoopback AS L, ip(parse='fe80::1').IsLinkLocalUnicast AS LL,
                   ip(parse='fd00::1').IsPrivate AS ULA, ip(parse='224.0.0.1').IsMulticast AS M, ip(parse='8.8.8.8').IsGlobalUnicast AS G,
                   ip(parse='0.0.0.0').IsUnspecified AS U, ip(parse='10.1.2.3') = '10.1.2.3' AS Eq
            FROM scope()
            """)
        #expect(rows.map { JSONWriter.string($0) } == [
            #"{"Mapped":"129.144.52.38","P":true,"NP":false,"L":true,"LL":true,"ULA":true,"M":true,"G":true,"U":true,"Eq":true}"#
        ])
    }
}

/// info() as a function, cache_dns() feeding host() (pskill() is QuarryResponse's).
@Suite struct HostControlTests {
    @Test func infoFunctionMatchesThePlugin() throws {
        let rows = try Host.rows("SELECT info().OS AS OS, info().Hostname = Hostname AS Same FROM info()")
        #expect(Host.string(rows[0], "OS") == "linux")
        #expect(Host.field(rows[0], "Same")?.isTruthy == true)
    }

    @Test func cacheDNSAnswersHost() throws {
        let rows = try Host.rows("""
            SELECT cache_dns(name='Intranet.Example', ip='10.1.2.3') AS Cached,
                   host(name='intranet.example') AS Resolved, host(name='localhost', tracker_only=TRUE) AS Untracked,
                   cache_dns(name='x.example', ip='not-an-ip') AS Bad
            FROM scope()
            """)
        #expect(Host.field(rows[0], "Cached")?.isTruthy == true)
        #expect(Host.field(rows[0], "Resolved").map { JSONWriter.string($0) } == #"["10.1.2.3"]"#)
        #expect(Host.field(rows[0], "Untracked").map { JSONWriter.string($0) } == "[]")
        #expect(Host.field(rows[0], "Bad")?.isTruthy == false)
    }
}
