import Foundation
import Testing
import VQL

@Suite struct PlistTests {
    /// fuzz-plist, second session: a binary plist with a dictionary inside a set crashed
    /// Foundation's reader (a SEGV, not an error); such files are now refused before it.
    @Test func aBinaryPlistHoldingASetIsRefusedNotACrash() throws {
        let bytes = try #require(Data(base64Encoded: "YnBsaXN0MDDYAQIDBAUGBwgJCgsMFRkaG1RCbG9iWAAAf0jP0Cv4VUxhYmVsVk5lc3RlZF8QEFByb2dyYW1Bcmd1bWVudHNVUmF0aW9ZUnVuQXRMb2FkVFdoZW5DAAH/EQ4QXxARY29tLmV4YW1wbGUuYWdlbnTBDQ5RYaQPEBESEAET//////////4TAAABAAAAAADRExRRYlF4oxYXGFcvYmluL3NoUi1jUmlkIz/gAAAAAAAACTNBPD94bWwAAAgZHictNEdNV1xgY3d6fIGDjJWYmpygqKuut7gAAAAAAAABAQAAAAAAAAAcAAAAAAAAAAAAAAAAAAAAwQ=="))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try bytes.write(to: URL(fileURLWithPath: dir + "/set.plist"))
        let (rows, log) = try detect("SELECT plist(file='\(dir)/set.plist') AS P FROM scope()")
        #expect(rows.count == 1)
        #expect(log.contains { $0.contains("holding a set") }, "\(log)")
    }

    /// Binary and XML plists written by Python's plistlib (an independent writer).
    static func writePlists() throws -> String {
        let directory = try temporaryDirectory()
        let status = try run("/usr/bin/python3", ["-c", """
            import plistlib, datetime, sys
            d = {'Name': 'quarry', 'Count': 7, 'Ratio': 0.25, 'On': True, 'Off': False, 'Blob': b'\\x00\\x01',
                 'When': datetime.datetime(2021, 5, 6, 7, 8, 9), 'Items': [1, 'two', {'three': 3}]}
            open(sys.argv[1] + '/b.plist', 'wb').write(plistlib.dumps(d, fmt=plistlib.FMT_BINARY))
            open(sys.argv[1] + '/x.plist', 'wb').write(plistlib.dumps(d, fmt=plistlib.FMT_XML))
            open(sys.argv[1] + '/list.plist', 'wb').write(plistlib.dumps([{'A': 1}, {'A': 2}], fmt=plistlib.FMT_BINARY))
            """, directory])
        #expect(status == 0)
        return directory
    }

