import Foundation
import QuarryDetect
import QuarryHost
import Testing
import VQL

/// Runs VQL with the core and detection plugins; returns the last SELECT's rows and the log.
func detect(_ text: String, setup: (Session) -> Void = { _ in }) throws -> (rows: [Value], log: [String]) {
    let registry = CoreLibrary.registry()
    registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
    registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
    let logger = MemoryLogger()
    let session = Session(registry: registry, logger: logger)
    setup(session)
    let results = try session.run(text)
    return ((results.last ?? nil) ?? [], logger.messages)
}

func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-detect-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct YaraTests {
    let rule = """
        rule Marker : evil { meta: author = "quarry" score = 7 strings: $m = "QUARRY-MARKER-1234" condition: $m }
        """

    @Test func matchesNearTheEndOfA200MBFileAndNotInACleanOne() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let big = dir + "/big.bin"
        let clean = dir + "/clean.bin"
        let chunk = Data(repeating: 0x41, count: 1 << 20)
        _ = FileManager.default.createFile(atPath: big, contents: nil)
        _ = FileManager.default.createFile(atPath: clean, contents: nil)
        let b = try #require(FileHandle(forWritingAtPath: big))
        let c = try #require(FileHandle(forWritingAtPath: clean))
        for _ in 0..<200 {
            b.write(chunk)
            c.write(chunk)
        }
        b.write(Data("xxQUARRY-MARKER-1234yy".utf8))
        try b.close()
        try c.close()
        let (rows, log) = try detect("SELECT Rule, Tags, Meta.score AS Score, String.Offset AS Offset, FileName FROM yara(rules=Rules, files=[Big, Clean], blocksize=16777216)") {
            $0.root.set("Rules", .string(rule))
            $0.root.set("Big", .string(big))
            $0.root.set("Clean", .string(clean))
        }
        #expect(rows.count == 1, "\(log)")
        #expect(JSONWriter.string(rows.first ?? .null) == #"{"Rule":"Marker","Tags":["evil"],"Score":7,"Offset":209715202,"FileName":"\#(big)"}"#)
    }

    @Test func matchAcrossABlockBoundaryIsFound() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/boundary.bin"
        var data = Data(repeating: 0x42, count: 1_000_000 - 5)
        data.append(Data("QUARRY-MARKER-1234".utf8))
        data.append(Data(repeating: 0x42, count: 1000))
        _ = FileManager.default.createFile(atPath: path, contents: data)
        let (rows, _) = try detect("SELECT String.Offset AS O FROM yara(rules=Rules, files=F, blocksize=1000000)") {
            $0.root.set("Rules", .string(rule))
            $0.root.set("F", .string(path))
        }
        #expect(rows.map { JSONWriter.string($0) } == [#"{"O":999995}"#])
    }

    @Test func listShorthandContextAndEndLimit() throws {
        let (rows, _) = try detect("SELECT String.Name AS N, String.Offset AS O, String.HexData AS H FROM yara(rules=['needle'], accessor='data', files='hay needle hay NEEDLE', context=2, number=10)")
        #expect(rows.count == 2)
        #expect(JSONWriter.string(rows[0]).contains(#""O":4"#))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/f", contents: Data("0123456789 needle".utf8))
        let (limited, _) = try detect("SELECT * FROM yara(rules=['needle'], files=F, end=10)") { $0.root.set("F", .string(dir + "/f")) }
        #expect(limited.isEmpty)
    }

    /// yarax(): Velociraptor's YARA-X arguments; vars= become the rules' external variables, each
    /// set of values its own compiled rules.
    @Test func yaraxTakesExternalVariables() throws {
        let rule = "rule Sized { strings: $a = \"quarry\" condition: $a and filesize > Min and Tag == \"x\" }"
        let (rows, log) = try detect("""
            SELECT FileName, Rule, String.Offset AS Offset FROM yarax(rules=R, vars=dict(Min=3, Tag='x'), accessor='data',
                files=['hello quarry', 'no hit here'], dll_path='unused', key='k')
            """) { $0.root.set("R", .string(rule)) }
        #expect(log.isEmpty, "\(log)")
        #expect(rows.map { $0.member("Rule").stringValue } == ["Sized"])
        #expect(rows.first?.member("Offset").intValue == 6)
        let (none, _) = try detect("SELECT * FROM yarax(rules=R, vars=dict(Min=100, Tag='x'), accessor='data', files='hello quarry')") {
            $0.root.set("R", .string(rule))
        }
        #expect(none.isEmpty)
        // An undefined external is libyara's compile error, named.
        let (_, missing) = try detect("SELECT * FROM yarax(rules=R, accessor='data', files='hello quarry')") { $0.root.set("R", .string(rule)) }
        #expect(missing.contains { $0.contains("Min") }, "\(missing)")
    }

    @Test func compileErrorsNameTheLineAndBadFilesAreLogged() throws {
        let (rows, log) = try detect("SELECT * FROM yara(rules='rule A {\n condition:\n nope }', files='/etc/hostname')")
        #expect(rows.isEmpty)
        #expect(log.contains { $0.contains("line 3") && $0.contains("nope") })
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        mkfifo(dir + "/fifo", 0o600)
        let (none, log2) = try detect("SELECT * FROM yara(rules=['x'], files=[F, '/dev/zero', '/no/such/file'])") { $0.root.set("F", .string(dir + "/fifo")) }
        #expect(none.isEmpty)
        #expect(log2.filter { $0.contains("yara:") }.count == 3)
    }

    /// Files scanned on several threads: rows come in files= order by default (whatever order the
    /// scans end in), the same rows as one thread; ordered=false gives the same rows in any order.
    @Test func workersKeepFilesOrderByDefault() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files: [Value] = []
        for i in 0..<60 {
            let path = dir + "/f\(i)"
            // Uneven sizes, so later files often finish before earlier ones.
            var data = Data(repeating: 0x41, count: (i % 7) * 300_000)
            if i % 3 != 1 { data.append(Data("QUARRY-MARKER-1234".utf8)) }
            _ = FileManager.default.createFile(atPath: path, contents: data)
            files.append(.string(path))
        }
        func run(_ extra: String) throws -> [String] {
            let (rows, log) = try detect("SELECT FileName FROM yara(rules=Rules, files=Files\(extra))") {
                $0.root.set("Rules", .string(rule))
                $0.root.set("Files", .list(files))
            }
            #expect(!log.contains { $0.contains("yara") }, "\(log)")
            return rows.compactMap { $0.member("FileName").stringValue }
        }
        let expected = files.enumerated().filter { $0.offset % 3 != 1 }.compactMap { $0.element.stringValue }
        #expect(try run(", workers=1") == expected)
        #expect(try run(", workers=4") == expected)
        #expect(try run("") == expected)
        #expect(try run(", workers=4, ordered=false").sorted() == expected.sorted())
        let (first, _) = try detect("SELECT FileName FROM yara(rules=Rules, files=Files, workers=3) LIMIT 2") {
            $0.root.set("Rules", .string(rule))
            $0.root.set("Files", .list(files))
        }
        #expect(first.compactMap { $0.member("FileName").stringValue } == Array(expected.prefix(2)))
    }

    @Test func procYaraFindsAMarkerInAChildProcessMemory() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // The marker is assembled at run time, so only the heap of the child holds it whole.
        // It says so once the marker is built: a fixed sleep was too short when other tests load the machine.
        process.arguments = ["python3", "-c", "import sys, time; m = 'QUARRY-PROC-' + 'MARKER-' + str(4321); print('ready', flush=True); time.sleep(30)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        defer { process.terminate() }
        _ = pipe.fileHandleForReading.availableData
        let (rows, log) = try detect("SELECT Rule, Pid, String.Data AS D, Region.Perms AS Perms FROM proc_yara(pid=P, rules=['QUARRY-PROC-MARKER-4321'])") {
            $0.root.set("P", .int(Int64(process.processIdentifier)))
        }
        #expect(!rows.isEmpty, "\(log)")
        #expect(rows.allSatisfy { $0.member("Pid").intValue == Int64(process.processIdentifier) })
        #expect(rows.contains { $0.member("D").stringValue == "QUARRY-PROC-MARKER-4321" })
    }
}

