import Foundation
@testable import QuarryDetect
import Testing
import VQL

/// The journals inside Velociraptor's testcase zip (systemd 245 with lz4, 255 compact with zstd,
/// and two copies cut short), extracted to a temporary folder.
func testcaseJournals() throws -> String? {
    guard let zip = sharedTestFile("system.journal.zip") else { return nil }
    let directory = try temporaryDirectory()
    try run("/usr/bin/python3", ["-c", "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])", zip, directory])
    return directory
}

/// Crafted journals: a clear outcome, never a trap.
@Suite struct JournalHostileTests {
    /// fuzz-journald, second session: a header size near 2^64 trapped the object walk.
    @Test func aHeaderLargerThanTheFileIsClampedNotATrap() throws {
        var bytes = Array("LPKSHHRH".utf8) + [UInt8](repeating: 0, count: 264)
        for i in 88..<96 { bytes[i] = 0xFF }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/huge-header.journal"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (rows, _) = try detect("SELECT * FROM parse_journald(filename='\(path)')")
        #expect(rows.isEmpty)
    }
}

@Suite(.enabled(if: sharedTestFile("system.journal.zip") != nil))
struct JournalTests {

    @Test func entriesAsJournalctlPrintsThem() throws {
        let directory = try #require(try testcaseJournals())
        for name in ["2004.journal", "2404.journal"] {
            let path = directory + "/" + name
            let (rows, log) = try detect("SELECT * FROM parse_journald(filename='\(path)', raw=TRUE)")
            #expect(log.isEmpty, "\(log)")
            #expect(rows.count == 3)
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl") {
                let expected = try output("/usr/bin/journalctl", ["--file", path, "-o", "json", "--all"]).split(separator: "\n")
                #expect(expected.count == rows.count)
                for (line, row) in zip(expected, rows) {
                    let want = try JSONParser.parse(String(line))
                    guard case .dict(let fields) = want else { continue }
                    for (key, value) in fields.pairs where !key.hasPrefix("__") {
                        #expect(row.member(key).stringValue == value.stringValue, "\(name) \(key)")
                    }
                    #expect(row.member("__REALTIME_TIMESTAMP").intValue.map(String.init) == want.member("__REALTIME_TIMESTAMP").stringValue)
                }
            }
        }
        // The structured form: trusted fields under System, the rest under EventData.
        let (rows, _) = try detect("SELECT System.Timestamp AS T, System._EXE AS Exe, EventData.SYSLOG_IDENTIFIER AS Id, len(list=EventData.MESSAGE) AS L FROM parse_journald(filename='\(directory)/2404.journal')")
        #expect(rows.last?.member("Exe").stringValue == "/usr/bin/cat")
        #expect(rows.last?.member("Id").stringValue == "mytag")
        #expect((rows.last?.member("L").intValue ?? 0) > 4096, "a zstd-compressed message is decompressed")
    }

    @Test func truncatedCopiesAndTimeWindows() throws {
        let directory = try #require(try testcaseJournals())
        let (rows, log) = try detect("SELECT * FROM parse_journald(filename='\(directory)/compact.journal')")
        #expect(rows.count == 380, "the entries before the cut are recovered")
        #expect(log.contains { $0.contains("truncated") }, "\(log)")
        let (window, _) = try detect("""
            LET All = SELECT System.Timestamp AS T FROM parse_journald(filename='\(directory)/compact.journal')
            LET Middle <= All[190].T
            SELECT count() AS N FROM parse_journald(filename='\(directory)/compact.journal', start_time=Middle) GROUP BY 1
            """)
        let n = window.first?.member("N").intValue ?? 0
        #expect(n > 0 && n < 380)
    }

    @Test func fuzzMutatedJournals() throws {
        let directory = try #require(try testcaseJournals())
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/2004.journal")))
        // The objects of this small journal end early; mutate the part that holds them.
        let used = Array(original.prefix(300_000))
        let session = detectSession()
        var random = SeededRandom(seed: 0x10C)
        let path = directory + "/fuzz.journal"
        for _ in 0..<FuzzBudget.iterations {
            var mutated = used
            for _ in 0..<3 {
                let at = 240 + random.below(used.count - 256)
                mutated[at] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.below(4) == 0 { mutated = Array(mutated.prefix(random.below(mutated.count))) }
            try Data(mutated).write(to: URL(fileURLWithPath: path))
            let results = try session.run("SELECT * FROM parse_journald(filename='\(path)', raw=TRUE)")
            _ = JSONWriter.string(Value.list((results.last ?? nil) ?? []).materialized())
        }
    }
}

@Suite struct JournalWorstCaseTests {
    /// A header, then one DATA object claiming zstd compression of a frame that declares 1 TiB.
    @Test func hugeDeclaredSizesAreRefused() throws {
        var file = Array("LPKSHHRH".utf8) + [UInt8](repeating: 0, count: 272 - 8)
        file[88] = 0x10 // header_size 272
        file[89] = 0x01
        var data = [UInt8](repeating: 0, count: 64)
        data[0] = 1 // DATA
        data[1] = 4 // zstd
        let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xC0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0x01, 0, 0]
        let objectSize = UInt64(64 + frame.count)
        for k in 0..<8 { data[8 + k] = UInt8(truncatingIfNeeded: objectSize >> (8 * UInt64(k))) }
        file += data + frame
        while file.count % 8 != 0 { file.append(0) }
        // An ENTRY pointing at that DATA object (regular layout: offset + hash).
        var entry = [UInt8](repeating: 0, count: 80)
        entry[0] = 3
        entry[8] = 80
        let dataOffset = UInt64(272)
        for k in 0..<8 { entry[64 + k] = UInt8(truncatingIfNeeded: dataOffset >> (8 * UInt64(k))) }
        file += entry
        let path = try writeTemporary(file, name: "worst.journal")
        let (rows, log) = try detect("SELECT * FROM parse_journald(filename='\(path)', raw=TRUE)")
        #expect(rows.count == 1)
        #expect(log.contains { $0.contains("zstd") }, "\(log)")
        #expect(throws: Decompress.Failure.self) { try Decompress.lz4Block([0xF0, 0xFF, 0xFF, 0xFF], size: 16) }
        #expect(throws: Decompress.Failure.self) { try Decompress.lz4Journal([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0x10], limit: 1 << 20) }
        #expect(try Decompress.lz4Block([0x10, 0x61, 0x01, 0x00], size: 5) == Array("aaaaa".utf8))
    }
}
