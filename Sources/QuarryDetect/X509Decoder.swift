import Crypto
import Foundation
import SwiftASN1
import VQL

/// Reads X.509 certificates into dicts from the ASN.1 tree directly, so certificates that a
/// validating library refuses (1024-bit RSA, DSA, unusual extensions) still describe themselves:
/// a forensic reader reports what is there rather than judging it.
enum X509Decoder {
    struct DecodeError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Certificates in `data`: PEM (every CERTIFICATE block) or one or more DER certificates
    /// back to back. Blocks that do not decode are reported in `errors`.
    static func certificates(in data: [UInt8]) -> (certificates: [Dict], errors: [String]) {
        var out: [Dict] = []
        var errors: [String] = []
        for der in derBlocks(data, label: "CERTIFICATE") {
            do { out.append(try certificate(der)) } catch { errors.append("\(error)") }
        }
        return (out, errors)
    }

    /// The DER bodies of PEM blocks with `label` (any label when nil), or the input split into
    /// its top-level DER elements when it is not PEM.
    static func derBlocks(_ data: [UInt8], label: String?) -> [[UInt8]] {
        let text = String(decoding: data.prefix(1 << 24), as: UTF8.self)
        if text.contains("-----BEGIN ") {
            var blocks: [[UInt8]] = []
            var rest = Substring(text)
            while let begin = rest.range(of: "-----BEGIN ") {
                guard let labelEnd = rest[begin.upperBound...].range(of: "-----") else { break }
                let found = String(rest[begin.upperBound..<labelEnd.lowerBound])
                guard let end = rest[labelEnd.upperBound...].range(of: "-----END ") else { break }
                let body = rest[labelEnd.upperBound..<end.lowerBound]
                rest = rest[end.upperBound...]
                if let label, found != label && !found.hasSuffix(" " + label) { continue }
                let base64 = body.split(separator: "\n").filter { !$0.contains(":") }.joined().filter { !$0.isWhitespace }
                if let decoded = Data(base64Encoded: base64) { blocks.append([UInt8](decoded)) }
            }
            return blocks
        }
        return topLevelElements(data)
    }

    /// Splits concatenated DER elements (stops at the first malformed header).
    static func topLevelElements(_ data: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        while i + 2 <= data.count && out.count < 10_000 {
            guard data[i] == 0x30 else { break }
            var length = Int(data[i + 1])
            var header = 2
            if length & 0x80 != 0 {
                let n = length & 0x7F
                guard n > 0, n <= 4, i + 2 + n <= data.count else { break }
                length = 0
                for k in 0..<n { length = length << 8 | Int(data[i + 2 + k]) }
                header += n
            }
            guard length <= data.count - i - header else { break }
            out.append(Array(data[i..<(i + header + length)]))
            i += header + length
        }
        return out
    }

    // MARK: - Certificate

    static func certificate(_ der: [UInt8]) throws -> Dict {
        let root = try DER.parse(der)
        let top = try children(root)
        guard top.count >= 3 else { throw DecodeError(message: "x509: not a certificate") }
        var tbs = try children(top[0])
        var version: Int64 = 1
        if let first = tbs.first, first.identifier.tagClass == .contextSpecific, first.identifier.tagNumber == 0 {
            if let inner = try children(first).first, let v = integer(inner) { version = v + 1 }
            tbs.removeFirst()
        }
        guard tbs.count >= 6 else { throw DecodeError(message: "x509: truncated certificate body") }
        let validity = try children(tbs[3])
        var result = Dict()
        result["Version"] = .int(version)
        result["SerialNumber"] = .string(decimal(primitive(tbs[0]) ?? []))
        result["SignatureAlgorithm"] = .string(signatureName(algorithmOID(top[1]) ?? ""))
        let key = publicKey(tbs[5])
        result["PublicKeyAlgorithm"] = .string(key.algorithm)
        result["PublicKey"] = .dict(key.details)
        result["Issuer"] = .string(distinguishedName(tbs[2]))
        result["Subject"] = .string(distinguishedName(tbs[4]))
        result["NotBefore"] = validity.count > 0 ? time(validity[0]) : .null
        result["NotAfter"] = validity.count > 1 ? time(validity[1]) : .null
        var extensions = ExtensionValues()
        for node in tbs.dropFirst(6) where node.identifier.tagClass == .contextSpecific && node.identifier.tagNumber == 3 {
            if let list = try children(node).first { extensions = self.extensions(try children(list)) }
        }
        result["KeyUsage"] = .list(extensions.keyUsage.map { .string($0) })
        result["ExtKeyUsage"] = .list(extensions.extKeyUsage.map { .string($0) })
        result["IsCA"] = .bool(extensions.isCA)
        result["DNSNames"] = .list(extensions.dnsNames.map { .string($0) })
        result["EmailAddresses"] = .list(extensions.emails.map { .string($0) })
        result["IPAddresses"] = .list(extensions.ips.map { .string($0) })
        result["URIs"] = .list(extensions.uris.map { .string($0) })
        result["SubjectKeyId"] = .string(hexString(extensions.subjectKeyId))
        result["AuthorityKeyId"] = .string(hexString(extensions.authorityKeyId))
        result["Extensions"] = .list(extensions.all.map { .dict($0) })
        result["SHA1"] = .string(hexString(Array(Insecure.SHA1.hash(data: der))))
        result["SHA256"] = .string(hexString(Array(SHA256.hash(data: der))))
        return result
    }

