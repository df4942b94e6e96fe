import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Network addresses and interfaces: `ip()`, `cidr_contains()` and `interfaces()`.
public enum Network {
    public static var plugins: [PluginDeclaration] { [interfaces] }
    public static var functions: [FunctionDeclaration] { [ip, cidrContains] }

    public static let ip = FunctionDeclaration(
        name: "ip", summary: "Parses an IPv4 or IPv6 address (NULL when invalid): prints as its canonical text and answers IsPrivate, IsLoopback, IsMulticast, IsUnspecified, IsLinkLocalUnicast, IsGlobalUnicast.",
        arguments: [
            ArgumentSpec("parse", .string, "An address in text form."),
            ArgumentSpec("netaddr4_le", .int, "An IPv4 address as a little-endian integer."),
            ArgumentSpec("netaddr4_be", .int, "An IPv4 address as a big-endian integer."),
        ],
        returns: .string,
        examples: ["SELECT ip(parse='::ffff:127.0.0.1') AS IP FROM scope()"]
    ) { ctx in
        if let text = ctx.string("parse") {
            return IPAddress.parse(text).flatMap { IPObject($0) }.map { .object($0) } ?? .null
        }
        if let n = ctx.int("netaddr4_le") {
            let v = UInt32(truncatingIfNeeded: n)
            return .string(IPAddress.format([UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)]) ?? "")
        }
        if let n = ctx.int("netaddr4_be") {
            let v = UInt32(truncatingIfNeeded: n)
            return .string(IPAddress.format([UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]) ?? "")
        }
        return .null
    }

    public static let cidrContains = FunctionDeclaration(
        name: "cidr_contains", summary: "True when the address is inside any of the CIDR ranges.",
        arguments: [
            ArgumentSpec("ip", .string, required: true, "The address."),
            ArgumentSpec("ranges", .stringList, required: true, "CIDR ranges such as 10.0.0.0/8 or fe80::/10."),
        ],
        returns: .bool,
        examples: ["SELECT cidr_contains(ip='192.168.1.5', ranges=['192.168.0.0/16']) AS Private FROM scope()"]
    ) { ctx in
        guard let text = ctx.string("ip"), let address = IPAddress.parse(text) else { return .bool(false) }
        for range in ctx.strings("ranges") ?? [] where IPAddress.contains(range: range, address) { return .bool(true) }
        return .bool(false)
    }

    static let interfaceColumns: [ColumnSpec] = [
        ColumnSpec("Index", .int, "Interface index."),
        ColumnSpec("MTU", .int, "Maximum transmission unit."),
        ColumnSpec("Name", .string, "Interface name."),
        ColumnSpec("HardwareAddr", .string, "MAC address (empty when none)."),
        ColumnSpec("Flags", .string, "up|broadcast|loopback|pointtopoint|multicast"),
        ColumnSpec("Addrs", .list, "Addresses as {IP, Mask, CIDR}."),
    ]

    public static let interfaces = PluginDeclaration(
        name: "interfaces", summary: "Network interfaces with their hardware and IP addresses (getifaddrs).",
        columns: interfaceColumns,
        examples: ["SELECT Name, HardwareAddr, Addrs FROM interfaces()"],
        permissions: [.machineState]
    ) { _ in
        var first: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&first) == 0 else { return ArrayCursor([]) }
        defer { freeifaddrs(first) }
        var order: [String] = []
        var flags: [String: UInt32] = [:]
        var addresses: [String: [Value]] = [:]
        let addressSchema = Schema(["IP", "Mask", "CIDR"], caseInsensitiveFallback: true)
        var cursor = first
        while let entry = cursor {
            cursor = entry.pointee.ifa_next
            guard let cName = entry.pointee.ifa_name else { continue }
            let name = String(cString: cName)
            if flags[name] == nil { order.append(name) }
            flags[name] = entry.pointee.ifa_flags
            guard let address = entry.pointee.ifa_addr.flatMap({ IPAddress.bytes(of: $0) }),
                  let text = IPAddress.format(address) else { continue }
            let mask = entry.pointee.ifa_netmask.flatMap { IPAddress.bytes(of: $0) } ?? []
            let prefix = mask.reduce(0) { $0 + $1.nonzeroBitCount }
            addresses[name, default: []].append(.dict(Dict(schema: addressSchema, values: [
                .string(text), .string(IPAddress.format(mask) ?? ""), .string("\(text)/\(prefix)"),
            ])))
        }
        let schema = Schema(interfaceColumns.map(\.name), caseInsensitiveFallback: true)
        let rows: [Value] = order.map { name in
            let sys = "/sys/class/net/\(name)/"
            func text(_ file: String) -> String {
                String(decoding: HostFS.readProc(sys + file) ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let f = flags[name] ?? 0
            var words: [String] = []
            if f & UInt32(IFF_UP) != 0 { words.append("up") }
            if f & UInt32(IFF_BROADCAST) != 0 { words.append("broadcast") }
            if f & UInt32(IFF_LOOPBACK) != 0 { words.append("loopback") }
            if f & UInt32(IFF_POINTOPOINT) != 0 { words.append("pointtopoint") }
            if f & UInt32(IFF_MULTICAST) != 0 { words.append("multicast") }
            var mac = text("address")
            if mac == "00:00:00:00:00:00" { mac = "" }
            return .dict(Dict(schema: schema, values: [
                .int(Int64(text("ifindex")) ?? Int64(if_nametoindex(name))), .int(Int64(text("mtu")) ?? 0), .string(name),
                .string(mac), .string(words.joined(separator: "|")), .list(addresses[name] ?? []),
            ]))
        }
        return ArrayCursor(rows)
    }
}

