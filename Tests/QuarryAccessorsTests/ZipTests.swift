import Crypto
import Foundation
import Testing
import VQL

/// The zip and zip_nocase accessors on archives made by Info-ZIP and Python, and on hostile ones.
@Suite struct ZipTests {
    /// A tree of files: a text file, a binary file in a subdirectory, an empty file.
    static func tree(_ dir: String) -> [String: [UInt8]] {
        var random = SystemRandomNumberGenerator()
        let binary = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        let files: [String: [UInt8]] = [
            "a.txt": Array("hello zip\n".utf8), "sub/b.bin": binary, "sub/deeper/empty": [],
            "Mixed Case.TXT": Array(String(repeating: "compressible ", count: 5000).utf8),
        ]
        for (name, bytes) in files {
            try? FileManager.default.createDirectory(atPath: dir + "/src/" + (name as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            Fixture.write(dir + "/src/" + name, bytes: bytes)
        }
        return files
    }

    @Test(arguments: ["-0", "-9", "-fz -9"])
    func globAndReadEveryMember(options: String) throws {
        let dir = Fixture.directory("zip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = ZipTests.tree(dir)
        try Fixture.shell("zip -q -r \(options) ../t.zip .", in: dir + "/src")
        let root = "pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/t.zip")))"
        let rows = try Fixture.rows("""
            SELECT OSPath.Path AS P, Size, IsDir, read_file(filename=OSPath, accessor='zip', length=1000000) AS Data,
                   hash(path=OSPath, accessor='zip').SHA256 AS Sha
            FROM glob(globs='**', accessor='zip', root=\(root)) WHERE NOT IsDir
            """)
        #expect(Set(rows.compactMap { Fixture.string($0, "P") }) == Set(files.keys.map { "/" + $0 }))
        for row in rows {
            guard let name = Fixture.string(row, "P")?.dropFirst(), let expected = files[String(name)] else { continue }
            #expect(row.member("Data").byteValue == expected, "\(name)")
            #expect(Fixture.int(row, "Size") == Int64(expected.count))
            #expect(Fixture.string(row, "Sha") == SHA256.hash(data: expected).map { String(format: "%02x", $0) }.joined())
        }
        // Directories are listed (from member paths) in name order.
        let top = try Fixture.rows("SELECT Name, IsDir FROM glob(globs='*', accessor='zip', root=\(root))")
        #expect(top.compactMap { Fixture.string($0, "Name") } == ["Mixed Case.TXT", "a.txt", "sub"])
    }

    @Test func nestedZipsAndCaseInsensitiveNames() throws {
        let dir = Fixture.directory("nested")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = ZipTests.tree(dir)
        try Fixture.shell("zip -q -r ../inner.zip . && cd .. && mkdir outer && mv inner.zip outer/ && cd outer && zip -q -9 ../outer.zip inner.zip", in: dir + "/src")
        let inner = "pathspec(DelegateAccessor='zip', DelegatePath=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/outer.zip")), Path='/inner.zip'), Path='/sub')"
        let rows = try Fixture.rows("SELECT OSPath.Path AS P, read_file(filename=OSPath, accessor='zip') AS D FROM glob(globs='*.bin', accessor='zip', root=\(inner))")
        #expect(rows.compactMap { Fixture.string($0, "P") } == ["/sub/b.bin"])
        #expect(rows.first?.member("D").byteValue?.count == 100_000)
        let base = "pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/outer.zip")))"
        let nocase = try Fixture.rows("""
            LET Inner <= pathspec(DelegateAccessor='zip_nocase', DelegatePath=\(base) + 'INNER.ZIP')
            SELECT OSPath.Basename AS B, read_file(filename=OSPath, accessor='zip') AS D FROM stat(filename=Inner + 'mixed case.txt', accessor='zip_nocase')
            """)
        #expect(nocase.compactMap { Fixture.string($0, "B") } == ["Mixed Case.TXT"])
        #expect(nocase.first?.member("D").stringValue?.hasPrefix("compressible") == true)
    }

    @Test func pathspecGlobsCarryTheirDelegate() throws {
        let dir = Fixture.directory("specglob")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = ZipTests.tree(dir)
        try Fixture.shell("zip -q -r ../t.zip .", in: dir + "/src")
        let rows = try Fixture.rows("""
            SELECT OSPath.Path AS P, OSPath.DelegateAccessor AS A, Mtime FROM glob(globs=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/t.zip")), Path='/**/*.txt'), accessor='zip')
            """)
        #expect(rows.compactMap { Fixture.string($0, "P") } == ["/a.txt"])
        #expect(rows.first.flatMap { Fixture.string($0, "A") } == "file")
        // The member's time is the file's mtime (from the extended timestamp), not 1980.
        let mtime = try FileManager.default.attributesOfItem(atPath: dir + "/src/a.txt")[.modificationDate] as? Date
        if case .timestamp(let t)? = rows.first?.member("Mtime"), let mtime {
            #expect(abs(t.seconds - mtime.timeIntervalSince1970) < 2)
        } else {
            Issue.record("no Mtime")
        }
    }

    @Test func encryptedCollectionsOpenWithZipPasswords() throws {
        let file = Fixture.testcaseFiles + "/encrypted_collector_password.zip"
        guard FileManager.default.fileExists(atPath: file) else { return }
        let root = "pathspec(DelegateAccessor='zip', DelegatePath=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(file)), Path='/data.zip'))"
        let query = "SELECT read_file(filename=OSPath, accessor='zip') AS D FROM glob(globs='**/BasicInformation.json', accessor='zip', root=\(root))"
        let rows = try Fixture.rows("LET ZIP_PASSWORDS = ['wrong', 'hello'] " + query)
        #expect(rows.first?.member("D").stringValue?.contains("\"Hostname\":\"DESKTOP-SU8FH31\"") == true)
        let (none, log) = try Fixture.run("LET ZIP_PASSWORDS = 'nope' " + query)
        #expect(none.isEmpty)
        #expect(log.contains { $0.contains("wrong password") })
    }

    @Test func legacyZipCryptoIsRefusedClearly() throws {
        let dir = Fixture.directory("zipcrypto")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        Fixture.write(dir + "/s.txt", "secret")
        try Fixture.shell("zip -q -P pw e.zip s.txt", in: dir)
        let (rows, log) = try Fixture.run("SELECT read_file(filename=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/e.zip")), Path='s.txt'), accessor='zip') AS D FROM scope()")
        #expect(rows.first?.member("D").isNull == true)
        #expect(log.contains { $0.contains("ZipCrypto") })
    }
}