    struct ExtensionValues {
        var keyUsage: [String] = []
        var extKeyUsage: [String] = []
        var isCA = false
        var dnsNames: [String] = []
        var emails: [String] = []
        var ips: [String] = []
        var uris: [String] = []
        var subjectKeyId: [UInt8] = []
        var authorityKeyId: [UInt8] = []
        var all: [Dict] = []
    }

    static let keyUsageNames = ["DigitalSignature", "ContentCommitment", "KeyEncipherment", "DataEncipherment",
                                "KeyAgreement", "CertSign", "CRLSign", "EncipherOnly", "DecipherOnly"]

    static let extKeyUsageNames: [String: String] = [
        "2.5.29.37.0": "Any", "1.3.6.1.5.5.7.3.1": "ServerAuth", "1.3.6.1.5.5.7.3.2": "ClientAuth",
        "1.3.6.1.5.5.7.3.3": "CodeSigning", "1.3.6.1.5.5.7.3.4": "EmailProtection", "1.3.6.1.5.5.7.3.8": "TimeStamping",
        "1.3.6.1.5.5.7.3.9": "OCSPSigning", "1.3.6.1.4.1.311.10.3.3": "MicrosoftServerGatedCrypto",
        "1.3.6.1.4.1.311.61.1.1": "MicrosoftKernelCodeSigning",
    ]

    static func extensions(_ nodes: [ASN1Node]) -> ExtensionValues {
        var values = ExtensionValues()
        for node in nodes.prefix(256) {
            guard let parts = try? children(node), parts.count >= 2, let oid = objectIdentifier(parts[0]) else { continue }
            let critical = parts.count > 2 && primitive(parts[1]) == [0xFF]
            guard let body = primitive(parts[parts.count - 1]) else { continue }
            values.all.append(Dict([("Id", .string(oid)), ("Critical", .bool(critical)), ("Value", .string(hexString(Array(body))))]))
            guard let inner = try? DER.parse(Array(body)) else { continue }
            switch oid {
            case "2.5.29.15":
                if let bits = primitive(inner), bits.count >= 2 {
                    let bytes = Array(bits.dropFirst())
                    for (i, name) in keyUsageNames.enumerated() where i / 8 < bytes.count && bytes[i / 8] & (0x80 >> UInt8(i % 8)) != 0 {
                        values.keyUsage.append(name)
                    }
                }
            case "2.5.29.37":
                for usage in (try? children(inner)) ?? [] {
                    if let id = objectIdentifier(usage) { values.extKeyUsage.append(extKeyUsageNames[id] ?? id) }
                }
            case "2.5.29.19":
                if let first = (try? children(inner))?.first, first.identifier == .boolean { values.isCA = primitive(first) == [0xFF] }
            case "2.5.29.17":
                for name in (try? children(inner)) ?? [] where name.identifier.tagClass == .contextSpecific {
                    guard let raw = primitive(name) else { continue }
                    let text = String(decoding: raw, as: UTF8.self)
                    switch name.identifier.tagNumber {
                    case 1: values.emails.append(text)
                    case 2: values.dnsNames.append(text)
                    case 6: values.uris.append(text)
                    case 7: values.ips.append(ipString(Array(raw)))
                    default: break
                    }
                }
            case "2.5.29.14":
                values.subjectKeyId = Array(primitive(inner) ?? [])
            case "2.5.29.35":
                for part in (try? children(inner)) ?? [] where part.identifier.tagClass == .contextSpecific && part.identifier.tagNumber == 0 {
                    values.authorityKeyId = Array(primitive(part) ?? [])
                }
            default: break
            }
        }
        return values
    }

