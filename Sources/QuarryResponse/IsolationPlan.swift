import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One address isolation keeps reachable, with the TCP port when only that port is allowed.
struct AllowedPeer: Codable, Sendable, Equatable {
    var address: String
    var port: Int?

    var isIPv6: Bool { address.contains(":") }
    /// "ADDRESS" or "ADDRESS tcp/PORT", as reports show it.
    var label: String { port.map { "\(address) tcp/\($0)" } ?? address }
}

/// The isolation ruleset as a pure value: which peers stay reachable and the nftables script that
/// replaces Quarry's own table (`inet quarry_isolation`) in one transaction. Nothing outside that
/// table is named, so other tables and their rules are never touched.
struct IsolationPlan: Codable, Sendable, Equatable {
    static let table = "quarry_isolation"

    var servers: [AllowedPeer]
    var resolvers: [String]

    /// Parses a server as a URL (`https://host:8000/`), `host:port`, `[v6]:port` or a bare address
    /// or host name; names are resolved now, before the network is cut. Throws on a bad entry.
    static func peers(_ entry: String, resolve: (String) -> [String] = resolveHost) throws -> [AllowedPeer] {
        let text = entry.trimmingCharacters(in: .whitespaces)
        var host = text, port: Int?
        if text.contains("://") {
            guard let url = URL(string: text), let h = url.host, !h.isEmpty else { throw ResponseError("'\(entry)' is not a URL") }
            host = h.hasPrefix("[") ? String(h.dropFirst().dropLast()) : h
            port = url.port ?? (url.scheme == "http" ? 80 : 443)
        } else if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) ?? -1 }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            port = Int(text[text.index(after: colon)...]) ?? -1
        }
        if let p = port, !(1...65535).contains(p) { throw ResponseError("'\(entry)': bad port") }
        guard !host.isEmpty else { throw ResponseError("'\(entry)': no host") }
        let addresses = resolve(host)
        guard !addresses.isEmpty else { throw ResponseError("'\(entry)': cannot resolve \(host)") }
        return addresses.map { AllowedPeer(address: $0, port: port) }
    }

    /// Numeric addresses of `host` (IPv4 and IPv6), formatted by inet_ntop.
    static func resolveHost(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var result: [String] = []
        var node = list
        while let info = node?.pointee {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if info.ai_family == AF_INET, let sa = info.ai_addr {
                var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
            } else if info.ai_family == AF_INET6, let sa = info.ai_addr {
                var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
            }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !text.isEmpty && !result.contains(text) { result.append(text) }
            node = info.ai_next
        }
        return result
    }

    /// A numeric address check for resolvers (they are never names: they would need DNS).
    static func isNumeric(_ address: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, address, &v4) == 1 || inet_pton(AF_INET6, address, &v6) == 1
    }

    /// The nftables script: declare the table (so deleting it cannot fail), delete it, and add it
    /// again with its three chains. `nft -f` applies the whole script atomically.
    var script: String {
        var input = ["iifname \"lo\" accept", "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept",
                     "udp sport 67 udp dport 68 accept"]
        var output = ["oifname \"lo\" accept", "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept",
                      "udp sport 68 udp dport 67 accept"]
        for peer in servers {
            let family = peer.isIPv6 ? "ip6" : "ip"
            if let port = peer.port {
                input.append("\(family) saddr \(peer.address) tcp sport \(port) accept")
                output.append("\(family) daddr \(peer.address) tcp dport \(port) accept")
            } else {
                input.append("\(family) saddr \(peer.address) accept")
                output.append("\(family) daddr \(peer.address) accept")
            }
        }
        for resolver in resolvers {
            let family = resolver.contains(":") ? "ip6" : "ip"
            for proto in ["udp", "tcp"] {
                input.append("\(family) saddr \(resolver) \(proto) sport 53 accept")
                output.append("\(family) daddr \(resolver) \(proto) dport 53 accept")
            }
        }
        func chain(_ name: String, _ hook: String, _ rules: [String]) -> String {
            "  chain \(name) {\n    type filter hook \(hook) priority -10; policy drop;\n"
                + rules.map { "    \($0)\n" }.joined() + "  }\n"
        }
        return "table inet \(Self.table)\ndelete table inet \(Self.table)\ntable inet \(Self.table) {\n"
            + chain("input", "input", input) + chain("output", "output", output) + chain("forward", "forward", []) + "}\n"
    }
}
