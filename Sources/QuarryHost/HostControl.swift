import Foundation
import Synchronization
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Endpoint functions that act on the host or the session's view of it: `info()` as a function,
/// `cache_dns()` to teach `host()` a name without asking DNS
/// (offline triage, sinkholed names).
public enum HostControl {
    public static let functions: [FunctionDeclaration] = [info, cacheDNS]

    public static let info = FunctionDeclaration(
        name: "info",
        summary: "The row of the info() plugin as one dict (Hostname, OS, Platform, KernelVersion, …): the function form Velociraptor also offers.",
        returns: .dict,
        examples: ["SELECT info().OS AS OS FROM scope()"],
        permissions: [.machineState]
    ) { ctx in
        guard let cursor = try? SystemInfo.info.open(ctx), let row = try? cursor.next() else { return .null }
        return row.materialized()
    }

    public static let cacheDNS = FunctionDeclaration(
        name: "cache_dns",
        summary: "Records that `name` resolves to `ip` for the rest of the session: host() answers from this cache first (and only from it with tracker_only). Returns TRUE.",
        arguments: [
            ArgumentSpec("name", .string, required: true, "The domain name."),
            ArgumentSpec("ip", .string, required: true, "Its address (IPv4 or IPv6)."),
        ],
        returns: .bool,
        examples: ["SELECT cache_dns(name='intranet.example', ip='10.1.2.3') AS Cached FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("name"), !name.isEmpty, let ip = ctx.string("ip"), DNSCache.isAddress(ip) else {
            ctx.log(.error, "cache_dns(): needs a name and a valid IP address")
            return .bool(false)
        }
        ctx.context.service(DNSCache.key) { DNSCache() }.add(name: name, ip: ip)
        return .bool(true)
    }
}

/// Names the session was told about with cache_dns(): lower-cased name → addresses, in order.
final class DNSCache: Sendable {
    static let key = ServiceKey<DNSCache>("host.dns-cache")
    private let entries = Mutex<[String: [String]]>([:])

    func add(name: String, ip: String) {
        entries.withLock { entries in
            let key = name.lowercased()
            if !(entries[key] ?? []).contains(ip) { entries[key, default: []].append(ip) }
        }
    }

    func addresses(of name: String) -> [String] {
        entries.withLock { $0[name.lowercased()] ?? [] }
    }

    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