    @Test func binaryAndXMLGiveTheSameValues() throws {
        let directory = try Self.writePlists()
        let (rows, log) = try detect("SELECT plist(file='\(directory)/b.plist') AS B, plist(file='\(directory)/x.plist') AS X FROM scope()")
        #expect(log.isEmpty, "\(log)")
        let b = try #require(rows.first?.member("B"))
        #expect(JSONWriter.string(b.materialized()) == JSONWriter.string(rows.first?.member("X").materialized() ?? .null))
        #expect(b.member("Name").stringValue == "quarry")
        #expect(b.member("Count").intValue == 7)
        #expect(b.member("Ratio").doubleValue == 0.25)
        #expect(b.member("On").isTruthy && !b.member("Off").isTruthy)
        #expect(b.member("Blob").byteValue == [0, 1])
        #expect(JSONWriter.string(b.member("When")) == "\"2021-05-06T07:08:09Z\"")
        #expect(b.member("Items").listElements?.count == 3)
        #expect(b.materialized().member("Blob").byteValue == [0, 1])
        if case .dict(let d) = b { #expect(d.keys == d.keys.sorted(), "keys come out sorted") }
        let (listRows, _) = try detect("SELECT A FROM plist(file=['\(directory)/list.plist', '\(directory)/x.plist'])")
        #expect(listRows.compactMap { $0.member("A").intValue } == [1, 2], "an array's elements are rows")
        #expect(listRows.count == 3)
    }

    @Test func fuzzAndCycles() throws {
        let directory = try Self.writePlists()
        let sample = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/b.plist")))
        let session = detectSession()
        var random = SeededRandom(seed: 0x9115)
        for _ in 0..<FuzzBudget.iterations {
            let results = try session.run("SELECT plist(accessor='data', file=unhex(string='\(hex(random.mutate(sample)))')) AS P FROM scope()")
            _ = JSONWriter.string(Value.list((results.last ?? nil) ?? []).materialized())
        }
        // A binary plist whose one array contains itself (object 0 = array [ref 0]).
        var cyclic = Array("bplist00".utf8) + [0xA1, 0x00] // object 0 at offset 8
        cyclic += [8] // offset table: object 0 at 8
        var trailer = [UInt8](repeating: 0, count: 6) + [1, 1]
        trailer += [0, 0, 0, 0, 0, 0, 0, 1] // one object
        trailer += [0, 0, 0, 0, 0, 0, 0, 0] // top object 0
        trailer += [0, 0, 0, 0, 0, 0, 0, 10] // offset table at 10
        cyclic += trailer
        let start = Date()
        let (rows, _) = try detect("SELECT plist(accessor='data', file=unhex(string='\(hex(cyclic))')) AS P FROM scope()")
        #expect(rows.count == 1)
        #expect(Date().timeIntervalSince(start) < 10)
    }
}

@Suite struct EFIVariablesTests {
    @Test func variablesFromAFolderLikeEfivarfs() throws {
        let folder = try temporaryDirectory()
        let secureBoot: [UInt8] = [6, 0, 0, 0, 1]
        try Data(secureBoot).write(to: URL(fileURLWithPath: folder + "/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"))
        try Data([7, 0, 0, 0, 0xAA, 0xBB]).write(to: URL(fileURLWithPath: folder + "/db-d719b2cb-3d3a-4596-a3bc-dad00e67656f"))
        try Data([1]).write(to: URL(fileURLWithPath: folder + "/not-a-variable"))
        let (rows, log) = try detect("SELECT * FROM efivariables(value=TRUE)") { session in
            session.context.setService("efivariables.folder", folder)
        }
        #expect(log.isEmpty, "\(log)")
        #expect(rows.count == 2)
        let db = try #require(rows.first { $0.member("Name").stringValue == "db" })
        #expect(db.member("Name").stringValue == "db")
        #expect(db.member("Namespace").stringValue == "{d719b2cb-3d3a-4596-a3bc-dad00e67656f}")
        #expect(db.member("Attributes").intValue == 7)
        #expect(db.member("Size").intValue == 2)
        #expect(db.member("Value").byteValue == [7, 0, 0, 0, 0xAA, 0xBB])
        let (filtered, _) = try detect("SELECT Name, Value FROM efivariables(namespace='{8BE4DF61-93CA-11D2-AA0D-00E098032B8C}', name='SecureBoot')") { session in
            session.context.setService("efivariables.folder", folder)
        }
        #expect(filtered.count == 1)
        #expect(filtered.first?.member("Value").isNull == true, "no value unless asked")
    }
}

@Suite struct AuditdTests {
    static let log = """
        type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=4242 auid=1000 uid=0 comm="curl" exe="/usr/bin/curl" key="exec"\u{1d}ARCH=x86_64 SYSCALL=execve UID="root"
        type=EXECVE msg=audit(1700000000.123:42): argc=3 a0="curl" a1="-o" a2=2F746D702F78
        type=CWD msg=audit(1700000000.123:42): cwd="/root"
        type=PATH msg=audit(1700000000.123:42): item=0 name="/usr/bin/curl" inode=1 nametype=NORMAL
        type=PROCTITLE msg=audit(1700000000.123:42): proctitle=6375726C002D6F002F746D702F78
        type=EOE msg=audit(1700000000.123:42):
        node=web1 type=USER_LOGIN msg=audit(1700000100.000:43): pid=10 uid=0 auid=1000 ses=3 msg='op=login acct="alice" exe="/usr/sbin/sshd" hostname=? addr=10.0.0.9 terminal=/dev/pts/0 res=failed'
        """

    @Test func eventsJoinTheirRecords() throws {
        let path = try writeTemporary(Array(Self.log.utf8), name: "audit.log")
        let (rows, log) = try detect("SELECT * FROM parse_auditd(filename='\(path)')")
        #expect(log.isEmpty, "\(log)")
        #expect(rows.count == 2)
        let exec = try #require(rows.first)
        #expect(exec.member("Type").stringValue == "SYSCALL")
        #expect(exec.member("Sequence").intValue == 42)
        #expect(JSONWriter.string(exec.member("Timestamp")) == "\"2023-11-14T22:13:20.123Z\"")
        #expect(exec.member("Result").stringValue == "success")
        #expect(exec.member("Data").member("comm").stringValue == "curl")
        #expect(exec.member("Args").listElements?.compactMap(\.stringValue) == ["curl", "-o", "/tmp/x"], "hex arguments decoded")
        #expect(exec.member("Paths").listElements?.compactMap(\.stringValue) == ["/usr/bin/curl"])
        #expect(exec.member("Records").listElements?.count == 6)
        let login = try #require(rows.last)
        #expect(login.member("Node").stringValue == "web1")
        #expect(login.member("Result").stringValue == "fail")
        #expect(login.member("Data").member("acct").stringValue == "alice")
    }

