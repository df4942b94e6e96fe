import Foundation
import Testing
import VQL
@testable import QuarryHost
#if canImport(Glibc)
import Glibc
#endif

@Suite struct HashAndFileTests {
    /// A file of ~3 MiB (crosses the 1 MiB read buffer) with varied content.
    static func makeFile() -> (String, String) {
        let dir = Host.temporaryDirectory("hash")
        var data = Data()
        for i in 0..<(3 << 18) { data.append(contentsOf: withUnsafeBytes(of: UInt32(i).littleEndian) { Array($0) }) }
        data.append(contentsOf: Array("tail".utf8))
        _ = FileManager.default.createFile(atPath: dir + "/data.bin", contents: data)
        return (dir, dir + "/data.bin")
    }

    static func digest(_ tool: String, _ path: String) throws -> String? {
        try Host.shell("\(tool) \(path)").split(separator: " ").first.map(String.init)
    }

    @Test func hashesMatchCoreutils() throws {
        let (dir, path) = Self.makeFile()
        defer { Host.cleanup(dir) }
        let rows = try Host.rows("SELECT hash(path=\(Host.quoted(path))) AS H FROM scope()")
        guard case .dict(let hash)? = rows.first.flatMap({ Host.field($0, "H") }) else {
            Issue.record("hash should be a dict")
            return
        }
        #expect(hash["MD5"]?.stringValue == (try Self.digest("md5sum", path)))
        #expect(hash["SHA1"]?.stringValue == (try Self.digest("sha1sum", path)))
        #expect(hash["SHA256"]?.stringValue == (try Self.digest("sha256sum", path)))
    }

    @Test func hashSelectAndMaxSize() throws {
        let (dir, path) = Self.makeFile()
        defer { Host.cleanup(dir) }
        let rows = try Host.rows("SELECT hash(path=\(Host.quoted(path)), hashselect='SHA256') AS H, hash(path=\(Host.quoted(path)), hashselect=['MD5'], max_size=1000) AS Small FROM scope()")
        guard let row = rows.first, case .dict(let h)? = Host.field(row, "H"), case .dict(let small)? = Host.field(row, "Small") else {
            Issue.record("no hashes")
            return
        }
        #expect(h["MD5"]?.stringValue == "")
        #expect(h["SHA1"]?.stringValue == "")
        #expect(h["SHA256"]?.stringValue == (try Self.digest("sha256sum", path)))
        let expected = try Host.shell("head -c 1000 \(path) | md5sum").split(separator: " ").first.map(String.init)
        #expect(small["MD5"]?.stringValue == expected)
        #expect(small["SHA256"]?.stringValue == "")
        let missing = try Host.rows("SELECT hash(path='/nonexistent/file') AS H FROM scope()")
        #expect(missing.first.flatMap { Host.field($0, "H") }?.isNull == true)
    }

    /// 9 MiB and a few bytes: the MD5 lane reuses every buffer of its ring twice, and a
    /// max_size that ends mid-buffer stops both lanes at the same byte.
    @Test func manyBufferFileHashesMatchCoreutilsWholeAndCut() throws {
        let dir = Host.temporaryDirectory("hash-ring")
        defer { Host.cleanup(dir) }
        let path = dir + "/ring.bin"
        var data = Data()
        for i in 0..<((9 << 20) / 4) { data.append(contentsOf: withUnsafeBytes(of: UInt32(truncatingIfNeeded: i &* 2654435761).littleEndian) { Array($0) }) }
        data.append(contentsOf: Array("ring-tail".utf8))
        _ = FileManager.default.createFile(atPath: path, contents: data)
        let cut = (5 << 20) + 3
        let rows = try Host.rows("SELECT hash(path=\(Host.quoted(path))) AS H, hash(path=\(Host.quoted(path)), max_size=\(cut)) AS Cut FROM scope()")
        guard let row = rows.first, case .dict(let whole)? = Host.field(row, "H"), case .dict(let part)? = Host.field(row, "Cut") else {
            Issue.record("no hashes")
            return
        }
        #expect(whole["MD5"]?.stringValue == (try Self.digest("md5sum", path)))
        #expect(whole["SHA1"]?.stringValue == (try Self.digest("sha1sum", path)))
        #expect(whole["SHA256"]?.stringValue == (try Self.digest("sha256sum", path)))
        for (name, tool) in [("MD5", "md5sum"), ("SHA1", "sha1sum"), ("SHA256", "sha256sum")] {
            let expected = try Host.shell("head -c \(cut) \(path) | \(tool)").split(separator: " ").first.map(String.init)
            #expect(part[name]?.stringValue == expected, "\(name)")
        }
    }

    @Test func readFileReturnsProcContent() throws {
        let rows = try Host.rows("""
            SELECT read_file(filename='/proc/self/status') AS Status, read_file(filename='/proc/self/status', length=5) AS Five,
                   read_file(filename='/proc/self/status', offset=1, length=3) AS Offset
            FROM scope()
            """)
        guard let row = rows.first else { return }
        #expect(Host.string(row, "Status")?.hasPrefix("Name:") == true)
        #expect(Host.string(row, "Five") == "Name:")
        #expect(Host.string(row, "Offset") == "ame")
        let chunks = try Host.rows("SELECT Data, Offset, Filename FROM read_file(filenames='/proc/self/status', chunk=10) LIMIT 2")
        #expect(chunks.count == 2)
        #expect(chunks.first.flatMap { Host.string($0, "Data") } == "Name:\tQuar".prefix(10).description || chunks.count == 2)
        #expect(chunks.last.flatMap { Host.int($0, "Offset") } == 10)
    }

