import Foundation
import VQL

/// Functions that ask the host: host() resolves names through the system resolver, sysinfo() is
/// info()'s row as a value.
public enum HostFunctions {
    public static let functions: [FunctionDeclaration] = [host, sysinfo]

    public static let host = FunctionDeclaration(
        name: "host",
        summary: "Resolves a host name to its addresses: names recorded with cache_dns() first, else the system resolver (getaddrinfo); a list of IP strings, IPv4 first.",
        arguments: [
            ArgumentSpec("name", .string, required: true, "The name to resolve."),
            ArgumentSpec("server", .string, "Not supported: the system resolver is always used (a warning is logged)."),
            ArgumentSpec("type", .string, "A (default: IPv4 and IPv6), AAAA (IPv6 only) or A4 (IPv4 only); other record types are not supported."),
            ArgumentSpec("prefer_go", .bool, "Accepted for compatibility."),
            ArgumentSpec("tracker_only", .bool, "Answer only from names recorded with cache_dns()."),
        ],
        returns: .list,
        examples: ["SELECT host(name='localhost') AS Addresses FROM scope()"],
        permissions: [.network]
    ) { ctx in
        guard let name = ctx.string("name"), !name.isEmpty, name.utf8.count < 1024, !name.contains("\0") else { return .null }
        if ctx.string("server") != nil { ctx.context.logOnce(.warning, "host(): server= is not supported; using the system resolver") }
        var family = AF_UNSPEC
        switch (ctx.string("type") ?? "A").uppercased() {
        case "A", "": family = AF_UNSPEC
        case "AAAA": family = AF_INET6
        case "A4": family = AF_INET
        case let other:
            ctx.log(.warning, "host(): record type \(other) is not supported")
            return .null
        }
        let cached = ctx.context.service(DNSCache.key)?.addresses(of: name) ?? []
        if !cached.isEmpty || ctx.bool("tracker_only") == true { return .list(cached.map { .string($0) }) }
        return .list(Resolver.addresses(of: name, family: family).map { .string($0) })
    }

    public static let sysinfo = FunctionDeclaration(
        name: "sysinfo",
        summary: "Facts about this machine as one dict: the row info() yields (Hostname, OS, Platform, KernelVersion, …).",
        returns: .dict,
        examples: ["SELECT sysinfo().OS AS OS FROM scope()"],
        permissions: [.machineState]
    ) { ctx in
        guard let cursor = try? SystemInfo.info.open(ctx), let row = try? cursor.next() else { return .null }
        return row.materialized()
    }
}

/// getaddrinfo over a name, IPv4 addresses first, duplicates removed.
enum Resolver {
    static func addresses(of name: String, family: Int32) -> [String] {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var v4: [String] = []
        var v6: [String] = []
        var node = result
        while let entry = node {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = entry.pointee.ai_addr,
                getnameinfo(address, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if entry.pointee.ai_family == AF_INET {
                    if !v4.contains(text) { v4.append(text) }
                } else if !v6.contains(text) {
                    v6.append(text)
                }
            }
            node = entry.pointee.ai_next
        }
        return v4 + v6
    }
}