    @Test func fuzzAndHugeLines() throws {
        let session = detectSession()
        var random = SeededRandom(seed: 0xA0D)
        let sample = Array(Self.log.utf8)
        for _ in 0..<FuzzBudget.iterations {
            let results = try session.run("SELECT * FROM parse_auditd(accessor='data', filename=unhex(string='\(hex(random.mutate(sample)))'))")
            _ = JSONWriter.string(Value.list((results.last ?? nil) ?? []).materialized())
        }
        // One 8 MiB line without a newline, and many events that never end.
        var big = Array("type=SYSCALL msg=audit(1.0:1): comm=".utf8) + [UInt8](repeating: 0x41, count: 8 << 20)
        for i in 0..<5000 { big += Array("\ntype=PATH msg=audit(2.0:\(i)): name=\"x\"".utf8) }
        let path = try writeTemporary(big)
        let (rows, _) = try detect("SELECT count() AS N FROM parse_auditd(filename='\(path)', buffer_size=1024) GROUP BY 1")
        #expect(rows.first?.member("N").intValue == 5001)
    }
}

@Suite struct YaraLintAndSQLTests {
    @Test func lintKeepsGoodRulesAddsImportsAndStripsMeta() throws {
        let rules = #"""
            include "/etc/passwd"
            // a comment with rule inside { braces }
            private rule Helper : tag1 { strings: $h = { 4D 5A ?? [2-4] 90 } condition: $h }
            rule UsesHelper { meta: author = "x { y }" strings: $r = /ab{2}c/ condition: Helper and $r }
            rule NeedsPE { meta: note = "pe" condition: pe.number_of_sections > 1 }
            rule Broken { condition: no_such_identifier }
            rule UsesHelper { condition: true }
            """#
        let (rows, log) = try detect("SELECT yara_lint(rules='''\(rules)''') AS Linted, yara_lint(rules='''\(rules)''', clean=TRUE) AS Clean FROM scope()")
        let linted = try #require(rows.first?.member("Linted").stringValue)
        #expect(linted.hasPrefix("import \"pe\"\n"))
        #expect(linted.contains("private rule Helper : tag1"))
        #expect(linted.contains("rule UsesHelper { meta:"))
        #expect(linted.contains("rule NeedsPE"))
        #expect(!linted.contains("Broken"))
        #expect(!linted.contains("include"))
        #expect(log.contains { $0.contains("Broken") && $0.contains("no_such_identifier") }, "\(log)")
        #expect(log.contains { $0.contains("duplicate") }, "\(log)")
        let clean = try #require(rows.first?.member("Clean").stringValue)
        #expect(!clean.contains("meta:") && !clean.contains("author"))
        // Both outputs compile as they are.
        let (scan, scanLog) = try detect("SELECT Rule FROM yara(rules='''\(clean)''', accessor='data', files='xxabbcxx')")
        #expect(!scanLog.contains { $0.hasPrefix("ERROR") }, "\(scanLog)")
        #expect(scan.isEmpty, "Helper needs MZ at a hex string, so nothing matches plain text")
    }

    @Test func sqlOnASQLiteFile() throws {
        let path = try temporaryDirectory() + "/t.db"
        try run("/usr/bin/sqlite3", [path, "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'x'), (2, 'y');"])
        let (rows, log) = try detect("SELECT * FROM sql(driver='sqlite', file='\(path)', query='SELECT b FROM t WHERE a > ?', args=[1])")
        #expect(log.isEmpty, "\(log)")
        #expect(rows.compactMap { $0.member("b").stringValue } == ["y"])
        let (none, errors) = try detect("SELECT * FROM sql(driver='mysql', connstring='x', query='SELECT 1')")
        #expect(none.isEmpty)
        #expect(errors.contains { $0.hasPrefix("ERROR: sql") })
    }
}