    // MARK: - Parts

    static func children(_ node: ASN1Node) throws -> [ASN1Node] {
        guard case .constructed(let collection) = node.content else { throw DecodeError(message: "x509: expected a constructed value") }
        return Array(collection)
    }

    static func primitive(_ node: ASN1Node) -> ArraySlice<UInt8>? {
        if case .primitive(let bytes) = node.content { return bytes }
        return nil
    }

    static func integer(_ node: ASN1Node) -> Int64? {
        guard let bytes = primitive(node), !bytes.isEmpty, bytes.count <= 8 else { return nil }
        var value: Int64 = bytes.first.map { $0 & 0x80 != 0 ? -1 : 0 } ?? 0
        for b in bytes { value = value << 8 | Int64(b) }
        return value
    }

    static func objectIdentifier(_ node: ASN1Node) -> String? {
        guard node.identifier == .objectIdentifier, let bytes = primitive(node), !bytes.isEmpty else { return nil }
        var parts: [UInt64] = []
        var value: UInt64 = 0
        for b in bytes {
            guard value < (1 << 56) else { return nil }
            value = value << 7 | UInt64(b & 0x7F)
            if b & 0x80 == 0 {
                parts.append(value)
                value = 0
            }
        }
        guard let first = parts.first else { return nil }
        let head: [UInt64] = first < 80 ? [first / 40, first % 40] : [2, first - 80]
        return (head + parts.dropFirst()).map(String.init).joined(separator: ".")
    }

    static func algorithmOID(_ node: ASN1Node) -> String? {
        guard let first = (try? children(node))?.first else { return nil }
        return objectIdentifier(first)
    }

    static let signatureNames: [String: String] = [
        "1.2.840.113549.1.1.4": "MD5-RSA", "1.2.840.113549.1.1.5": "SHA1-RSA", "1.2.840.113549.1.1.11": "SHA256-RSA",
        "1.2.840.113549.1.1.12": "SHA384-RSA", "1.2.840.113549.1.1.13": "SHA512-RSA", "1.2.840.113549.1.1.10": "RSASSA-PSS",
        "1.2.840.10045.4.1": "ECDSA-SHA1", "1.2.840.10045.4.3.2": "ECDSA-SHA256", "1.2.840.10045.4.3.3": "ECDSA-SHA384",
        "1.2.840.10045.4.3.4": "ECDSA-SHA512", "1.3.101.112": "Ed25519", "1.2.840.10040.4.3": "DSA-SHA1",
        "2.16.840.1.101.3.4.3.2": "DSA-SHA256",
    ]

    static func signatureName(_ oid: String) -> String { signatureNames[oid] ?? oid }

    static let digestNames: [String: String] = [
        "1.2.840.113549.2.5": "MD5", "1.3.14.3.2.26": "SHA1", "2.16.840.1.101.3.4.2.1": "SHA256",
        "2.16.840.1.101.3.4.2.2": "SHA384", "2.16.840.1.101.3.4.2.3": "SHA512", "1.2.840.113549.1.1.1": "RSA",
    ]

    static let curveNames: [String: String] = [
        "1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384", "1.3.132.0.35": "P-521", "1.3.132.0.10": "secp256k1",
    ]

