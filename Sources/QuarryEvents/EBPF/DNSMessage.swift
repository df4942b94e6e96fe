import QuarryHost
import VQL

/// A DNS message (RFC 1035) parsed into Tracee's `proto_dns` shape: header fields, then
/// `questions` {name, type, class} and `answers`/`authorities`/`additionals` {name, type,
/// class, TTL, IP, NS, CNAME, PTR, MX, TXTs}. Packets come from the network: every length and
/// pointer is checked, compression pointers are followed at most 32 times, and records are
/// capped, so no packet can make it loop or read out of bounds.
enum DNSMessage {
    static let maxRecords = 64

    static func parse(_ packet: [UInt8]) -> Value {
        guard packet.count >= 12 else { return .dict(Dict()) }
        func u16(_ at: Int) -> Int { Int(packet[at]) << 8 | Int(packet[at + 1]) }
        let flags = u16(2)
        let counts = [u16(4), u16(6), u16(8), u16(10)]
        var pairs: [(String, Value)] = [
            ("ID", .from(u16(0))), ("QR", .from(flags >> 15 & 1)), ("opCode", .string(opcode(flags >> 11 & 0xF))),
            ("AA", .from(flags >> 10 & 1)), ("TC", .from(flags >> 9 & 1)), ("RD", .from(flags >> 8 & 1)),
            ("RA", .from(flags >> 7 & 1)), ("Z", .from(flags >> 4 & 7)), ("responseCode", .string(rcode(flags & 0xF))),
            ("QDCount", .from(counts[0])), ("ANCount", .from(counts[1])), ("NSCount", .from(counts[2])), ("ARCount", .from(counts[3])),
        ]
        var offset = 12
        var questions: [Value] = []
        for _ in 0..<min(counts[0], maxRecords) {
            guard let (name, next) = readName(packet, at: offset), next + 4 <= packet.count else { break }
            questions.append(.dict(Dict([("name", .string(name)), ("type", .string(typeName(u16(next)))), ("class", .string(className(u16(next + 2))))])))
            offset = next + 4
        }
        pairs.append(("questions", .list(questions)))
        for (key, count) in [("answers", counts[1]), ("authorities", counts[2]), ("additionals", counts[3])] {
            var records: [Value] = []
            for _ in 0..<min(count, maxRecords) {
                guard let (record, next) = readRecord(packet, at: offset) else { break }
                records.append(record)
                offset = next
            }
            pairs.append((key, .list(records)))
        }
        return .dict(Dict(pairs))
    }

    static func readRecord(_ packet: [UInt8], at start: Int) -> (Value, Int)? {
        guard let (name, next) = readName(packet, at: start), next + 10 <= packet.count else { return nil }
        func u16(_ at: Int) -> Int { Int(packet[at]) << 8 | Int(packet[at + 1]) }
        let type = u16(next), klass = u16(next + 2)
        let ttl = Int64(packet[next + 4]) << 24 | Int64(packet[next + 5]) << 16 | Int64(packet[next + 6]) << 8 | Int64(packet[next + 7])
        let length = u16(next + 8)
        let data = next + 10
        guard data + length <= packet.count else { return nil }
        var ip = "", ns = "", cname = "", ptr = ""
        var txts: [Value] = []
        var mx: Value = .null
        switch type {
        case 1 where length == 4, 28 where length == 16:
            ip = IPAddress.format(Array(packet[data..<(data + length)])) ?? ""
        case 2: ns = readName(packet, at: data)?.0 ?? ""
        case 5: cname = readName(packet, at: data)?.0 ?? ""
        case 12: ptr = readName(packet, at: data)?.0 ?? ""
        case 15 where length >= 3:
            mx = .dict(Dict([("Preference", .from(u16(data))), ("Name", .string(readName(packet, at: data + 2)?.0 ?? ""))]))
        case 16:
            var position = data
            while position < data + length {
                let size = Int(packet[position])
                let end = min(data + length, position + 1 + size)
                txts.append(.string(bytes: Array(packet[(position + 1)..<end])))
                position = end
            }
        default: break
        }
        let record = Dict([
            ("name", .string(name)), ("type", .string(typeName(type))), ("class", .string(className(klass))),
            ("TTL", .int(ttl)), ("IP", .string(ip)), ("NS", .string(ns)), ("CNAME", .string(cname)),
            ("PTR", .string(ptr)), ("TXTs", .list(txts)), ("MX", mx),
        ])
        return (.dict(record), data + length)
    }

    /// A (possibly compressed) domain name and the offset just after it in the record.
    static func readName(_ packet: [UInt8], at start: Int) -> (String, Int)? {
        var labels: [String] = []
        var position = start
        var end: Int?
        var jumps = 0
        while position < packet.count {
            let length = Int(packet[position])
            if length == 0 {
                return (labels.joined(separator: "."), end ?? position + 1)
            }
            if length & 0xC0 == 0xC0 {
                guard position + 1 < packet.count, jumps < 32 else { return nil }
                if end == nil { end = position + 2 }
                position = (length & 0x3F) << 8 | Int(packet[position + 1])
                jumps += 1
                continue
            }
            guard length < 64, position + 1 + length <= packet.count, labels.count < 128 else { return nil }
            labels.append(String(decoding: packet[(position + 1)..<(position + 1 + length)], as: UTF8.self))
            position += 1 + length
        }
        return nil
    }

    static func typeName(_ type: Int) -> String {
        let names = [1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
                     41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY", 256: "URI"]
        return names[type] ?? String(type)
    }

    static func className(_ klass: Int) -> String {
        switch klass {
        case 1: return "IN"
        case 3: return "CH"
        case 4: return "HS"
        case 255: return "Any"
        default: return String(klass)
        }
    }

    static func opcode(_ code: Int) -> String {
        ["Query", "IQuery", "Status", "3", "Notify", "Update"][safe: code] ?? String(code)
    }

    static func rcode(_ code: Int) -> String {
        ["No Error", "Format Error", "Server Failure", "Non-Existent Domain", "Not Implemented", "Query Refused"][safe: code] ?? String(code)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
