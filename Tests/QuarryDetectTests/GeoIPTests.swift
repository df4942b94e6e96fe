import Foundation
import Testing
import VQL

@testable import QuarryDetect

/// geoip() over MaxMind DB files written here from the format specification, in all three record
/// sizes, each first read by libmaxminddb's own `mmdblookup` (Debian's mmdb-bin) so the file is
/// known to be valid; then the same lookups through geoip() must give the same record.
@Suite struct GeoIPTests {
    /// A value of the data section.
    indirect enum Item {
        case string(String), double(Double), uint16(UInt16), uint32(UInt32), uint64(UInt64), int32(Int32), bool(Bool)
        case map([(String, Item)]), array([Item]), pointer(Int)
    }

    static func control(_ type: Int, _ size: Int) -> [UInt8] {
        var out: [UInt8] = []
        var sizeBits: Int
        var extra: [UInt8] = []
        switch size {
        case ..<29: sizeBits = size
        case ..<285: sizeBits = 29; extra = [UInt8(size - 29)]
        case ..<65_821: sizeBits = 30; extra = [UInt8((size - 285) >> 8), UInt8((size - 285) & 0xFF)]
        default: sizeBits = 31; let s = size - 65_821; extra = [UInt8(s >> 16), UInt8((s >> 8) & 0xFF), UInt8(s & 0xFF)]
        }
        if type <= 7 {
            out.append(UInt8(type << 5 | sizeBits))
        } else {
            out.append(UInt8(sizeBits))
            out.append(UInt8(type - 7))
        }
        return out + extra
    }

    static func bigEndian(_ value: UInt64, minimal: Bool = true) -> [UInt8] {
        var bytes = (0..<8).map { UInt8((value >> (56 - 8 * UInt64($0))) & 0xFF) }
        if minimal { bytes = Array(bytes.drop { $0 == 0 }) }
        return bytes
    }

    static func encode(_ item: Item) -> [UInt8] {
        switch item {
        case .string(let s): return control(2, s.utf8.count) + Array(s.utf8)
        case .double(let d): return control(3, 8) + bigEndian(d.bitPattern, minimal: false)
        case .uint16(let v): let b = bigEndian(UInt64(v)); return control(5, b.count) + b
        case .uint32(let v): let b = bigEndian(UInt64(v)); return control(6, b.count) + b
        case .uint64(let v): let b = bigEndian(UInt64(v)); return control(9, b.count) + b
        case .int32(let v): let b = Array(bigEndian(UInt64(UInt32(bitPattern: v)), minimal: false).suffix(4)); return control(8, 4) + b
        case .bool(let v): return control(14, v ? 1 : 0)
        case .map(let pairs): return control(7, pairs.count) + pairs.flatMap { encode(.string($0.0)) + encode($0.1) }
        case .array(let items): return control(11, items.count) + items.flatMap(encode)
        case .pointer(let target):
            precondition(target < 2048)
            return [UInt8(1 << 5 | (target >> 8)), UInt8(target & 0xFF)]
        }
    }

