import Foundation
@testable import QuarryDetect
import Testing
import VQL

/// Debian's python3 with plyvel (the LevelDB library's Python binding), when installed.
let plyvelPython: String? = {
    let python = "/usr/bin/python3"
    guard FileManager.default.isExecutableFile(atPath: python),
          (try? run(python, ["-c", "import plyvel"])) == 0 else { return nil }
    return python
}()

/// Every key and value of a database as the LevelDB library sees it (hex), through plyvel.
func plyvelDump(_ folder: String) throws -> [String] {
    let copy = try temporaryDirectory() + "/db"
    try FileManager.default.copyItem(atPath: folder, toPath: copy)
    let text = try output(plyvelPython ?? "", ["-c", """
        import plyvel, sys
        db = plyvel.DB(sys.argv[1])
        for k, v in db: print(k.hex() + '=' + v.hex())
        """, copy])
    return text.split(separator: "\n").map(String.init)
}

/// Our rows in the same hex form.
func leveldbDump(_ folder: String) throws -> (rows: [String], log: [String]) {
    let (rows, log) = try detect("SELECT * FROM leveldb(file='\(folder)')")
    return (rows.map { hex($0.member("Key").byteValue ?? []) + "=" + hex($0.member("Value").byteValue ?? []) }, log)
}

@Suite(.enabled(if: plyvelPython != nil, "needs python3-plyvel"))
struct LevelDBTests {
    /// A database written by LevelDB itself: tables (snappy) after a compaction, then puts,
    /// overwrites and deletes left in the write-ahead log.
    static func makeDatabase(keys: Int = 3000) throws -> String {
        let folder = try temporaryDirectory() + "/db"
        let status = try run(plyvelPython ?? "", ["-c", """
            import plyvel, sys
            db = plyvel.DB(sys.argv[1], create_if_missing=True, write_buffer_size=64*1024)
            for i in range(\(keys)):
                db.put(b'key-%05d' % i, (b'value %d ' % i) * (i % 50 + 1))
            db.put(b'\\x00binary\\xff', bytes(range(256)))
            db.compact_range()
            for i in range(0, \(keys), 7):
                db.delete(b'key-%05d' % i)
            for i in range(0, \(keys), 11):
                db.put(b'key-%05d' % i, b'overwritten')
            db.put(b'late', b'in the log only')
            db.close()
            """, folder])
        #expect(status == 0)
        return folder
    }

    @Test func matchesTheLevelDBLibrary() throws {
        let folder = try Self.makeDatabase()
        let expected = try plyvelDump(folder)
        let (ours, log) = try leveldbDump(folder)
        #expect(log.isEmpty, "\(log)")
        #expect(expected.count > 2500)
        #expect(ours == expected)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(files.contains { $0.hasSuffix(".ldb") }, "the test must cover tables: \(files)")
    }

    /// Chrome's Session Storage from Velociraptor's testcases (a zip), when present.
    @Test(.enabled(if: sharedTestFile("Session Storage.zip") != nil))
    func chromeSessionStorage() throws {
        let zip = try #require(sharedTestFile("Session Storage.zip"))
        let directory = try temporaryDirectory()
        try run(plyvelPython ?? "", ["-c", "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])", zip, directory])
        let folder = directory + "/Session Storage"
        let (ours, _) = try leveldbDump(folder)
        #expect(ours == (try plyvelDump(folder)))
        #expect(ours.count == 16)
    }

    /// Mutated files (one at a time) and worst cases: nothing crashes, hangs or grows without bound.
    @Test func fuzzMutatedFiles() throws {
        let folder = try Self.makeDatabase(keys: 300)
        let session = detectSession()
        var random = SeededRandom(seed: 0x1e7e1)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix("LOCK") && !$0.hasPrefix("LOG") }
        let originals = try Dictionary(uniqueKeysWithValues: files.map { ($0, [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)))) })
        for iteration in 0..<FuzzBudget.iterations {
            let name = files[iteration % files.count]
            let original = originals[name] ?? []
            // Mutate only the head or tail region (where headers, footers and index blocks are) on big files.
            var mutated = random.mutate(original.count > 4096 ? Array(original.suffix(4096)) : original)
            if original.count > 4096 { mutated = Array(original.prefix(original.count - 4096)) + mutated }
            try Data(mutated).write(to: URL(fileURLWithPath: folder + "/" + name))
            let results = try session.run("SELECT count() AS N FROM leveldb(file='\(folder)') GROUP BY 1")
            #expect((results.last ?? nil)?.count ?? 0 <= 1)
            try Data(original).write(to: URL(fileURLWithPath: folder + "/" + name))
        }
    }

    @Test func snappyRejectsBadInput() {
        #expect(throws: Snappy.CorruptInput.self) { try Snappy.decompress([0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) } // 32 GiB declared
        #expect(throws: Snappy.CorruptInput.self) { try Snappy.decompress([10, 0x01 | (3 << 2), 0x05]) } // copy before any output
        #expect(throws: Snappy.CorruptInput.self) { try Snappy.decompress([3, 0x08, 0x61]) } // literal past the input
        #expect((try? Snappy.decompress([6, 0x04, 0x61, 0x62, 0x01, 0x02])) == Array("ababab".utf8))
    }

    /// A table whose index points at itself, and a log that is all headers.
    @Test func blockLoopsAndEndlessFragments() throws {
        let folder = try temporaryDirectory()
        // Index handle (offset 0, size 20) pointing at a block that is the index block again.
        var index: [UInt8] = [0, 1, 2, 0x61, 0x00, 0x14] // key "a", value = handle(0, 20)
        while index.count < 16 { index.append(0) }
        index += [0, 0, 0, 0] // no restarts
        var table = index + [0, 0, 0, 0, 0] // trailer
        var footer: [UInt8] = [0, 0, 0, 20] // metaindex (0,0), index (0,20)
        while footer.count < 40 { footer.append(0) }
        footer += [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]
        table += footer
        try Data(table).write(to: URL(fileURLWithPath: folder + "/000001.ldb"))
        // A log of FIRST fragments that never end.
        var log: [UInt8] = []
        for _ in 0..<4000 { log += [0, 0, 0, 0, 1, 0, 2, 0x41] }
        try Data(log).write(to: URL(fileURLWithPath: folder + "/000002.log"))
        let start = Date()
        let (rows, messages) = try detect("SELECT * FROM leveldb(file='\(folder)')")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(rows.isEmpty)
        #expect(!messages.contains { $0.hasPrefix("ERROR") })
    }
}

@Suite struct LevelDBWithoutLibraryTests {
    /// A write-ahead log built here (one batch: two puts and a delete) without plyvel.
    @Test func handWrittenLog() throws {
        var batch: [UInt8] = [5, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0] // sequence 5, 3 entries
        batch += [1, 1] + Array("a".utf8) + [3] + Array("one".utf8)
        batch += [1, 1] + Array("b".utf8) + [3] + Array("two".utf8)
        batch += [0, 1] + Array("a".utf8)
        let record: [UInt8] = [0, 0, 0, 0, UInt8(batch.count), 0, 1] + batch
        let folder = try temporaryDirectory()
        try Data(record).write(to: URL(fileURLWithPath: folder + "/000003.log"))
        let (rows, log) = try detect("SELECT * FROM leveldb(file='\(folder)')")
        #expect(log.isEmpty, "\(log)")
        #expect(rows.count == 1)
        #expect(rows.first?.member("Key").stringValue == "b")
        #expect(rows.first?.member("Value").stringValue == "two")
    }
}
