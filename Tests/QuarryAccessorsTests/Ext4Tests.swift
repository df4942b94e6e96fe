import Foundation
import Testing
import VQL

/// ext2/ext4 images made with mkfs.ext4/mkfs.ext2 -d (no mount needed), flags set with debugfs,
/// and damaged copies of them.
@Suite struct Ext4Tests {
    /// Builds a source tree and an image of it; returns the files' contents by path.
    static func image(_ dir: String, type: String = "ext4", blockSize: Int = 1024) throws -> [String: [UInt8]] {
        var random = SystemRandomNumberGenerator()
        let files: [String: [UInt8]] = [
            "b.txt": Array("world\n".utf8), "dir/a.txt": Array("hello\n".utf8),
            "big.bin": (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &random) },
            "dir/sub/deep.txt": Array(String(repeating: "deep ", count: 3000).utf8),
        ]
        for (name, bytes) in files {
            try? FileManager.default.createDirectory(atPath: dir + "/src/" + (name as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            Fixture.write(dir + "/src/" + name, bytes: bytes)
        }
        try Fixture.shell("ln -s dir/a.txt src/link && mkfs.\(type) -q -F -d src -b \(blockSize) img 8M", in: dir)
        return files
    }

    static func root(_ dir: String) -> String { "pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/img")))" }

    @Test(arguments: [("ext4", 1024), ("ext4", 4096), ("ext2", 1024)])
    func globAndReadEveryFile(type: String, blockSize: Int) throws {
        let dir = Fixture.directory("ext4")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try Ext4Tests.image(dir, type: type, blockSize: blockSize)
        let rows = try Fixture.rows("""
            SELECT OSPath.Path AS P, Size, IsDir, IsLink, Data, read_file(filename=OSPath, accessor='raw_ext4', length=1000000) AS D
            FROM glob(globs='/**', accessor='raw_ext4', root=\(Ext4Tests.root(dir)))
            """)
        let regular = rows.filter { $0.member("IsDir").isTruthy == false && $0.member("IsLink").isTruthy == false }
        #expect(Set(regular.compactMap { Fixture.string($0, "P") }) == Set(files.keys.map { "/" + $0 }))
        for row in regular {
            guard let name = Fixture.string(row, "P")?.dropFirst(), let expected = files[String(name)] else { continue }
            #expect(row.member("D").byteValue == expected, "\(type) \(name)")
            #expect(Fixture.int(row, "Size") == Int64(expected.count))
        }
        let link = rows.first { Fixture.string($0, "P") == "/link" }
        #expect(link?.member("Data").member("Link").stringValue == "dir/a.txt")
        #expect(rows.contains { Fixture.string($0, "P") == "/lost+found" && $0.member("IsDir").isTruthy })
    }

    @Test func immutableFlagAndInodeAreVisible() throws {
        let dir = Fixture.directory("immutable")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Ext4Tests.image(dir)
        try Fixture.shell("debugfs -w -R 'set_inode_field /b.txt flags 0x80010' img", in: dir)
        let inode = try Fixture.shell("debugfs -R 'stat /b.txt' img 2>/dev/null | head -1", in: dir)
            .split(separator: " ").dropFirst().first.flatMap { Int64($0) }
        let rows = try Fixture.rows("""
            SELECT OSPath.Path AS P, Sys.mft AS Inode, Data.Flags AS Flags
            FROM glob(globs='**', accessor='raw_ext4', root=\(Ext4Tests.root(dir))) WHERE Data.Flags =~ 'IMMUTABLE'
            """)
        #expect(rows.compactMap { Fixture.string($0, "P") } == ["/b.txt"])
        #expect(rows.first.flatMap { Fixture.int($0, "Inode") } == inode)
    }

    @Test func anImageInsideAZip() throws {
        let dir = Fixture.directory("ext4zip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Ext4Tests.image(dir)
        try Fixture.shell("zip -q -9 img.zip img", in: dir)
        let root = "pathspec(DelegateAccessor='zip', DelegatePath=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/img.zip")), Path='img'))"
        let rows = try Fixture.rows("SELECT read_file(filename=OSPath, accessor='raw_ext4') AS D FROM glob(globs='dir/*.txt', accessor='raw_ext4', root=\(root))")
        #expect(rows.compactMap { Fixture.string($0, "D") } == ["hello\n"])
    }

    @Test func velociraptorsTestImage() throws {
        let zip = Fixture.testcaseFiles + "/ext4_tests.zip"
        guard FileManager.default.fileExists(atPath: zip) else { return }
        let root = "pathspec(DelegateAccessor='zip', DelegatePath=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(zip)), Path='hierarchy_64.ext4'))"
        let rows = try Fixture.rows("SELECT OSPath.Path AS P, Size FROM glob(globs='*', accessor='raw_ext4', root=\(root))")
        #expect(rows.compactMap { Fixture.string($0, "P") } == ["/directory1", "/directory2", "/lost+found", "/thejungle.txt"])
        #expect(rows.last.flatMap { Fixture.int($0, "Size") } == 849_597)
    }

    /// Live paths: the mounted device is parsed when it can be opened (root on a real host); in a
    /// sandbox that forbids opening it, the error says why.
    @Test func livePathsReadTheMountedDevice() throws {
        let (rows, log) = try Fixture.run("SELECT OSPath, Sys.mft AS Inode, Size FROM glob(globs='/etc/hostname', accessor='ext4')")
        var st = stat()
        guard stat("/etc/hostname", &st) == 0 else { return }
        if let row = rows.first {
            #expect(Fixture.int(row, "Inode") == Int64(st.st_ino))
            #expect(Fixture.int(row, "Size") == Int64(st.st_size))
        } else {
            #expect(log.contains { $0.contains("not on a mounted ext2/3/4") || $0.contains("/dev/") }, "\(log)")
        }
    }

    @Test func damagedImagesGiveErrors() throws {
        let dir = Fixture.directory("ext4bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Ext4Tests.image(dir)
        // A loop: a directory entered into its own subdirectory (debugfs links without checks).
        try Fixture.shell("cp img loop && debugfs -w -R 'ln /dir /dir/sub/loop' loop && cp img short && truncate -s 20000 short && cp img garbage && dd if=/dev/urandom of=garbage bs=1024 seek=2 count=60 conv=notrunc status=none", in: dir)
        let loop = "pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/loop")))"
        let (rows, log) = try Fixture.run("SELECT OSPath.Path AS P FROM glob(globs='**', accessor='raw_ext4', root=\(loop))")
        #expect(rows.contains { Fixture.string($0, "P") == "/dir/sub/loop" })
        #expect(rows.count < 100)
        #expect(log.contains { $0.contains("already visited") }, "\(log)")
        for name in ["short", "garbage"] {
            let root = "pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/" + name)))"
            let (_, badLog) = try Fixture.run("SELECT OSPath, read_file(filename=OSPath, accessor='raw_ext4') FROM glob(globs='**', accessor='raw_ext4', root=\(root))")
            #expect(badLog.contains { $0.contains("ext4") || $0.contains("glob") }, "\(name): \(badLog)")
        }
        // Not an ext4 file system at all.
        Fixture.write(dir + "/text", String(repeating: "not a file system ", count: 200))
        let (none, notLog) = try Fixture.run("SELECT * FROM glob(globs='*', accessor='raw_ext4', root=pathspec(DelegateAccessor='file', DelegatePath=\(Fixture.quoted(dir + "/text"))))")
        #expect(none.isEmpty)
        #expect(notLog.contains { $0.contains("superblock") })
    }
}