    /// A database with `networks` (CIDR text → record) in an IPv6 tree of `recordSize`-bit records.
    static func database(_ networks: [(String, Item)], recordSize: Int, shared: [Item] = []) -> [UInt8] {
        var data: [UInt8] = []
        for item in shared { data += encode(item) }
        var offsets: [Int] = []
        for (_, item) in networks {
            offsets.append(data.count)
            data += encode(item)
        }
        // The trie: node i has two children; -1 is empty, -2 - k is data record k.
        var nodes: [[Int]] = [[-1, -1]]
        for (index, (cidr, _)) in networks.enumerated() {
            let parts = cidr.split(separator: "/")
            var address = IPAddress.parse(String(parts[0]))!
            var bits = Int(parts[1])!
            if address.count == 4 {
                address = [UInt8](repeating: 0, count: 12) + address
                bits += 96
            }
            var node = 0
            for i in 0..<bits {
                let bit = Int((address[i / 8] >> (7 - UInt8(i % 8))) & 1)
                if i == bits - 1 {
                    nodes[node][bit] = -2 - index
                } else {
                    if nodes[node][bit] < 0 {
                        nodes.append([-1, -1])
                        nodes[node][bit] = nodes.count - 1
                    }
                    node = nodes[node][bit]
                }
            }
        }
        let count = nodes.count
        func record(_ child: Int) -> Int {
            if child >= 0 { return child }
            if child == -1 { return count }
            return count + 16 + offsets[-2 - child]
        }
        var tree: [UInt8] = []
        for node in nodes {
            let (left, right) = (record(node[0]), record(node[1]))
            switch recordSize {
            case 24: tree += bigEndian(UInt64(left), minimal: false).suffix(3) + bigEndian(UInt64(right), minimal: false).suffix(3)
            case 28:
                tree += bigEndian(UInt64(left & 0xFFFFFF), minimal: false).suffix(3)
                tree.append(UInt8((left >> 20) & 0xF0 | (right >> 24) & 0x0F))
                tree += bigEndian(UInt64(right & 0xFFFFFF), minimal: false).suffix(3)
            default: tree += bigEndian(UInt64(left), minimal: false).suffix(4) + bigEndian(UInt64(right), minimal: false).suffix(4)
            }
        }
        let metadata = Item.map([
            ("node_count", .uint32(UInt32(count))), ("record_size", .uint16(UInt16(recordSize))), ("ip_version", .uint16(6)),
            ("database_type", .string("Quarry-Test-City")), ("languages", .array([.string("en")])),
            ("binary_format_major_version", .uint16(2)), ("binary_format_minor_version", .uint16(0)),
            ("build_epoch", .uint64(1_796_000_000)), ("description", .map([("en", .string("test database"))])),
        ])
        return tree + [UInt8](repeating: 0, count: 16) + data + [0xAB, 0xCD, 0xEF] + Array("MaxMind.com".utf8) + encode(metadata)
    }

    static let springfield = Item.map([
        ("city", .map([("names", .map([("en", .string("Springfield")), ("de", .string("Springfeld"))]))])),
        ("country", .map([("iso_code", .string("US")), ("geoname_id", .uint32(6_252_001))])),
        ("location", .map([("latitude", .double(39.7817)), ("longitude", .double(-89.6501)), ("accuracy_radius", .uint16(20))])),
        ("traits", .map([("is_anycast", .bool(false)), ("population", .uint64(5_000_000_000)), ("offset", .int32(-42))])),
    ])

    /// A network whose record reaches a shared string through a pointer.
    static let documentation = Item.map([
        ("country", .map([("iso_code", .pointer(0))])),
        ("subdivisions", .array([.map([("names", .map([("en", .string("Docs"))]))])])),
        ("long", .string(String(repeating: "x", count: 300))),
    ])

    static func write(_ bytes: [UInt8]) throws -> String {
        try writeTemporary(bytes, name: "test.mmdb")
    }