/// Addresses of the host's interfaces as raw bytes (the rest of IPAddress lives in VQL).
extension IPAddress {
    static func bytes(of address: UnsafeMutablePointer<sockaddr>) -> [UInt8]? {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var a = pointer.pointee.sin_addr
                return withUnsafeBytes(of: &a) { Array($0) }
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                var a = pointer.pointee.sin6_addr
                return withUnsafeBytes(of: &a) { Array($0) }
            }
        default: return nil
        }
    }
}

/// An address from ip(parse=): its canonical text as a scalar, and Go's net.IP predicates as members.
final class IPObject: HostObject, @unchecked Sendable {
    let bytes: [UInt8]
    let text: String

    init?(_ raw: [UInt8]) {
        let bytes = IPAddress.unmapped(raw)
        guard let text = IPAddress.format(bytes) else { return nil }
        self.bytes = bytes
        self.text = text
    }

    var typeName: String { "ip" }
    var memberNames: [String] { [] }
    var scalar: Value? { .string(text) }

    private var v4: Bool { bytes.count == 4 }

    func member(_ name: String) -> Value? {
        let b = bytes
        let loopback = v4 ? b[0] == 127 : b == [UInt8](repeating: 0, count: 15) + [1]
        let unspecified = b.allSatisfy { $0 == 0 }
        let multicast = v4 ? b[0] & 0xF0 == 0xE0 : b[0] == 0xFF
        let linkLocalUnicast = v4 ? (b[0] == 169 && b[1] == 254) : (b[0] == 0xFE && b[1] & 0xC0 == 0x80)
        let linkLocalMulticast = v4 ? (b[0] == 224 && b[1] == 0 && b[2] == 0) : (b[0] == 0xFF && b[1] & 0x0F == 0x02)
        let interfaceLocalMulticast = !v4 && b[0] == 0xFF && b[1] & 0x0F == 0x01
        let broadcast = v4 && b.allSatisfy { $0 == 0xFF }
        switch name {
        case "String": return .string(text)
        case "IsPrivate":
            return .bool(v4 ? (b[0] == 10 || (b[0] == 172 && b[1] & 0xF0 == 16) || (b[0] == 192 && b[1] == 168)) : b[0] & 0xFE == 0xFC)
        case "IsLoopback": return .bool(loopback)
        case "IsUnspecified": return .bool(unspecified)
        case "IsMulticast": return .bool(multicast)
        case "IsLinkLocalUnicast": return .bool(linkLocalUnicast)
        case "IsLinkLocalMulticast": return .bool(linkLocalMulticast)
        case "IsInterfaceLocalMulticast": return .bool(interfaceLocalMulticast)
        case "IsGlobalUnicast":
            return .bool(!(unspecified || loopback || multicast || linkLocalUnicast || broadcast))
        default: return nil
        }
    }
}
