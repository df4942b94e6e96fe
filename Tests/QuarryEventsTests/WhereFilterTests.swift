import Testing
import VQL
@testable import QuarryEvents

/// The kernel filter a watch_ebpf WHERE gives: never narrower than the WHERE itself.
@Suite struct WhereFilterTests {
    private func filter(_ text: String) throws -> WhereFilter {
        guard case .select(let select)? = try Parser.parse(text).first, let condition = select.whereClause else { return WhereFilter() }
        return WhereFilter(ColumnConstraints.extract(condition, aliases: []))
    }

    @Test func eventsProcessesUsersAndPathsComeFromTheWhere() throws {
        let f = try filter("""
            SELECT * FROM watch_ebpf(events=['sched_process_exec', 'security_file_open'])
            WHERE System.EventName IN ('security_file_open', 'x') AND System.ProcessName = 'cat'
              AND System.UserID = 0 AND EventData.pathname =~ '(?-i)^/etc/pass'
            """)
        #expect(f == WhereFilter(eventNames: ["security_file_open", "x"], comms: ["cat"], uids: [0], pathPrefixes: ["/etc/pass"]))
    }

    @Test func regexPrefixesAreLiteralAnchoredAndEveryCase() {
        #expect(WhereFilter.prefixes(ofRegex: "^/etc/") == ["/etc/", "/etC/", "/eTc/", "/eTC/", "/Etc/", "/EtC/", "/ETc/", "/ETC/"])
        // Past eight variants the prefix is cut (a shorter prefix lets more through, never less).
        #expect(WhereFilter.prefixes(ofRegex: "^/etc/passwd")?.allSatisfy { $0.count == 5 } == true)
        #expect(WhereFilter.prefixes(ofRegex: "^/1/2\\.x")?.count == 2)
        #expect(WhereFilter.prefixes(ofRegex: "(?-i)^/tmp/a.b") == ["/tmp/a"])
        #expect(WhereFilter.prefixes(ofRegex: "(?-i)^/tmp/ab?") == ["/tmp/a"])
        #expect(WhereFilter.prefixes(ofRegex: "(?-i)^/tmp/ab+") == ["/tmp/ab"])
        #expect(WhereFilter.prefixes(ofRegex: "(?-i)^/tmp/\\d") == ["/tmp/"])
        for loose in ["/etc/", "^/etc/|^/usr/", "^.x", "(?i)^/etc", "^(a|b)"] {
            #expect(WhereFilter.prefixes(ofRegex: loose) == nil, "\(loose)")
        }
    }

    @Test func conditionsThatCannotBeMadeSafeAreIgnored() throws {
        #expect(try filter("SELECT * FROM watch_ebpf(events='x') WHERE System.UserID = 'root'") == WhereFilter())
        #expect(try filter("SELECT * FROM watch_ebpf(events='x') WHERE EventData.pathname =~ '^memfd:'") == WhereFilter())
        #expect(try filter("SELECT * FROM watch_ebpf(events='x') WHERE System.EventName = 1") == WhereFilter())
        #expect(try filter("SELECT * FROM watch_ebpf(events='x') WHERE System.ProcessName =~ '^bash'") == WhereFilter())
    }
}