    static func mmdblookup(_ path: String, _ ip: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mmdblookup")
        process.arguments = ["--file", path, "--ip", ip]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    static var hasTool: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/mmdblookup") }

    @Test(.enabled(if: hasTool, "needs mmdblookup (Debian's mmdb-bin, installed by make test)"), arguments: [24, 28, 32])
    func lookupsAgreeWithLibmaxminddb(recordSize: Int) throws {
        let path = try Self.write(Self.database([
            ("1.2.3.0/24", Self.springfield), ("2001:db8::/32", Self.documentation), ("10.0.0.0/8", .map([("asn", .uint32(64_512))])),
        ], recordSize: recordSize, shared: [.string("ZZ")]))
        // The reference reader accepts the file and finds what was written.
        let reference = try Self.mmdblookup(path, "1.2.3.4")
        #expect(reference.status == 0, "\(reference.output)")
        #expect(reference.output.contains("\"Springfield\" <utf8_string>") && reference.output.contains("39.781700 <double>"), "\(reference.output)")
        let docs = try Self.mmdblookup(path, "2001:db8::7")
        #expect(docs.output.contains("\"ZZ\" <utf8_string>") && docs.output.contains("\"Docs\" <utf8_string>"), "\(docs.output)")
        #expect(try Self.mmdblookup(path, "8.8.8.8").output.contains("Could not find an entry"))

        let (rows, log) = try detect("""
            SELECT geoip(ip='1.2.3.4', db=DB) AS A, geoip(ip='::ffff:1.2.3.200', db=DB).city.names.en AS Mapped,
                   geoip(ip='2001:db8:1::1', db=DB) AS B, geoip(ip='10.9.8.7', db=DB).asn AS ASN,
                   geoip(ip='8.8.8.8', db=DB) AS None, geoip(ip='not an address', db=DB) AS Bad
            FROM scope()
            """) { $0.root.set("DB", .string(path)) }
        let row = try #require(rows.first, "\(log)")
        let a = row.member("A")
        #expect(a.member("city").member("names").member("en").stringValue == "Springfield")
        #expect(a.member("country").member("iso_code").stringValue == "US")
        #expect(a.member("country").member("geoname_id").intValue == 6_252_001)
        #expect(a.member("location").member("latitude").doubleValue == 39.7817)
        #expect(a.member("location").member("longitude").doubleValue == -89.6501)
        #expect(a.member("traits").member("population").intValue == 5_000_000_000)
        #expect(a.member("traits").member("offset").intValue == -42)
        #expect({ if case .bool(false) = a.member("traits").member("is_anycast") { return true } else { return false } }())
        #expect(row.member("Mapped").stringValue == "Springfield")
        #expect(row.member("B").member("country").member("iso_code").stringValue == "ZZ")
        #expect(row.member("B").member("subdivisions").listElements?.first?.member("names").member("en").stringValue == "Docs")
        #expect(row.member("B").member("long").stringValue?.count == 300)
        #expect(row.member("ASN").intValue == 64_512)
        #expect(row.member("None").isNull && row.member("Bad").isNull)
        #expect(log.isEmpty, "\(log)")
        // The metadata as libmaxminddb reads it.
        let db = try MaxMindDB(path: path)
        #expect(db.nodeCount > 96 && db.recordSize == recordSize && db.ipVersion == 6 && db.databaseType == "Quarry-Test-City")
    }

    @Test func brokenAndHostileDatabasesAreRefusedNotTrapped() throws {
        let good = Self.database([("1.2.3.0/24", Self.springfield), ("2001:db8::/32", Self.documentation)], recordSize: 28, shared: [.string("ZZ")])
        let notADatabase = try Self.write(Array("hello".utf8))
        let (rows, log) = try detect("SELECT geoip(ip='1.2.3.4', db=DB) AS A, geoip(ip='1.2.3.4', db=DB) AS Again FROM scope()") {
            $0.root.set("DB", .string(notADatabase))
        }
        #expect(rows.first?.member("A").isNull == true)
        #expect(log.filter { $0.contains("not a MaxMind DB file") }.count == 1, "\(log)")
        // Truncations and mutations: an error or a record, never a trap.
        var random = SeededRandom(seed: 0x6E01)
        for round in 0..<FuzzBudget.iterations {
            let bytes = round % 3 == 0 ? Array(good.prefix(random.below(good.count))) : random.mutate(good)
            guard let db = try? MaxMindDB(bytes: bytes) else { continue }
            for ip in ["1.2.3.4", "2001:db8::1", "255.255.255.255", "::"] {
                _ = try? db.lookup(IPAddress.parse(ip)!)
            }
        }
        // A self-referencing pointer is bounded by the depth limit.
        var looping = Self.database([("1.2.3.0/24", .map([("x", .pointer(0))]))], recordSize: 24, shared: [.pointer(0)])
        looping.append(0)
        let db = try MaxMindDB(bytes: looping)
        #expect(throws: MaxMindDB.Failure.self) { _ = try db.lookup([1, 2, 3, 4]) }
    }
}