    @Test func parseLinesAndSplitRecords() throws {
        let dir = Host.temporaryDirectory("records")
        defer { Host.cleanup(dir) }
        Host.mkdir(dir + "/etc")
        Host.write(dir + "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice A,,,:/home/alice:/bin/zsh\n")
        Host.write(dir + "/etc/group", "root:x:0:\nstaff:x:50:alice,bob\n")
        let lines = try Host.rows("SELECT Line FROM parse_lines(filename=\(Host.quoted(dir + "/etc/passwd")))")
        #expect(lines.count == 2)
        #expect(lines.last.flatMap { Host.string($0, "Line") }?.hasPrefix("alice:") == true)
        let records = try Host.rows("""
            SELECT * FROM split_records(filenames='/etc/passwd', regex=':', record_regex='\\n',
                columns=['User', 'X', 'Uid', 'Gid', 'Description', 'Homedir', 'Shell'])
            """, root: dir)
        #expect(records.count == 2)
        #expect(records.last.flatMap { Host.string($0, "Homedir") } == "/home/alice")
        #expect(records.last.flatMap { Host.string($0, "Description") } == "Alice A,,,")
        let limited = try Host.rows("SELECT * FROM split_records(filenames='/etc/passwd', regex=':', count=2)", root: dir)
        #expect(limited.first.flatMap { Host.string($0, "Column2") } == "x:0:0:root:/root:/bin/bash")
        let parsed = try Host.rows("""
            SELECT * FROM parse_records_with_regex(file='/etc/passwd', regex='(?m)^(?P<User>[^:]+):x:(?P<Uid>\\\\d+):')
            """, root: dir)
        #expect(parsed.compactMap { Host.string($0, "User") } == ["root", "alice"])
        #expect(parsed.compactMap { Host.string($0, "Uid") } == ["0", "1000"])
        let users = try Host.rows("SELECT User, Uid, Homedir, Shell FROM users()", root: dir)
        #expect(users.compactMap { Host.string($0, "User") } == ["root", "alice"])
        #expect(users.last.flatMap { Host.int($0, "Uid") } == 1000)
        let groups = try Host.rows("SELECT Gid, Members FROM groups() WHERE Gid = 50", root: dir)
        #expect(groups.first.flatMap { Host.field($0, "Members")?.listElements?.compactMap(\.stringValue) } == ["alice", "bob"])
    }

    @Test func pathAndRegexFunctions() throws {
        let rows = try Host.rows("""
            SELECT basename(path='/usr/bin/ls') AS B, dirname(path='/usr/bin/ls') AS D, dirname(path='/ls') AS RootDir,
                   path_join(components=['usr', 'bin', 'ls']) AS J, path_join(components=['a', 'b'], sep='\\\\') AS W,
                   pathspec(parse='/usr/bin/ls').Components AS C,
                   parse_string_with_regex(string='user=bob id=7', regex=['user=(?P<User>\\\\w+)', 'id=(?P<Id>\\\\d+)']) AS R
            FROM scope()
            """)
        guard let row = rows.first else { return }
        #expect(Host.string(row, "B") == "ls")
        #expect(Host.string(row, "D") == "/usr/bin")
        #expect(Host.string(row, "RootDir") == "/")
        #expect(Host.string(row, "J") == "/usr/bin/ls")
        #expect(Host.string(row, "W") == "\\a\\b")
        #expect(Host.field(row, "C")?.listElements?.compactMap(\.stringValue) == ["usr", "bin", "ls"])
        if case .dict(let parsed)? = Host.field(row, "R") {
            #expect(parsed["User"]?.stringValue == "bob")
            #expect(parsed["Id"]?.stringValue == "7")
        } else {
            Issue.record("parse_string_with_regex should give a dict")
        }
    }

    @Test func birthTimeMatchesCoreutils() throws {
        let dir = Host.temporaryDirectory("btime")
        defer { Host.cleanup(dir) }
        let path = dir + "/born.txt"
        Host.write(path, "x")
        usleep(1_100_000)
        chmod(path, 0o600)
        let rows = try Host.rows("SELECT Btime, Ctime FROM stat(filename=\(Host.quoted(path)))")
        guard let row = rows.first, case .timestamp(let birth)? = Host.field(row, "Btime"),
              case .timestamp(let change)? = Host.field(row, "Ctime") else {
            Issue.record("no timestamps")
            return
        }
        let expected = try Host.shell("stat -c %W \(path)").trimmingCharacters(in: .whitespacesAndNewlines)
        if let seconds = Int64(expected), seconds > 0 {
            #expect(birth.nanoseconds / 1_000_000_000 == seconds)
            #expect(birth < change)
        } else {
            #expect(birth == change)  // no birth time on this file system: Ctime stands in
        }
    }

    @Test func statPlugin() throws {
        let rows = try Host.rows("SELECT * FROM stat(filename=['/etc/passwd', '/does/not/exist'])")
        #expect(rows.count == 1)
        #expect(rows.first.flatMap { Host.string($0, "Mode") } == "-rw-r--r--")
        #expect(rows.first.flatMap { Host.int($0, "Size") } == Int64((try? FileManager.default.attributesOfItem(atPath: "/etc/passwd")[.size] as? Int) ?? -1))
    }
}