    static func publicKey(_ node: ASN1Node) -> (algorithm: String, details: Dict) {
        guard let parts = try? children(node), parts.count >= 2, let algorithm = try? children(parts[0]),
              let oid = algorithm.first.flatMap(objectIdentifier) else { return ("Unknown", Dict()) }
        let bits = primitive(parts[1]).map { Array($0.dropFirst()) } ?? []
        switch oid {
        case "1.2.840.113549.1.1.1":
            var details = Dict([("Algorithm", .string("RSA"))])
            if let key = try? DER.parse(bits), let numbers = try? children(key), numbers.count >= 2,
               var modulus = primitive(numbers[0]).map(Array.init) {
                while modulus.first == 0 { modulus.removeFirst() }
                details["Size"] = .int(Int64(modulus.count * 8 - (modulus.first.map { $0.leadingZeroBitCount } ?? 0)))
                details["Exponent"] = integer(numbers[1]).map { .int($0) } ?? .null
                details["Modulus"] = .string(hexString(modulus))
            }
            return ("RSA", details)
        case "1.2.840.10045.2.1":
            let curve = algorithm.count > 1 ? objectIdentifier(algorithm[1]).map { curveNames[$0] ?? $0 } : nil
            return ("ECDSA", Dict([("Algorithm", .string("ECDSA")), ("Curve", curve.map { .string($0) } ?? .null)]))
        case "1.3.101.112": return ("Ed25519", Dict([("Algorithm", .string("Ed25519"))]))
        case "1.2.840.10040.4.1": return ("DSA", Dict([("Algorithm", .string("DSA"))]))
        default: return (oid, Dict([("Algorithm", .string(oid))]))
        }
    }

    static let attributeNames: [String: String] = [
        "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET", "2.5.4.10": "O",
        "2.5.4.11": "OU", "2.5.4.5": "SERIALNUMBER", "2.5.4.17": "POSTALCODE", "1.2.840.113549.1.9.1": "emailAddress",
        "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
    ]

    /// A Name as text, most specific part first (RFC 4514, as Go prints pkix.Name).
    static func distinguishedName(_ node: ASN1Node) -> String {
        var rdns: [String] = []
        for set in (try? children(node)) ?? [] {
            var parts: [String] = []
            for attribute in (try? children(set)) ?? [] {
                guard let pair = try? children(attribute), pair.count == 2, let oid = objectIdentifier(pair[0]) else { continue }
                let value = primitive(pair[1]).map { stringValue($0, tag: pair[1].identifier) } ?? ""
                parts.append("\(attributeNames[oid] ?? oid)=\(escape(value))")
            }
            rdns.append(parts.joined(separator: "+"))
        }
        return rdns.reversed().joined(separator: ",")
    }

    static func stringValue(_ bytes: ArraySlice<UInt8>, tag: ASN1Identifier) -> String {
        if tag == .bmpString {
            var units: [UInt16] = []
            var i = bytes.startIndex
            while i + 1 < bytes.endIndex {
                units.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]))
                i += 2
            }
            return String(decoding: units, as: UTF16.self)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for (i, c) in value.enumerated() {
            if ",+\"\\<>;".contains(c) || (i == 0 && (c == "#" || c == " ")) { out.append("\\") }
            out.append(c)
        }
        return out
    }

    static func time(_ node: ASN1Node) -> Value {
        guard let bytes = primitive(node) else { return .null }
        var text = String(decoding: bytes, as: UTF8.self)
        if node.identifier == .utcTime, text.count >= 2, let yy = Int(text.prefix(2)) {
            text = (yy >= 50 ? "19" : "20") + text
        }
        let digits = text.prefix(14)
        guard digits.count == 14, digits.allSatisfy(\.isNumber) else { return .null }
        func part(_ from: Int, _ length: Int) -> Int { Int(digits.dropFirst(from).prefix(length)) ?? 0 }
        var components = DateComponents()
        (components.year, components.month, components.day) = (part(0, 4), part(4, 2), part(6, 2))
        (components.hour, components.minute, components.second) = (part(8, 2), part(10, 2), part(12, 2))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        guard let date = calendar.date(from: components) else { return .null }
        return .timestamp(Timestamp(seconds: date.timeIntervalSince1970))
    }

    static func ipString(_ raw: [UInt8]) -> String {
        if raw.count == 4 { return raw.map(String.init).joined(separator: ".") }
        if raw.count == 16 {
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(raw[$0]) << 8 | UInt16(raw[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
        return hexString(raw)
    }

    static func hexString(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A big-endian unsigned integer as decimal text.
    static func decimal(_ bytes: ArraySlice<UInt8>) -> String {
        var digits: [UInt8] = Array(bytes.drop { $0 == 0 })
        guard !digits.isEmpty else { return "0" }
        var out: [Character] = []
        while !digits.isEmpty {
            var remainder = 0
            var next: [UInt8] = []
            for d in digits {
                let value = remainder * 256 + Int(d)
                let q = value / 10
                remainder = value % 10
                if !next.isEmpty || q > 0 { next.append(UInt8(q)) }
            }
            out.append(Character(String(remainder)))
            digits = next
        }
        return String(out.reversed())
    }
}
