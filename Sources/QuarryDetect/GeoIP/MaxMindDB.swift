import Foundation
import VQL

/// A reader of MaxMind DB files (`.mmdb`: GeoLite2/GeoIP2 City, Country, ASN, and the many
/// third-party databases in the same format), written from the published format specification.
/// The file is a binary search tree over address bits followed by a data section of typed values;
/// a lookup walks the tree (32 bits for IPv4, 128 for IPv6) to a record and decodes it.
///
/// The file is hostile input like any other evidence: every offset, size and pointer is checked
/// against the buffer, decoding depth is bounded, and a malformed file gives an error, not a trap.
public final class MaxMindDB: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Nested maps and arrays deeper than this are refused.
    static let maximumDepth = 32
    /// Files larger than this are refused (the largest public databases are ~100 MB).
    static let maximumFileBytes = 2 << 30

    let bytes: [UInt8]
    public let nodeCount: Int
    public let recordSize: Int
    public let ipVersion: Int
    public let databaseType: String
    public let metadata: Value
    let dataStart: Int
    /// The node where IPv4 lookups start in an IPv6 tree (after 96 zero bits).
    private let ipv4Start: Int

    public convenience init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure("cannot open \(path)") }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        guard size <= UInt64(Self.maximumFileBytes) else { throw Failure("\(path) is larger than 2 GiB") }
        try handle.seek(toOffset: 0)
        try self.init(bytes: [UInt8](handle.readDataToEndOfFile()))
    }

    public init(bytes: [UInt8]) throws {
        self.bytes = bytes
        let marker: [UInt8] = [0xAB, 0xCD, 0xEF] + Array("MaxMind.com".utf8)
        guard let markerAt = Self.lastIndex(of: marker, in: bytes) else { throw Failure("not a MaxMind DB file (no metadata marker)") }
        var decoder = Decoder(bytes: bytes, base: markerAt + marker.count)
        var cursor = markerAt + marker.count
        let metadata = try decoder.decode(at: &cursor, depth: 0)
        guard case .dict(let fields) = metadata else { throw Failure("the metadata is not a map") }
        func number(_ key: String) -> Int? { fields[key]?.intValue.map { Int(clamping: $0) } }
        guard let nodeCount = number("node_count"), let recordSize = number("record_size"), let ipVersion = number("ip_version") else {
            throw Failure("the metadata lacks node_count, record_size or ip_version")
        }
        guard [24, 28, 32].contains(recordSize) else { throw Failure("unsupported record size \(recordSize)") }
        guard ipVersion == 4 || ipVersion == 6 else { throw Failure("unsupported ip_version \(ipVersion)") }
        let treeSize = nodeCount.multipliedReportingOverflow(by: recordSize / 4)
        guard nodeCount > 0, !treeSize.overflow, treeSize.partialValue + 16 <= markerAt else {
            throw Failure("the search tree (\(nodeCount) nodes) does not fit in the file")
        }
        self.nodeCount = nodeCount
        self.recordSize = recordSize
        self.ipVersion = ipVersion
        self.databaseType = fields["database_type"]?.stringValue ?? ""
        self.metadata = metadata
        self.dataStart = treeSize.partialValue + 16
        var node = 0
        if ipVersion == 6 {
            for _ in 0..<96 where node < nodeCount { node = Self.record(bytes, node: node, bit: 0, size: recordSize) }
        }
        self.ipv4Start = node
    }

    /// The record for `address` (4 or 16 bytes) and the prefix length of its network; nil when the
    /// database holds nothing for it.
    public func lookup(_ address: [UInt8]) throws -> (value: Value, prefix: Int)? {
        let address = IPAddress.unmapped(address)
        if ipVersion == 4 && address.count == 16 { return nil }
        var node = 0
        var depth = 0
        if address.count == 4 {
            node = ipv4Start
            depth = ipVersion == 6 ? 96 : 0
        }
        let bits = address.count * 8
        var i = 0
        while i < bits && node < nodeCount {
            let bit = Int((address[i >> 3] >> (7 - UInt8(i & 7))) & 1)
            node = Self.record(bytes, node: node, bit: bit, size: recordSize)
            i += 1
        }
        guard node > nodeCount else { return nil }  // == nodeCount: no data; < nodeCount: ran out of bits
        let offset = node - nodeCount - 16
        guard offset >= 0, dataStart + offset < bytes.count else { throw Failure("a record points outside the data section") }
        var decoder = Decoder(bytes: bytes, base: dataStart)
        var cursor = dataStart + offset
        return (try decoder.decode(at: &cursor, depth: 0), depth + i)
    }

    /// The left (0) or right (1) record of `node`.
    static func record(_ bytes: [UInt8], node: Int, bit: Int, size: Int) -> Int {
        let width = size / 4
        let at = node * width
        guard at + width <= bytes.count else { return Int.max }
        func be(_ from: Int, _ count: Int) -> Int { (0..<count).reduce(0) { $0 << 8 | Int(bytes[from + $1]) } }
        switch size {
        case 24: return bit == 0 ? be(at, 3) : be(at + 3, 3)
        case 28:
            let middle = Int(bytes[at + 3])
            return bit == 0 ? (middle & 0xF0) << 20 | be(at, 3) : (middle & 0x0F) << 24 | be(at + 4, 3)
        default: return bit == 0 ? be(at, 4) : be(at + 4, 4)
        }
    }

    static func lastIndex(of marker: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= marker.count else { return nil }
        // The metadata sits in the last 128 KiB of the file.
        let lowest = max(0, bytes.count - (128 << 10) - marker.count)
        var i = bytes.count - marker.count
        while i >= lowest {
            if bytes[i] == marker[0] && bytes[i..<(i + marker.count)].elementsEqual(marker) { return i }
            i -= 1
        }
        return nil
    }

    /// The data section's typed values (maps, arrays, strings, numbers, pointers), decoded into VQL values.
    struct Decoder {
        let bytes: [UInt8]
        /// Where pointers count from.
        let base: Int

        func need(_ cursor: Int, _ count: Int) throws {
            guard count >= 0, cursor >= 0, cursor <= bytes.count - count else { throw Failure("a value runs past the end of the file") }
        }

        func unsigned(_ cursor: Int, _ count: Int) throws -> UInt64 {
            try need(cursor, count)
            guard count <= 8 else { return 0 }
            return (0..<count).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[cursor + $1]) }
        }

        mutating func decode(at cursor: inout Int, depth: Int) throws -> Value {
            guard depth < MaxMindDB.maximumDepth else { throw Failure("values nest deeper than \(MaxMindDB.maximumDepth)") }
            try need(cursor, 1)
            let control = Int(bytes[cursor])
            cursor += 1
            var type = control >> 5
            if type == 1 {  // a pointer: its size bits are part of the value
                let sizeBits = (control >> 3) & 0x3
                let high = UInt64(control & 0x7)
                let target: UInt64
                switch sizeBits {
                case 0: target = high << 8 | (try unsigned(cursor, 1))
                case 1: target = (high << 16 | (try unsigned(cursor, 2))) + 2048
                case 2: target = (high << 24 | (try unsigned(cursor, 3))) + 526_336
                default: target = try unsigned(cursor, 4)
                }
                cursor += sizeBits + 1
                guard target < UInt64(bytes.count - base) else { throw Failure("a pointer leads outside the data section") }
                var at = base + Int(target)
                return try decode(at: &at, depth: depth + 1)
            }
            if type == 0 {
                try need(cursor, 1)
                type = 7 + Int(bytes[cursor])
                cursor += 1
            }
            var size = control & 0x1F
            switch size {
            case 29: size = 29 + Int(try unsigned(cursor, 1)); cursor += 1
            case 30: size = 285 + Int(try unsigned(cursor, 2)); cursor += 2
            case 31: size = 65_821 + Int(try unsigned(cursor, 3)); cursor += 3
            default: break
            }
            switch type {
            case 2:  // UTF-8 string
                try need(cursor, size)
                defer { cursor += size }
                return .string(String(decoding: bytes[cursor..<(cursor + size)], as: UTF8.self))
            case 3:  // double
                guard size == 8 else { throw Failure("a double of \(size) bytes") }
                defer { cursor += 8 }
                return .double(Double(bitPattern: try unsigned(cursor, 8)))
            case 4:  // bytes
                try need(cursor, size)
                defer { cursor += size }
                return .bytes(Array(bytes[cursor..<(cursor + size)]))
            case 5, 6, 9:  // uint16, uint32, uint64
                guard size <= (type == 5 ? 2 : type == 6 ? 4 : 8) else { throw Failure("an unsigned integer of \(size) bytes") }
                defer { cursor += size }
                let value = try unsigned(cursor, size)
                return value <= UInt64(Int64.max) ? .int(Int64(value)) : .double(Double(value))
            case 10:  // uint128: printed as decimal when it does not fit
                guard size <= 16 else { throw Failure("a uint128 of \(size) bytes") }
                try need(cursor, size)
                defer { cursor += size }
                let digits = bytes[cursor..<(cursor + size)].drop { $0 == 0 }
                if digits.count <= 7 { return .int(Int64(digits.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })) }
                return .string("0x" + digits.map { String(format: "%02x", $0) }.joined())
            case 8:  // int32
                guard size <= 4 else { throw Failure("an int32 of \(size) bytes") }
                defer { cursor += size }
                let raw = UInt32(truncatingIfNeeded: try unsigned(cursor, size))
                return .int(Int64(size == 4 ? Int32(bitPattern: raw) : Int32(raw)))
            case 14:  // boolean: the size is the value
                return .bool(size != 0)
            case 15:  // float
                guard size == 4 else { throw Failure("a float of \(size) bytes") }
                defer { cursor += 4 }
                return .double(Double(Float(bitPattern: UInt32(try unsigned(cursor, 4)))))
            case 7:  // map
                var pairs: [(String, Value)] = []
                pairs.reserveCapacity(min(size, 256))
                for _ in 0..<size {
                    let key = try decode(at: &cursor, depth: depth + 1)
                    guard let name = key.stringValue else { throw Failure("a map key that is not a string") }
                    pairs.append((name, try decode(at: &cursor, depth: depth + 1)))
                }
                return .dict(Dict(pairs))
            case 11:  // array
                guard size <= bytes.count else { throw Failure("an array longer than the file") }
                var items: [Value] = []
                for _ in 0..<size { items.append(try decode(at: &cursor, depth: depth + 1)) }
                return .list(items)
            default:
                throw Failure("unknown value type \(type)")
            }
        }
    }
}
