import Foundation
import Testing
import VQL
@testable import QuarryDetect

/// index() and index_search() over a real on-disk index: Velociraptor's example (files' text
/// indexed, then searched by word), field scopes, stemming, ranges, required and excluded
/// clauses, sorting, and what goes wrong with bad input.
@Suite struct IndexTests {
    static let rows = """
        LET Rows = SELECT * FROM chain(
          a={ SELECT 'web1' AS Host, 'sshd accepted password for root' AS Message, 22 AS Port, 'sshd' AS Name, dict(Name='sshd', Pid=10) AS Process FROM scope() },
          b={ SELECT 'web2' AS Host, 'cron rotated the syslog files' AS Message, 0 AS Port, 'cron' AS Name, dict(Name='cron', Pid=20) AS Process FROM scope() },
          c={ SELECT 'db1' AS Host, 'syslog daemon restarted by root' AS Message, 514 AS Port, 'rsyslogd' AS Name, dict(Name='rsyslogd', Pid=30) AS Process FROM scope() })
        """

    func build(_ folder: String, extra: String = "") throws -> [Value] {
        let (rows, log) = try detect(Self.rows + "\nSELECT * FROM index(query=Rows, output='\(folder)', mapping=dict(Port='number', Name='keyword')\(extra))")
        #expect(log.isEmpty, "\(log)")
        return rows
    }

    func search(_ folder: String, _ text: String, _ extra: String = "") throws -> ([String], [String]) {
        let (rows, log) = try detect("SELECT * FROM index_search(path='\(folder)', search='\(text)'\(extra))")
        return (rows.compactMap { $0.member("Host").stringValue }, log)
    }

    @Test func rowsAreIndexedAndFoundByWordsFieldsAndRanges() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = dir + "/ix"
        let passed = try build(folder)
        #expect(passed.count == 3, "index() passes the rows on")
        var mode = stat()
        #expect(stat(folder + "/" + IndexStore.fileName, &mode) == 0 && mode.st_mode & 0o777 == 0o600)
        // A word anywhere; stemming finds "rotated" from "rotate"; case does not matter.
        #expect(Set(try search(folder, "syslog").0) == ["web2", "db1"])
        #expect(try search(folder, "ROTATE").0 == ["web2"])
        // Field scope, nested fields by dotted name, keyword fields match whole values only.
        #expect(try search(folder, "Host:db1").0 == ["db1"])
        #expect(try search(folder, "Process.Name:cron").0 == ["web2"])
        #expect(try search(folder, "Name:rsyslogd").0 == ["db1"])
        #expect(try search(folder, "Name:rsys").0.isEmpty)
        #expect(try search(folder, "Name:rsys*").0 == ["db1"])
        // Phrases keep their order.
        #expect(try search(folder, "\"accepted password\"").0 == ["web1"])
        #expect(try search(folder, "\"password accepted\"").0.isEmpty)
        // Numbers compare; required and excluded clauses.
        #expect(Set(try search(folder, "Port:>=22").0) == ["web1", "db1"])
        #expect(try search(folder, "+root -sshd").0 == ["db1"])
        #expect(try search(folder, "+syslog +Port:<100").0 == ["web2"])
        // The best match first: both words beat one.
        #expect(try search(folder, "syslog root").0.first == "db1")
        // sort=, start= and fields=.
        #expect(try search(folder, "Port:>=0", ", sort='-Port'").0 == ["db1", "web1", "web2"])
        #expect(try search(folder, "Port:>=0", ", sort='Port', start=1").0 == ["web1", "db1"])
        let (picked, _) = try detect("SELECT * FROM index_search(path='\(folder)', search='Host:web1', fields='Host,Process.Pid')")
        #expect(picked.first?.member("Host").stringValue == "web1")
        #expect(picked.first?.member("Process.Pid").intValue == 10)
        #expect(picked.first?.member("Message").isNull == true)
        // A second index() call adds; purge starts again.
        _ = try build(folder)
        #expect(try search(folder, "Host:web1").0.count == 2)
        _ = try build(folder, extra: ", purge=TRUE, silent=TRUE")
        #expect(try search(folder, "Host:web1").0.count == 1)
        // A whole row comes back as it went in.
        let (whole, _) = try detect("SELECT * FROM index_search(path='\(folder)', search='Host:web2')")
        #expect(whole.first?.member("Process").member("Pid").intValue == 20)
        #expect(whole.first?.member("Port").intValue == 0)
    }

    @Test func badSearchesAndFoldersAreErrors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try build(dir + "/ix")
        for (text, expected) in [("\"open", "not closed"), ("Port:>many", "needs a number"), ("   ", "empty")] {
            let (hits, log) = try search(dir + "/ix", text)
            #expect(hits.isEmpty)
            #expect(log.contains { $0.contains(expected) }, "\(text): \(log)")
        }
        let (_, missing) = try search(dir + "/none", "x")
        #expect(missing.contains { $0.contains("no index") }, "\(missing)")
        _ = FileManager.default.createFile(atPath: dir + "/plain", contents: Data("x".utf8))
        let (_, file) = try detect("SELECT * FROM index(query={ SELECT 1 AS A FROM scope() }, output='\(dir)/plain')")
        #expect(file.contains { $0.contains("is a file") }, "\(file)")
        let (_, mapping) = try detect("SELECT * FROM index(query={ SELECT 1 AS A FROM scope() }, output='\(dir)/m', mapping=dict(A='colour'))")
        #expect(mapping.contains { $0.contains("mapping of A") }, "\(mapping)")
        // Search text cannot reach SQL or FTS syntax: quotes, operators and NUL are just characters.
        for hostile in ["a\" OR \"b", "NEAR(x y)", "x\u{0}y", "Host:'; DROP TABLE docs; --"] {
            let escaped = hostile.replacingOccurrences(of: "'", with: "\\'")
            _ = try? detect("SELECT * FROM index_search(path='\(dir)/ix', search='\(escaped)')")
        }
        #expect(try search(dir + "/ix", "Host:web1").0 == ["web1"])
    }

    @Test func queryStringsParse() throws {
        let query = try IndexQuery.parse("+Host:web1 -\"bad thing\" Port:>=10 pre* plain")
        #expect(query.clauses == [
            .init(occurrence: .must, field: "Host", match: .text("web1", prefix: false)),
            .init(occurrence: .mustNot, field: nil, match: .text("bad thing", prefix: false)),
            .init(occurrence: .should, field: "Port", match: .compare(">=", 10)),
            .init(occurrence: .should, field: nil, match: .text("pre", prefix: true)),
            .init(occurrence: .should, field: nil, match: .text("plain", prefix: false)),
        ])
        #expect(IndexQuery.ftsExpression("a\"b c", prefix: true) == "\"a b c\" *")
        #expect(IndexQuery.ftsExpression("--", prefix: false) == nil)
        // Only exclusions match nothing; required beats alternatives.
        let exclusions = try IndexQuery.parse("-a")
        #expect(exclusions.combine([[1, 2]]).isEmpty)
        let mixed = try IndexQuery.parse("+a b")
        #expect(mixed.combine([[1, 2], [2, 3]]).map(\.0) == [2, 1])
    }
}
