import Foundation
import Testing
import VQL

/// gzip and bzip2 files made by gzip(1) and bzip2(1), unzip() of zip, tar and tar.gz made by
/// zip(1), tar(1) and Python, and the functions gunzip() and compress().
@Suite struct CompressionTests {
    @Test func gzipAndBzip2ReadLikeTheTools() throws {
        let dir = Fixture.directory("gz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Fixture.shell("seq 1 20000 > n && gzip -k n && bzip2 -k n && printf 'one\\n' | gzip > multi.gz && printf 'two\\n' | gzip >> multi.gz", in: dir)
        let original = Fixture.read(dir + "/n")
        let rows = try Fixture.rows("""
            SELECT read_file(filename=\(Fixture.quoted(dir + "/n.gz")), accessor='gzip') AS G,
                   read_file(filename=\(Fixture.quoted(dir + "/n.bz2")), accessor='bzip2') AS B,
                   read_file(filename=\(Fixture.quoted(dir + "/n.gz")), accessor='gzip', offset=60000, length=20) AS Middle,
                   read_file(filename=\(Fixture.quoted(dir + "/multi.gz")), accessor='gzip') AS Multi,
                   hash(path=\(Fixture.quoted(dir + "/n.bz2")), accessor='bzip2').MD5 AS MD5
            FROM scope()
            """)
        guard let row = rows.first else { Issue.record("no row"); return }
        #expect(row.member("G").byteValue == original)
        #expect(row.member("B").byteValue == original)
        #expect(row.member("Middle").byteValue == Array(original[60000..<60020]))
        #expect(row.member("Multi").stringValue == "one\ntwo\n")
        #expect(Fixture.string(row, "MD5") == (try Fixture.shell("md5sum n", in: dir)).split(separator: " ").first.map(String.init))
        // parse_lines reads gzip files decompressed, like Velociraptor.
        let lines = try Fixture.rows("SELECT Line FROM parse_lines(filename=\(Fixture.quoted(dir + "/n.gz"))) LIMIT 3")
        #expect(lines.compactMap { Fixture.string($0, "Line") } == ["1", "2", "3"])
    }

    @Test func gzipOfAVariableThroughAScopeDelegate() throws {
        let dir = Fixture.directory("scopegz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Fixture.shell("printf 'hello world\\n' | gzip > hi.gz", in: dir)
        let rows = try Fixture.rows("""
            LET gunzipped(Data) = read_file(accessor='gzip', filename=pathspec(DelegateAccessor='scope', DelegatePath='Data'))
            SELECT gunzipped(Data=read_file(filename=\(Fixture.quoted(dir + "/hi.gz")))) AS T,
                   gunzip(string=read_file(filename=\(Fixture.quoted(dir + "/hi.gz")))) AS U FROM scope()
            """)
        #expect(rows.first.flatMap { Fixture.string($0, "T") } == "hello world\n")
        #expect(rows.first.flatMap { Fixture.string($0, "U") } == "hello world\n")
    }

    @Test func compressWritesAGzipTheToolReads() throws {
        let dir = Fixture.directory("compress")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Fixture.shell("seq 1 5000 > n", in: dir)
        let rows = try Fixture.rows("SELECT compress(path=\(Fixture.quoted(dir + "/n")), output=\(Fixture.quoted(dir + "/n.gz"))) AS Out FROM scope()")
        #expect(rows.first.flatMap { Fixture.string($0, "Out") } == dir + "/n.gz")
        #expect(try Fixture.shell("gzip -dc n.gz | cmp - n && stat -c %a n.gz", in: dir) == "600\n")
    }

    @Test func unzipExtractsZipTarAndTgzInsideTheDirectoryOnly() throws {
        let dir = Fixture.directory("unzip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Fixture.shell("mkdir -p t/d && echo one > t/d/1.txt && echo two > t/2.txt && tar czf t.tgz ./t && tar cf t.tar t && (cd t && zip -q -r ../t.zip .)", in: dir)
        for (archive, names) in [("t.tgz", ["./t/2.txt", "./t/d/1.txt"]), ("t.tar", ["t/2.txt", "t/d/1.txt"]), ("t.zip", ["2.txt", "d/1.txt"])] {
            let out = dir + "/out-" + archive
            let rows = try Fixture.rows("SELECT OriginalPath, relpath(path=NewPath, base=\(Fixture.quoted(out))) AS Rel, Size FROM unzip(filename=\(Fixture.quoted(dir + "/" + archive)), output_directory=\(Fixture.quoted(out)))")
            #expect(rows.compactMap { Fixture.string($0, "OriginalPath") }.sorted() == names, "\(archive)")
            for row in rows {
                guard let rel = Fixture.string(row, "Rel") else { continue }
                let path = out + "/" + rel
                #expect(FileManager.default.fileExists(atPath: path), "\(path)")
                let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? 0
                #expect(mode == 0o600, "\(path) is \(String(mode, radix: 8))")
            }
        }
        // Only the members matching filename_filter; the archive given as data with its type.
        let filtered = try Fixture.rows("SELECT OriginalPath FROM unzip(filename=read_file(filename=\(Fixture.quoted(dir + "/t.zip"))), accessor='data', type='zip', filename_filter='^d/', output_directory=\(Fixture.quoted(dir + "/f")))")
        #expect(filtered.compactMap { Fixture.string($0, "OriginalPath") } == ["d/1.txt"])
    }

    @Test func tarMembersCannotEscapeOrFollowLinks() throws {
        let dir = Fixture.directory("tarescape")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = #"""
        import tarfile, io, sys
        with tarfile.open(sys.argv[1], 'w:gz') as t:
            def add(name, data=b'x', kind=tarfile.REGTYPE, link=''):
                i = tarfile.TarInfo(name); i.size = len(data) if kind == tarfile.REGTYPE else 0; i.type = kind; i.linkname = link
                t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            add('../escape.txt')
            add('/absolute.txt')
            add('link', kind=tarfile.SYMTYPE, link=sys.argv[2])
            add('link/through.txt')
            add('ok.txt', b'fine')
        """#
        Fixture.write(dir + "/t.py", script)
        try FileManager.default.createDirectory(atPath: dir + "/outside", withIntermediateDirectories: true)
        try Fixture.shell("python3 t.py evil.tgz \(dir)/outside", in: dir)
        let out = dir + "/out"
        let (rows, log) = try Fixture.run("SELECT OriginalPath FROM unzip(filename=\(Fixture.quoted(dir + "/evil.tgz")), output_directory=\(Fixture.quoted(out)))")
        #expect(Set(rows.compactMap { Fixture.string($0, "OriginalPath") }).isSubset(of: ["ok.txt", "link/through.txt"]))
        #expect(log.contains { $0.contains("climbs out") })
        #expect(log.contains { $0.contains("is absolute") })
        #expect(!FileManager.default.fileExists(atPath: dir + "/escape.txt"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir + "/outside"))?.isEmpty == true)
        #expect(Fixture.read(out + "/ok.txt") == Array("fine".utf8))
    }
}
