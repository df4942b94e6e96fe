import Foundation
import Testing
import VQL

/// Truncated, lying, overlapping, escaping and self-nesting archives: each gives a logged error
/// (or a refused member) and never a crash, a hang or an unbounded allocation.
@Suite struct HostileArchiveTests {
    /// Writes hostile zips with Python (zipfile plus byte patches), returning their paths by name.
    static func craft(_ dir: String) throws -> [String: String] {
        let script = #"""
        import zipfile, struct, sys, os
        d = sys.argv[1]
        def plain(name, members, method=zipfile.ZIP_STORED):
            with zipfile.ZipFile(os.path.join(d, name), 'w', method) as z:
                for n, data in members: z.writestr(zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0)), data)
        plain('good.zip', [('ok.txt', b'fine')])
        data = open(os.path.join(d, 'good.zip'), 'rb').read()
        open(os.path.join(d, 'truncated.zip'), 'wb').write(data[:len(data) // 2])
        plain('escape.zip', [('../../evil.txt', b'x'), ('/abs.txt', b'y'), ('aQb.txt', b'z'), ('fine.txt', b'ok')])
        raw = open(os.path.join(d, 'escape.zip'), 'rb').read().replace(b'aQb.txt', b'a\x00b.txt')
        open(os.path.join(d, 'escape.zip'), 'wb').write(raw)
        # Two central entries sharing one local header: the overlapping-members bomb shape.
        plain('one.zip', [('a.txt', b'A' * 1000)], zipfile.ZIP_DEFLATED)
        raw = open(os.path.join(d, 'one.zip'), 'rb').read()
        cd = raw.index(b'PK\x01\x02'); eocd = raw.index(b'PK\x05\x06')
        entry = raw[cd:eocd]
        twin = entry.replace(b'a.txt', b'b.txt')
        body = raw[:cd] + entry + twin
        end = bytearray(raw[eocd:]); struct.pack_into('<HHII', end, 8, 2, 2, len(entry) * 2, cd)
        open(os.path.join(d, 'overlap.zip'), 'wb').write(body + bytes(end))
        # A directory that claims a million members in 46 bytes.
        end = bytearray(raw[eocd:]); struct.pack_into('<HH', end, 8, 0xFFFF, 0xFFFF)
        open(os.path.join(d, 'count.zip'), 'wb').write(raw[:eocd] + bytes(end))
        # A central directory said to start past the end of the file.
        end = bytearray(raw[eocd:]); struct.pack_into('<I', end, 16, 10**9)
        open(os.path.join(d, 'offset.zip'), 'wb').write(raw[:eocd] + bytes(end))
        # A member whose local header offset points at the central directory itself.
        e = bytearray(entry); struct.pack_into('<I', e, 42, cd)
        open(os.path.join(d, 'self.zip'), 'wb').write(raw[:cd] + bytes(e) + raw[eocd:])
        # A deflated member that claims 10 bytes but inflates to 1000; a stored one that claims 1 MB.
        e = bytearray(entry); struct.pack_into('<I', e, 24, 10)
        open(os.path.join(d, 'short.zip'), 'wb').write(raw[:cd] + bytes(e) + raw[eocd:])
        plain('stored.zip', [('s.txt', b'S' * 100)])
        raw = bytearray(open(os.path.join(d, 'stored.zip'), 'rb').read())
        cd = raw.index(b'PK\x01\x02'); struct.pack_into('<I', raw, cd + 24, 1 << 20)
        open(os.path.join(d, 'long.zip'), 'wb').write(bytes(raw))
        """#
        Fixture.write(dir + "/craft.py", script)
        try Fixture.shell("python3 craft.py .", in: dir)
        var paths: [String: String] = [:]
        for name in ["good", "truncated", "escape", "overlap", "count", "offset", "self", "short", "long"] {
            paths[name] = dir + "/\(name).zip"
        }
        return paths
    }

    static func members(_ zip: String) throws -> ([Value], [String]) {
        try Fixture.run("""
            SELECT OSPath.Path AS P, read_file(filename=OSPath, accessor='zip') AS D
            FROM glob(globs='**', accessor='zip', root=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(zip))))
            WHERE NOT IsDir
            """)
    }

    @Test func brokenDirectoriesAreLoggedErrors() throws {
        let dir = Fixture.directory("hostile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let zips = try HostileArchiveTests.craft(dir)
        let (good, _) = try HostileArchiveTests.members(zips["good"] ?? "")
        #expect(good.compactMap { Fixture.string($0, "P") } == ["/ok.txt"])
        for name in ["truncated", "count", "offset"] {
            let (rows, log) = try HostileArchiveTests.members(zips[name] ?? "")
            #expect(rows.isEmpty, "\(name)")
            #expect(log.contains { $0.contains("glob:") && $0.contains("zip") }, "\(name): \(log)")
        }
        let (selfRows, selfLog) = try HostileArchiveTests.members(zips["self"] ?? "")
        #expect(selfRows.allSatisfy { $0.member("D").isNull })
        #expect(selfLog.contains { $0.contains("bad local header") }, "\(selfLog)")
    }

    @Test func escapingNamesAndOverlapsAreRefused() throws {
        let dir = Fixture.directory("escape")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let zips = try HostileArchiveTests.craft(dir)
        let (rows, log) = try HostileArchiveTests.members(zips["escape"] ?? "")
        // "/abs.txt" reads as a member (paths inside an archive are relative to it); ".." and NUL never do.
        #expect(Set(rows.compactMap { Fixture.string($0, "P") }) == ["/abs.txt", "/fine.txt"])
        #expect(log.contains { $0.contains("unsafe member path") })
        let out = dir + "/out"
        let (extracted, unzipLog) = try Fixture.run("SELECT OriginalPath, NewPath FROM unzip(filename=\(Fixture.quoted(zips["escape"] ?? "")), output_directory=\(Fixture.quoted(out)))")
        #expect(extracted.compactMap { Fixture.string($0, "OriginalPath") } == ["fine.txt"])
        #expect(unzipLog.contains { $0.contains("is absolute") })
        #expect(!FileManager.default.fileExists(atPath: dir + "/evil.txt") && !FileManager.default.fileExists(atPath: "/evil.txt"))
        #expect(!FileManager.default.fileExists(atPath: "/abs.txt"))
        let (overlap, overlapLog) = try HostileArchiveTests.members(zips["overlap"] ?? "")
        #expect(overlap.filter { !$0.member("D").isNull }.count == 1)
        #expect(overlapLog.contains { $0.contains("overlaps") })
    }

    @Test func declaredSizesAreNotTrusted() throws {
        let dir = Fixture.directory("sizes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let zips = try HostileArchiveTests.craft(dir)
        let (short, _) = try HostileArchiveTests.members(zips["short"] ?? "")
        #expect(short.first?.member("D").byteValue?.count == 10)
        let (long, _) = try HostileArchiveTests.members(zips["long"] ?? "")
        #expect(long.first?.member("D").byteValue == Array(repeating: UInt8(ascii: "S"), count: 100))
    }

    @Test func delegatesNestOnlySoDeep() throws {
        let dir = Fixture.directory("deep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        Fixture.write(dir + "/leaf.txt", "leaf")
        try Fixture.shell("zip -q z10.zip leaf.txt && for i in 9 8 7 6 5 4 3 2 1 0; do zip -q z$i.zip z$((i+1)).zip; done", in: dir)
        var spec = "pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/z0.zip")), Path='z1.zip')"
        for i in 2...10 { spec = "pathspec(DelegateAccessor='zip', DelegatePath=\(spec), Path='z\(i).zip')" }
        let deep = "pathspec(DelegateAccessor='zip', DelegatePath=\(spec), Path='leaf.txt')"
        let (rows, log) = try Fixture.run("SELECT read_file(filename=\(deep), accessor='zip') AS D FROM scope()")
        #expect(rows.first?.member("D").isNull == true)
        #expect(log.contains { $0.contains("deeper than") }, "\(log)")
        // Within the limit the same chain reads.
        var shallow = "pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/z8.zip")), Path='z9.zip')"
        shallow = "pathspec(DelegateAccessor='zip', DelegatePath=\(shallow), Path='z10.zip')"
        let ok = try Fixture.rows("SELECT read_file(filename=pathspec(DelegateAccessor='zip', DelegatePath=\(shallow), Path='leaf.txt'), accessor='zip') AS D FROM scope()")
        #expect(ok.first.flatMap { Fixture.string($0, "D") } == "leaf")
    }

    @Test func compressionBombsStayBounded() throws {
        let dir = Fixture.directory("bomb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 200 MB of zeros: about 200 KB compressed.
        try Fixture.shell("head -c 200000000 /dev/zero | gzip -9 > zeros.gz && zip -q -9 bomb.zip zeros.gz && head -c 200000000 /dev/zero > zeros && zip -q -9 -m zeros.zip zeros", in: dir)
        let gz = Fixture.quoted(dir + "/zeros.gz")
        let rows = try Fixture.rows("""
            SELECT len(list=read_file(filename=\(gz), accessor='gzip')) AS Whole,
                   len(list=read_file(filename=\(gz), accessor='gzip', offset=150000000, length=10)) AS Tail,
                   len(list=gunzip(string=read_file(filename=\(gz)), max_bytes=1000)) AS Limited
            FROM scope()
            """)
        #expect(rows.first.flatMap { Fixture.int($0, "Whole") } == 10 << 20)
        #expect(rows.first.flatMap { Fixture.int($0, "Tail") } == 10)
        #expect(rows.first.flatMap { Fixture.int($0, "Limited") } == 1000)
        let member = try Fixture.rows("SELECT Size, len(list=read_file(filename=OSPath, accessor='zip', length=100)) AS N FROM glob(globs='*', accessor='zip', root=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/zeros.zip"))))")
        #expect(member.first.flatMap { Fixture.int($0, "Size") } == 200_000_000)
        #expect(member.first.flatMap { Fixture.int($0, "N") } == 100)
    }

    @Test func truncatedCompressedStreamsAreErrors() throws {
        let dir = Fixture.directory("truncgz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Fixture.shell("head -c 100000 /dev/urandom > r && gzip -k r && bzip2 -k r && head -c 5000 r.gz > cut.gz && head -c 5000 r.bz2 > cut.bz2", in: dir)
        let (rows, log) = try Fixture.run("""
            SELECT read_file(filename=\(Fixture.quoted(dir + "/cut.gz")), accessor='gzip') AS G,
                   read_file(filename=\(Fixture.quoted(dir + "/cut.bz2")), accessor='bzip2') AS B
            FROM scope()
            """)
        #expect(rows.count == 1)
        #expect(log.contains { $0.contains("cut.gz") && $0.contains("truncated") }, "\(log)")
        #expect(log.contains { $0.contains("cut.bz2") && $0.contains("truncated") }, "\(log)")
    }
}
