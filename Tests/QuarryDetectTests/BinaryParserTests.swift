import Foundation
import Testing
import VQL

@Suite struct BinaryParserTests {
    /// One profile using every type of the language, laid over bytes built here.
    static let profile = #"""
    [
      # comments and trailing commas are allowed
      ["Header", 0, [
        ["Magic", 0, "String", {"length": 4}],
        ["Version", 4, "uint16"],
        ["BigCount", 6, "uint16b"],
        ["Negative", 8, "int8"],
        ["Kind", 9, "Enumeration", {"type": "uint8", "choices": {"1": "FILE", "2": "DIR"}}],
        ["Unknown", 10, "Enumeration", {"type": "uint8", "choices": {"1": "FILE"}}],
        ["Perms", 11, "Flags", {"type": "uint8", "bitmap": {"READ": 0, "WRITE": 1, "EXEC": 2}}],
        ["High", 11, "BitField", {"type": "uint8", "start_bit": 4, "end_bit": 8}],
        ["__Count", 12, "uint32"],
        ["Items", 16, "Array", {"type": "Item", "count": "x=>x.__Count"}],
        ["Total", 0, "Value", {"value": "x=>x.__Count * 10 + Extra"}],
        ["Stamp", 40, "Timestamp", {"type": "uint32"}],
        ["FileTime", 44, "WinFileTime"],
        ["Wide", 52, "String", {"encoding": "utf16", "length": 10}],
        ["Far", 0, "Profile", {"type": "Item", "offset": 62}],
        ["Ptr", 62, "Pointer", {"type": "Item", "pointer_type": "uint32"}],
      ]],
      ["Item", "x=>4 + x.Len", [
        ["Len", 0, "uint8"],
        ["Tag", 1, "uint8"],
        ["Body", 4, "String", {"length": "x=>x.Len", "term": ""}],
        ["Choice", 0, "Union", {"selector": "x=>x.Tag", "choices": {"1": "One", "2": "Two"}}],
      ]],
      ["One", 2, [["Value", 1, "uint8"]]],
      ["Two", 2, [["Doubled", 1, "Value", {"value": "x=>2 * 21"}]]],
    ]
    """#

    static func sample() -> [UInt8] {
        var b: [UInt8] = Array("QRY1".utf8)
        b += [2, 0] // Version 2
        b += [0, 3] // BigCount 3 (big-endian)
        b += [0xFE] // -2
        b += [2, 9] // DIR, unknown 9
        b += [0b1010_0101] // READ|EXEC, high nibble 10
        b += [2, 0, 0, 0] // two items
        b += [3, 1, 0, 0] + Array("abc".utf8) // item 1 (7 bytes) at 16
        b += [2, 2, 0, 0] + Array("xy".utf8) // item 2 (6 bytes) at 23
        while b.count < 40 { b.append(0) }
        b += [0x00, 0xF1, 0x53, 0x65] // 1700000000
        let fileTime: UInt64 = 116_444_736_000_000_000 + 1_700_000_000 * 10_000_000
        b += (0..<8).map { UInt8(truncatingIfNeeded: fileTime >> (8 * $0)) }
        b += Array("hi!".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } + [0, 0, 0, 0]
        b += [16, 0, 0, 0] // at 62: as Profile, an Item of Len 16; as Pointer, offset 16
        return b
    }

    @Test func everyTypeOfTheLanguage() throws {
        let query = "SELECT parse_binary(accessor='data', filename=unhex(string='\(hex(Self.sample()))'), profile='''\(Self.profile)''', struct='Header', env=dict(Extra=1)) AS H FROM scope()"
        let (json, log) = try detectJSON(query)
        #expect(log.isEmpty, "\(log)")
        let h = try #require(try JSONParser.parse(json).listElements?.first?.member("H"))
        #expect(h.member("Magic").stringValue == "QRY1")
        #expect(h.member("Version").intValue == 2)
        #expect(h.member("BigCount").intValue == 3)
        #expect(h.member("Negative").intValue == -2)
        #expect(h.member("Kind").stringValue == "DIR")
        #expect(h.member("Unknown").stringValue == "0x9")
        #expect(h.member("Perms").listElements?.compactMap(\.stringValue) == ["READ", "EXEC"])
        #expect(h.member("High").intValue == 10)
        #expect(h.member("__Count").isNull, "hidden fields are not shown")
        #expect(h.member("Total").intValue == 21)
        let items = try #require(h.member("Items").listElements)
        #expect(items.count == 2)
        #expect(items[0].member("Body").stringValue == "abc")
        #expect(items[0].member("Choice").member("Value").intValue == 1)
        #expect(items[1].member("Body").stringValue == "xy", "the second item starts where the first one's size lambda ends")
        #expect(items[1].member("Choice").member("Doubled").intValue == 42)
        #expect(h.member("Stamp").stringValue == "2023-11-14T22:13:20Z")
        #expect(h.member("FileTime").stringValue == "2023-11-14T22:13:20Z")
        #expect(h.member("Wide").stringValue == "hi!")
        #expect(h.member("Far").member("Len").intValue == 16)
        #expect(h.member("Ptr").member("Len").intValue == 3, "the pointer leads to the first item at 16")
    }

    @Test func sizeOfStartOfAndFilesReadInPlace() throws {
        let path = try writeTemporary(Self.sample())
        let (rows, log) = try detect("""
            LET P = '''\(Self.profile)'''
            LET I = parse_binary(filename='\(path)', profile=P, struct='Item', offset=23)
            SELECT I.SizeOf AS SizeOf, I.StartOf AS StartOf, I.EndOf AS EndOf, I AS I FROM scope()
            """)
        #expect(log.isEmpty, "\(log)")
        let row = try #require(rows.first)
        #expect(row.member("SizeOf").intValue == 6)
        #expect(row.member("StartOf").intValue == 23)
        #expect(row.member("EndOf").intValue == 29)
        let item = row.member("I")
        #expect(item.member("Body").stringValue == "xy")
    }

    /// The wtmp profile of Velociraptor's Linux.Sys.LastUserLogin over records written here.
    @Test func utmpRecordsAsLastUserLoginReadsThem() throws {
        func record(type: Int16, pid: Int32, line: String, user: String, time: UInt32) -> [UInt8] {
            var r = [UInt8](repeating: 0, count: 384)
            r[0] = UInt8(truncatingIfNeeded: type)
            for k in 0..<4 { r[4 + k] = UInt8(truncatingIfNeeded: pid >> (8 * Int32(k))) }
            for (k, c) in line.utf8.enumerated() { r[8 + k] = c }
            for (k, c) in user.utf8.enumerated() { r[44 + k] = c }
            for k in 0..<4 { r[340 + k] = UInt8(truncatingIfNeeded: time >> (8 * UInt32(k))) }
            return r
        }
        let data = record(type: 7, pid: 42, line: "pts/1", user: "alice", time: 1_700_000_000)
            + record(type: 8, pid: 42, line: "pts/1", user: "", time: 1_700_000_600)
        let path = try writeTemporary(data, name: "wtmp")
        let profile = #"""
          [
            ["Header", 0, [
            ["records", 0, "Array", {"type": "utmp", "count": "x=>MaxCount", "max_count": 100000,}],
            ]],
            ["utmp", 384, [
                ["ut_type", 0, "Enumeration", {"type": "short int", "choices": {"7": "USER_PROCESS", "8": "DEAD_PROCESS"}}],
                ["ut_pid", 4, "int"],
                ["ut_terminal", 8, "String", {"length": 32}],
                ["ut_user", 44, "String", {"length": 32}],
                ["ut_timestamp", 340, "Timestamp", {"type": "uint32",}],
              ]]
            ]]
            ]
          """#
        let (rows, log) = try detect("""
            LET MaxCount <= 10000
            SELECT * FROM foreach(row=parse_binary(filename='\(path)', profile='''\(profile)''', struct='Header').records)
            """)
        #expect(log.isEmpty, "\(log)")
        #expect(rows.count == 2, "the array stops at the end of the file, not at MaxCount")
        #expect(rows.first?.member("ut_type").stringValue == "USER_PROCESS")
        #expect(rows.first?.member("ut_user").stringValue == "alice")
        #expect(rows.last?.member("ut_type").stringValue == "DEAD_PROCESS")
        #expect(rows.last.map { JSONWriter.string($0.member("ut_timestamp")) } == "\"2023-11-14T22:23:20Z\"")
    }

    @Test func badProfilesAreLoggedErrors() throws {
        for profile in ["not json", "[[\"A\", 0, [[\"f\", 0, \"Array\"]]]]", "{\"a\": 1}"] {
            let (rows, log) = try detect("SELECT parse_binary(accessor='data', filename='abc', profile='''\(profile)''', struct='A') AS X FROM scope()")
            #expect(rows.first?.member("X").isNull == true)
            #expect(log.contains { $0.hasPrefix("ERROR: parse_binary") }, "\(profile): \(log)")
        }
        let (rows, log) = try detect("SELECT parse_binary(accessor='data', filename='abc', profile='[]', struct='Missing') AS X FROM scope()")
        #expect(rows.first?.member("X").isNull == true)
        #expect(log.contains { $0.contains("Missing") })
    }

    @Test func cyclesAndHugeDeclaredSizesAreBounded() throws {
        let profile = #"""
        [
          ["Loop", 8, [
            ["Self", "x=>x.Self", "uint8"],
            ["Next", 0, "Pointer", {"type": "Loop"}],
            ["Huge", 0, "String", {"length": 99999999999, "max_length": 99999999999}],
            ["Many", 0, "Array", {"type": "uint8", "count": 99999999999, "max_count": 99999999999}],
            ["ManyStructs", 0, "Array", {"type": "Loop", "count": 1000000000, "max_count": 1000000000}],
            ["Recursive", 0, "Loop"],
            ["SizeLoop", 0, "Array", {"type": "Sized", "count": 5}],
          ]],
          ["Sized", "x=>x.SizeOf", [["a", 0, "uint8"]]]
        ]
        """#
        let start = Date()
        // The pointer at offset 0 points at offset 0: a cycle.
        let (json, log) = try detectJSON("SELECT parse_binary(accessor='data', filename=unhex(string='0000000000000000'), profile='''\(profile)''', struct='Loop') AS L FROM scope()")
        #expect(Date().timeIntervalSince(start) < 60)
        #expect(json.count < 50_000_000)
        #expect(log.contains { $0.contains("depends on itself") }, "\(log)")
        #expect(log.contains { $0.contains("nesting deeper") }, "\(log)")
        let l = try #require(try JSONParser.parse(json).listElements?.first?.member("L"))
        #expect(l.member("Self").isNull)
        #expect(l.member("Huge").stringValue == "", "a string past the end reads what exists")
        #expect(l.member("Many").listElements?.count == 8, "an array stops at the end of the data")
    }

    @Test func truncatedInputGivesNulls() throws {
        let bytes = Array(Self.sample().prefix(13))
        let (json, _) = try detectJSON("SELECT parse_binary(accessor='data', filename=unhex(string='\(hex(bytes))'), profile='''\(Self.profile)''', struct='Header', env=dict(Extra=0)) AS H FROM scope()")
        let h = try #require(try JSONParser.parse(json).listElements?.first?.member("H"))
        #expect(h.member("Version").intValue == 2)
        #expect(h.member("Stamp").isNull)
        #expect(h.member("Items").listElements?.isEmpty == true)
    }

    /// Random mutations of the sample under the full profile: every result materializes, nothing
    /// crashes or hangs.
    @Test func fuzzMutatedInputs() throws {
        var random = SeededRandom(seed: 0xB1A5)
        let session = detectSession()
        _ = try session.run("LET P <= '''\(Self.profile)'''")
        let sample = Self.sample()
        for _ in 0..<FuzzBudget.iterations {
            let input = random.mutate(sample)
            let results = try session.run("SELECT parse_binary(accessor='data', filename=unhex(string='\(hex(input))'), profile=P, struct='Header', env=dict(Extra=1)) AS H FROM scope()")
            let rows = (results.last ?? nil) ?? []
            #expect(rows.count == 1)
            _ = JSONWriter.string(Value.list(rows).materialized())
        }
    }
}

/// Velociraptor's Secure Boot artifact profile (Generic.System.EfiSignatures) over a signature
/// database built here: an X.509 list (parsed by parse_x509 from inside the profile) and a
/// SHA-256 list (hashes rendered with format('%048x')).
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: OpenSSLFixture.openssl)))
struct EfiSignatureProfileTests {
    static func artifactProfile() -> String? {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for root in [repo.deletingLastPathComponent().path + "/shared", "/work/shared"] {
            guard let text = try? String(contentsOfFile: root + "/conformance/velociraptor-artifacts/Generic/System/EfiSignatures.yaml", encoding: .utf8),
                  let start = text.range(of: "LET PROFILE = '''"), let end = text[start.upperBound...].range(of: "'''") else { continue }
            return String(text[start.upperBound..<end.lowerBound])
        }
        return nil
    }

    @Test(.enabled(if: artifactProfile() != nil)) func certificatesAndHashes() throws {
        let profile = try #require(Self.artifactProfile())
        let cert = try OpenSSLFixture().bytes("cert.der")
        func guid(_ text: String) -> [UInt8] {
            let u = UUID(uuidString: text)?.uuid ?? (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let b = [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
            return [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]] + Array(b[8...])
        }
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let owner = guid("77FA9ABD-0359-4D32-BD60-28F4E78F784B")
        let signature = owner + cert
        var db = le32(0x27)
        db += guid("A5C059A1-94E4-4AA7-87B5-AB155C2BF072") + le32(28 + signature.count) + le32(0) + le32(signature.count) + signature
        db += guid("C1C41626-504C-4092-ACA9-41F936934328") + le32(28 + 96) + le32(0) + le32(48)
        db += owner + [UInt8](repeating: 0xAB, count: 32) + owner + [UInt8](repeating: 0x01, count: 32)
        let path = try writeTemporary(db, name: "db-d719b2cb-3d3a-4596-a3bc-dad00e67656f")
        let (rows, log) = try detect("""
            LET PROFILE = '''\(profile)'''
            SELECT * FROM foreach(row=parse_binary(filename='\(path)', profile=PROFILE, struct='EfiSignatures').Signatures,
              query={ SELECT Payload.Owner AS Owner, Payload.Cert.Subject AS Subject, Payload.Hashes.Hash AS Hashes FROM scope() })
            """)
        #expect(!log.contains { $0.hasPrefix("ERROR") }, "\(log)")
        #expect(rows.count == 2)
        #expect(rows.first?.member("Owner").stringValue == "{77fa9abd-0359-4d32-bd60-28f4e78f784b}")
        #expect(rows.first?.member("Subject").stringValue == "CN=quarry.test,O=Quarry Test,C=NZ")
        #expect(rows.last?.member("Hashes").listElements?.compactMap(\.stringValue) == [String(repeating: "ab", count: 32), String(repeating: "01", count: 32)])
    }
}
