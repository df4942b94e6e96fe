import Foundation

/// IPv4/IPv6 addresses as raw bytes (4 or 16): parsing, Go-style printing and CIDR ranges. One
/// implementation for everything that compares addresses — `cidr_contains()`, `ip()`, Sigma's
/// `|cidr` modifier — so an address means the same thing in each.
public enum IPAddress {
    public static func parse(_ text: String) -> [UInt8]? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var v4 = in_addr()
        if inet_pton(AF_INET, trimmed, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, trimmed, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its 4 IPv4 bytes; others unchanged.
    public static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        bytes.count == 16 && bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff ? Array(bytes[12...]) : bytes
    }

    /// Text form; IPv4-mapped IPv6 addresses print as IPv4 (as Go does).
    public static func format(_ bytes: [UInt8]) -> String? {
        let bytes = unmapped(bytes)
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, 64) } != nil
        guard ok else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `address` lies in `range` ("10.0.0.0/8", "fe80::/10", or one address); false for
    /// a range that does not parse.
    public static func contains(range: String, _ address: [UInt8]) -> Bool {
        IPNetwork(range)?.contains(address) ?? false
    }
}

/// A CIDR range ("10.0.0.0/8", "2001:db8::/32"; a bare address is a range of one). IPv4 and
/// IPv4-mapped IPv6 addresses compare in the IPv4 space.
public struct IPNetwork: Sendable, Equatable {
    public let network: [UInt8]
    public let bits: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let parsed = IPAddress.parse(String(first)) else { return nil }
        let network = IPAddress.unmapped(parsed)
        var bits = network.count * 8
        if parts.count == 2 {
            // A mapped range's prefix counts the 96 bits of the ::ffff: part.
            guard let given = Int(parts[1].trimmingCharacters(in: .whitespaces)) else { return nil }
            bits = parsed.count == 16 && network.count == 4 ? given - 96 : given
        }
        guard bits >= 0, bits <= network.count * 8 else { return nil }
        self.network = network
        self.bits = bits
    }

    public func contains(_ address: [UInt8]) -> Bool {
        let address = IPAddress.unmapped(address)
        guard network.count == address.count else { return false }
        var remaining = bits
        for i in 0..<address.count where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if network[i] & mask != address[i] & mask { return false }
            remaining -= take
        }
        return true
    }
}