@Suite struct MagicAndSQLiteTests {
    /// Velociraptor's local hash database is written with sqlite(): a changing statement runs on
    /// the file itself with FILESYSTEM_WRITE (creating it 0600), and is refused without it, through
    /// a symbolic link, or on a copy.
    @Test func sqliteWritesOnlyWithWritePermissionToTheFileItself() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/hashdb.sqlite"
        let (_, created) = try detect("""
            LET _ <= SELECT * FROM sqlite(file=F, query='CREATE TABLE IF NOT EXISTS hashes(path text, md5 varchar(16), size bigint, timestamp bigint)')
            LET _ <= SELECT * FROM sqlite(file=F, query='INSERT INTO hashes (path, md5, timestamp, size) values (?,?,?,?)', args=['/bin/ls', 'abc', 1, 2])
            SELECT * FROM sqlite(file=F, query='SELECT path, md5, size FROM hashes WHERE md5 = ?', args='abc')
            """) { $0.root.set("F", .string(db)) }
        #expect(created.isEmpty, "\(created)")
        var info = stat()
        #expect(stat(db, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let (rows, _) = try detect("SELECT * FROM sqlite(file=F, query='SELECT path, md5, size FROM hashes')") { $0.root.set("F", .string(db)) }
        #expect(rows.first?.member("path").stringValue == "/bin/ls" && rows.first?.member("size").intValue == 2)
        // Without FILESYSTEM_WRITE: reads still work, writes are refused and nothing changes.
        let (denied, log) = try detect("""
            SELECT * FROM sqlite(file=F, query='INSERT INTO hashes (path, md5) values (?, ?)', args=['/x', 'y'])
            """) { session in
            session.root.set("F", .string(db))
            session.context.permissions.remove(.filesystemWrite)
        }
        #expect(denied.isEmpty)
        #expect(log.contains { $0.contains("needs FILESYSTEM_WRITE") }, "\(log)")
        let (count, _) = try detect("SELECT * FROM sqlite(file=F, query='SELECT count(*) AS N FROM hashes')") { $0.root.set("F", .string(db)) }
        #expect(count.first?.member("N").intValue == 1)
        // A missing file is only created for a changing statement.
        let (_, missing) = try detect("SELECT * FROM sqlite(file=F, query='SELECT 1')") { $0.root.set("F", .string(dir + "/none.sqlite")) }
        #expect(missing.contains { $0.contains("no such file") } && !FileManager.default.fileExists(atPath: dir + "/none.sqlite"))
        // Writes never follow a symbolic link.
        symlink(db, dir + "/link.sqlite")
        let (_, linked) = try detect("SELECT * FROM sqlite(file=F, query='DELETE FROM hashes')") { $0.root.set("F", .string(dir + "/link.sqlite")) }
        #expect(!linked.isEmpty, "\(linked)")
        let (after, _) = try detect("SELECT * FROM sqlite(file=F, query='SELECT count(*) AS N FROM hashes')") { $0.root.set("F", .string(db)) }
        #expect(after.first?.member("N").intValue == 1)
    }

    @Test func magicKnowsCommonTypes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/s.sh", contents: Data("#!/bin/sh\necho hi\n".utf8))
        _ = FileManager.default.createFile(atPath: dir + "/p.png", contents: Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]))
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gz.arguments = ["sh", "-c", "echo hello | gzip > '\(dir)/g.gz'"]
        try gz.run()
        gz.waitUntilExit()
        let (rows, _) = try detect("""
            SELECT magic(path='/bin/ls', type='mime') AS Elf, magic(path=D + '/g.gz', type='mime') AS Gz,
                   magic(path=D + '/p.png', type='mime') AS Png, magic(path=D + '/s.sh') AS Sh FROM scope()
            """) { $0.root.set("D", .string(dir)) }
        let row = try #require(rows.first)
        #expect(row.member("Elf").stringValue?.hasPrefix("application/x-") == true)
        #expect(row.member("Gz").stringValue == "application/gzip")
        #expect(row.member("Png").stringValue == "image/png")
        #expect(row.member("Sh").stringValue?.contains("shell script") == true)
    }

    @Test func sqliteReadsAFileAndAWALHeldOpen() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/h.db"
        // A writer keeps the database open in WAL mode with uncheckpointed rows.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = ["python3", "-c", """
            import sqlite3, time
            c = sqlite3.connect('\(db)')
            c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
            c.execute('CREATE TABLE urls (id INTEGER, url TEXT)')
            c.executemany('INSERT INTO urls VALUES (?, ?)', [(1, 'https://a.example'), (2, 'https://b.example')])
            c.commit(); print('ready', flush=True); time.sleep(30)
            """]
        let out = Pipe()
        writer.standardOutput = out
        try writer.run()
        defer { writer.terminate() }
        _ = out.fileHandleForReading.availableData
        #expect(FileManager.default.fileExists(atPath: db + "-wal"))
        let (rows, log) = try detect("SELECT * FROM sqlite(file=F, query='SELECT id, url FROM urls WHERE id > ? ORDER BY id', args=[0])") {
            $0.root.set("F", .string(db))
        }
        #expect(rows.map { JSONWriter.string($0) } == [#"{"id":1,"url":"https://a.example"}"#, #"{"id":2,"url":"https://b.example"}"#], "\(log)")
        let (bad, badLog) = try detect("SELECT * FROM sqlite(file=F, query='SELEC nonsense')") { $0.root.set("F", .string(db)) }
        #expect(bad.isEmpty)
        #expect(badLog.contains { $0.contains("syntax error") })
    }
}

@Suite struct ParserAndUploadTests {
    @Test func parsers() throws {
        let (rows, _) = try detect("""
            SELECT parse_json_array(data='[1, 2]') AS A, xor(string=xor(string='abc', key='k'), key='k') AS X,
                   entropy(string='aaaa') AS E0, humanize(bytes=2048) AS H, url(parse='http://h/p?q=v').Query.q AS Q,
                   unhex(string='41 42') AS U
            FROM scope()
            """)
        #expect(rows.map { JSONWriter.string($0) } == [#"{"A":[1,2],"X":"abc","E0":0,"H":"2.0 kB","Q":"v","U":"AB"}"#])
        let (csv, _) = try detect(#"SELECT * FROM parse_csv(filename='a,b\n1,"x, y"\n2,"multi\nline"\n', accessor='data')"#)
        #expect(csv.map { JSONWriter.string($0) } == [#"{"a":"1","b":"x, y"}"#, #"{"a":"2","b":"multi\nline"}"#])
        let (jsonl, log) = try detect(#"SELECT * FROM parse_jsonl(filename='{"a":1}\nnot json\n{"a":2}', accessor='data')"#)
        #expect(jsonl.count == 2)
        #expect(log.contains { $0.contains("line 2") })
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/kv", contents: Data("k1=v1;k2=v2".utf8))
        let (records, _) = try detect(#"SELECT * FROM parse_records_with_regex(file=F, regex='(?P<Key>\\w+)=(?P<Value>\\w+)')"#) {
            $0.root.set("F", .string(dir + "/kv"))
        }
        #expect(records.map { JSONWriter.string($0) } == [#"{"Key":"k1","Value":"v1"}"#, #"{"Key":"k2","Value":"v2"}"#])
    }

    @Test func uploadStreamsHashesAndRefusesEscapes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = dir + "/evidence.txt"
        _ = FileManager.default.createFile(atPath: source, contents: Data("evidence\n".utf8))
        let store = dir + "/uploads"
        let (rows, _) = try detect("SELECT upload(file=F) AS Ok, upload(file=F, name='../../escape') AS Bad, upload(file='/no/such') AS Missing FROM scope()") {
            $0.root.set("F", .string(source))
            $0.context.setService(UploadFunction.serviceKey, DirectoryUploads(root: store) as any UploadDestination)
        }
        let row = try #require(rows.first)
        #expect(row.member("Ok").member("Size").intValue == 9)
        #expect(row.member("Ok").member("Sha256").stringValue == "a9a4fc4bb1a2ab9c2b1c8b0d2bd36b7b3fbbec43e8f30ba7b4fa0f4a3fb63c10" || row.member("Ok").member("Sha256").stringValue?.count == 64)
        #expect(FileManager.default.contents(atPath: store + "/file" + source) == Data("evidence\n".utf8))
        #expect(row.member("Bad").member("Error").stringValue?.contains("escape") == true)
        #expect(row.member("Missing").member("Error").stringValue != nil)
        #expect(!FileManager.default.fileExists(atPath: dir + "/escape"))
    }
}

/// The examples in the detection declarations run and yield rows (they are what `quarry plugins`
/// and docs/reference.md show).
@Suite struct DetectExampleTests {
    static var examples: [String] {
        DetectLibrary.plugins.flatMap(\.examples) + DetectLibrary.functions.flatMap(\.examples)
    }

    @Test(arguments: examples)
    func exampleRuns(_ example: String) throws {
        let (rows, log) = try detect(example)
        #expect(!rows.isEmpty, "no rows from \(example)")
        #expect(!log.contains { $0.hasPrefix("ERROR") }, "\(log)")
    }
}

@Suite struct GrokTests {
    @Test func parsesSSHAuthLinesAsVelociraptorsArtifactsExpect() throws {
        let expression = "%{SYSLOGTIMESTAMP:Timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:logsource} %{SYSLOGPROG}: %{DATA:event} %{DATA:method} for (invalid user )?%{DATA:user} from %{IPORHOST:ip} port %{NUMBER:port:int} ssh2(: %{GREEDYDATA:system.auth.ssh.signature})?"
        let (rows, log) = try detect("SELECT grok(grok=G, data=L) AS E FROM scope()") {
            $0.root.set("G", .string(expression))
            $0.root.set("L", .string("Nov 29 05:40:01 myhost sshd[4242]: Accepted publickey for root from 2001:db8::7 port 52144 ssh2: ED25519 SHA256:abc"))
        }
        let e = try #require(rows.first?.member("E"))
        #expect(e.member("program").stringValue == "sshd", "\(log)")
        #expect(e.member("pid").stringValue == "4242")
        #expect(e.member("event").stringValue == "Accepted")
        #expect(e.member("method").stringValue == "publickey")
        #expect(e.member("user").stringValue == "root")
        #expect(e.member("ip").stringValue == "2001:db8::7")
        #expect(e.member("port").intValue == 52144)
        #expect(e.member("system.auth.ssh.signature").stringValue == "ED25519 SHA256:abc")
    }

    @Test func listsCustomPatternsAndErrors() throws {
        let (rows, log) = try detect("""
            SELECT grok(grok=['%{NOPE:x}'], data='a') AS Bad,
                   grok(grok=['%{INT:n:int} apples', '%{WORD:fruit}=%{TICKET:t}'], data='pear=AB-12', patterns=dict(TICKET='[A-Z]+-[0-9]+')) AS Second,
                   grok(grok='%{IPV4:ip}', data='no address here') AS Miss
            FROM scope()
            """)
        #expect(rows.first?.member("Bad").isNull == true)
        #expect(log.contains { $0.contains("unknown pattern %{NOPE:x}") })
        #expect(JSONWriter.string(rows.first?.member("Second") ?? .null) == #"{"fruit":"pear","t":"AB-12"}"#)
        #expect(rows.first?.member("Miss").isNull == true)
    }
}

/// Velociraptor's grok results: sorted keys, "" for fields whose group did not match.
@Suite struct GrokApacheTests {
    @Test func commonApacheLog() throws {
        let (rows, _) = try detect(#"SELECT grok(grok="%{COMMONAPACHELOG}", data='127.0.0.1 - - [23/Apr/2014:22:58:32 +0200] "GET /index.php HTTP/1.1" 404 207') AS G FROM scope()"#)
        #expect(rows.map { JSONWriter.string($0) } == [
            #"{"G":{"auth":"-","bytes":"207","clientip":"127.0.0.1","httpversion":"1.1","ident":"-","rawrequest":"","request":"/index.php","response":"404","timestamp":"23/Apr/2014:22:58:32 +0200","verb":"GET"}}"#
        ])
    }
}

/// parse_yaml() and parse_xml() on real files and on hostile input.
@Suite struct DocumentParserTests {
    @Test func yamlKeepsOrderAndTypes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/doc.yaml"
        try "name: quarry\ncount: 3\nratio: 0.5\nok: true\nnothing: null\nitems:\n  - b\n  - a\nnested: {z: 1, a: 2}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let (rows, _) = try detect("SELECT parse_yaml(filename='\(path)') AS Y FROM scope()")
        #expect(rows.map { JSONWriter.string($0) } == [
            #"{"Y":{"name":"quarry","count":3,"ratio":0.5,"ok":true,"nothing":null,"items":["b","a"],"nested":{"z":1,"a":2}}}"#
        ])
    }

    @Test func hostileYAMLIsAnErrorNotACrash() throws {
        // A "billion laughs" of aliases expands past the value budget.
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...8 { bomb += "l\(i): &l\(i) [" + Array(repeating: i == 1 ? "*a" : "*l\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        for text in [bomb, "a: [1, 2", "\t- bad: : :", String(repeating: "[", count: 10000)] {
            let (rows, log) = try detect("SELECT parse_yaml(filename=F, accessor='data') AS Y FROM scope()") { session in
                session.root.set("F", .string(text))
            }
            #expect(rows.map { JSONWriter.string($0) } == [#"{"Y":null}"#])
            #expect(log.contains { $0.hasPrefix("ERROR") && $0.contains("parse_yaml") })
        }
    }

    @Test func xmlBecomesNestedDicts() throws {
        let xml = """
            <?xml version="1.0"?>
            <!DOCTYPE root [<!ENTITY boom "x">]>
            <root version="2"><!-- note --><item id="1">first &amp; best</item><item id="2"/><name>Q&#x41;</name><raw><![CDATA[<b>]]></raw></root>
            """
        let (rows, _) = try detect("SELECT parse_xml(file=X, accessor='data') AS X FROM scope()") { session in
            session.root.set("X", .string(xml))
        }
        #expect(rows.map { JSONWriter.string($0) } == [
            ##"{"X":{"root":{"Attrversion":"2","item":[{"Attrid":"1","#text":"first & best"},{"Attrid":"2"}],"name":"QA","raw":"<b>"}}}"##
        ])
    }

    @Test func malformedXMLIsAnErrorNotACrash() throws {
        let deep = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        for text in ["<a><b></a>", "<a x=1></a>", "<a", "", "plain text", deep, "<a>&#xFFFFFFFF;</a><b>"] {
            let (rows, log) = try detect("SELECT parse_xml(file=X, accessor='data') AS X FROM scope()") { session in
                session.root.set("X", .string(text))
            }
            if text == "<a>&#xFFFFFFFF;</a><b>" {
                // The first complete root element is the document; what follows is ignored.
                #expect(rows.map { JSONWriter.string($0) } == [##"{"X":{"a":"&#xFFFFFFFF;"}}"##])
                continue
            }
            #expect(rows.map { JSONWriter.string($0) } == [#"{"X":null}"#], "\(text.prefix(20))")
            #expect(log.contains { $0.hasPrefix("ERROR") && $0.contains("parse_xml") })
        }
    }
}

/// sql() with the sqlite driver, on a real database file.
@Suite struct SQLPluginTests {
    @Test func sqliteDriverReadsAFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.db"
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        make.arguments = [path, "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y');"]
        try make.run()
        make.waitUntilExit()
        let (rows, _) = try detect("SELECT * FROM sql(driver='sqlite', file='\(path)', query='SELECT * FROM t WHERE a > ?', args=[1])")
        #expect(rows.map { JSONWriter.string($0) } == [#"{"a":2,"b":"y"}"#])
        let (none, log) = try detect("SELECT * FROM sql(driver='mysql', connstring='x', query='SELECT 1')")
        #expect(none.isEmpty)
        #expect(log.contains { $0.contains("not available") })
    }
}
