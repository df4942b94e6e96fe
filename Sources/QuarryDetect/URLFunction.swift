import VQL

/// `url()`: Velociraptor's URL builder and parser. Velociraptor returns Go's `url.URL`, so the
/// value here has that type's fields in its order (`Host` keeps the port, as Go's does — the
/// Linux.Remediation.Quarantine artifact splits it off itself) and a `String` member that writes
/// the URL back with Go's escaping: the way to build the nested pathspecs the `zip` accessor
/// reads (`url(scheme='file', path=P, fragment=M).String`).
public enum URLFunction {
    public static let declaration = FunctionDeclaration(
        name: "url",
        summary: "Builds a URL from its parts or parses one; the result has Go's URL fields (Scheme, Opaque, User, Host with its port, Path, RawPath, OmitHost, ForceQuery, RawQuery, Fragment, RawFragment) and .String.",
        arguments: [
            ArgumentSpec("scheme", .string, "The scheme (e.g. file, https)."),
            ArgumentSpec("host", .string, "The host, with its port when there is one."),
            ArgumentSpec("path", .string, "The path (unescaped)."),
            ArgumentSpec("fragment", .string, "The fragment (unescaped)."),
            ArgumentSpec("query", .any, "A dict made into the query string."),
            ArgumentSpec("parse", .string, "A URL to parse; the other arguments are then ignored."),
        ],
        returns: .any,
        examples: [
            "SELECT url(parse='https://example.org:8443/a/b?x=1#top').Host AS Host FROM scope()",
            "SELECT url(scheme='file', path='/tmp/a b.zip', fragment='dir/member.txt').String AS Pathspec FROM scope()",
        ]
    ) { ctx in
        if let text = ctx.string("parse") {
            guard let parsed = GoURL(parsing: text) else {
                ctx.context.logger.log(.warning, "url: cannot parse '\(text)'")
                return .null
            }
            return .object(URLObject(parsed))
        }
        var url = GoURL()
        url.scheme = ctx.string("scheme") ?? ""
        url.host = ctx.string("host") ?? ""
        url.path = ctx.string("path") ?? ""
        url.fragment = ctx.string("fragment") ?? ""
        if case .dict(let query)? = ctx.value("query") {
            // Go's url.Values.Encode: keys sorted, each value escaped as a query component.
            url.rawQuery = query.pairs.sorted { $0.0 < $1.0 }.map { key, value in
                GoURL.escape(key, .queryComponent) + "=" + GoURL.escape(value.stringValue ?? JSONWriter.string(value), .queryComponent)
            }.joined(separator: "&")
        }
        return .object(URLObject(url))
    }
}

/// A URL as Go's net/url holds it.
struct GoURL: Equatable {
    var scheme = "", opaque = "", user: String?, host = "", path = "", rawPath = ""
    var omitHost = false, forceQuery = false, rawQuery = "", fragment = "", rawFragment = ""

    init() {}

    /// Go's `url.Parse`: nil where Go returns an error (a bad percent escape, a missing scheme).
    init?(parsing raw: String) {
        var rest = Substring(raw)
        if let hash = rest.firstIndex(of: "#") {
            let escaped = String(rest[rest.index(after: hash)...])
            guard let decoded = GoURL.unescape(escaped) else { return nil }
            fragment = decoded
            if GoURL.escape(decoded, .fragment) != escaped { rawFragment = escaped }
            rest = rest[..<hash]
        }
        if rest.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return nil }
        if let colon = rest.firstIndex(of: ":") {
            let candidate = rest[..<colon]
            if candidate.isEmpty { return nil }
            // Go's getScheme: a letter, then letters, digits, '+', '-' or '.', up to the colon.
            if let first = candidate.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first),
               candidate.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "+-.".unicodeScalars.contains($0) }) {
                scheme = candidate.lowercased()
                rest = rest[rest.index(after: colon)...]
            }
        }
        if rest.hasSuffix("?"), rest.filter({ $0 == "?" }).count == 1 {
            forceQuery = true
            rest = rest.dropLast()
        } else if let question = rest.firstIndex(of: "?") {
            rawQuery = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        if !rest.hasPrefix("/") {
            if !scheme.isEmpty {
                opaque = String(rest)
                return
            }
            // A relative path whose first segment holds a colon is taken for a scheme by Go: refused.
            if let slash = rest.firstIndex(of: "/") ?? Optional(rest.endIndex), rest[..<slash].contains(":") { return nil }
        }
        if (!scheme.isEmpty || !rest.hasPrefix("///")) && rest.hasPrefix("//") {
            let authorityAndPath = rest.dropFirst(2)
            let end = authorityAndPath.firstIndex(of: "/") ?? authorityAndPath.endIndex
            var authority = authorityAndPath[..<end]
            rest = authorityAndPath[end...]
            if let at = authority.lastIndex(of: "@") {
                guard let decoded = GoURL.unescape(String(authority[..<at])) else { return nil }
                user = decoded
                authority = authority[authority.index(after: at)...]
            }
            guard let decodedHost = GoURL.unescape(String(authority)) else { return nil }
            host = decodedHost
        } else if !scheme.isEmpty && rest.hasPrefix("/") {
            omitHost = true
        }
        let escapedPath = String(rest)
        guard let decodedPath = GoURL.unescape(escapedPath) else { return nil }
        path = decodedPath
        if GoURL.escape(decodedPath, .path) != escapedPath { rawPath = escapedPath }
    }

    /// Go's `URL.String()`.
    var string: String {
        var out = ""
        if !scheme.isEmpty { out += scheme + ":" }
        if !opaque.isEmpty {
            out += opaque
        } else {
            if !scheme.isEmpty || !host.isEmpty || user != nil {
                if !(omitHost && host.isEmpty && user == nil) {
                    if !host.isEmpty || !path.isEmpty || user != nil { out += "//" }
                    if let user { out += GoURL.escape(user, .userInfo) + "@" }
                    out += GoURL.escape(host, .host)
                }
            }
            let escapedPath = rawPath.isEmpty ? GoURL.escape(path, .path) : rawPath
            if !escapedPath.isEmpty && !escapedPath.hasPrefix("/") && !host.isEmpty { out += "/" }
            if out.isEmpty, let colon = escapedPath.firstIndex(of: ":"), !escapedPath[..<colon].contains("/") { out += "./" }
            out += escapedPath
        }
        if forceQuery || !rawQuery.isEmpty { out += "?" + rawQuery }
        if !fragment.isEmpty { out += "#" + (rawFragment.isEmpty ? GoURL.escape(fragment, .fragment) : rawFragment) }
        return out
    }

    enum Part { case path, host, userInfo, queryComponent, fragment }

    /// Go's `shouldEscape` for each part of a URL; escapes are %XX in upper case.
    static func escape(_ text: String, _ part: Part) -> String {
        var out: [UInt8] = []
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            if part == .queryComponent && byte == UInt8(ascii: " ") {
                out.append(UInt8(ascii: "+"))
            } else if keeps(byte, part) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func keeps(_ c: UInt8, _ part: Part) -> Bool {
        let scalar = Unicode.Scalar(c)
        if ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) { return true }
        if part == .host {
            // Go leaves sub-delimiters, brackets and the port's colon in a host, and non-ASCII bytes.
            return c >= 0x80 || "!$&'()*+,;=:[]<>\"-._~".utf8.contains(c)
        }
        switch c {
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"): return true
        case UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "/"), UInt8(ascii: ":"),
             UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "@"):
            switch part {
            case .path: return c != UInt8(ascii: "?")
            case .userInfo: return c != UInt8(ascii: "@") && c != UInt8(ascii: "/") && c != UInt8(ascii: "?") && c != UInt8(ascii: ":")
            case .queryComponent: return false
            case .fragment, .host: return true
            }
        case UInt8(ascii: "!"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"):
            return part == .fragment
        default:
            return false
        }
    }

    /// Percent-decoding as Go's `unescape` does it: nil for a `%` not followed by two hex digits.
    static func unescape(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "%")) else { return text }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) else { return nil }
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// The value `url()` returns: Go's fields for output and member access, and `String`.
final class URLObject: HostObject {
    let url: GoURL
    init(_ url: GoURL) { self.url = url }

    var typeName: String { "url.URL" }
    var memberNames: [String] {
        ["Scheme", "Opaque", "User", "Host", "Path", "RawPath", "OmitHost", "ForceQuery", "RawQuery", "Fragment", "RawFragment"]
    }

    func member(_ name: String) -> Value? {
        switch name {
        case "Scheme": return .string(url.scheme)
        case "Opaque": return .string(url.opaque)
        // Go's Userinfo has no exported field: it is written as {} when present.
        case "User": return url.user == nil ? .null : .dict(Dict())
        case "Host": return .string(url.host)
        case "Path": return .string(url.path)
        case "RawPath": return .string(url.rawPath)
        case "OmitHost": return .bool(url.omitHost)
        case "ForceQuery": return .bool(url.forceQuery)
        case "RawQuery": return .string(url.rawQuery)
        case "Fragment": return .string(url.fragment)
        case "RawFragment": return .string(url.rawFragment)
        case "String": return .string(url.string)
        case "Hostname": return .string(hostname)
        case "Port": return .string(port)
        case "Query":
            var query = Dict()
            for pair in url.rawQuery.split(separator: "&") where !pair.isEmpty {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let decode = { (s: Substring) in GoURL.unescape(s.replacingOccurrences(of: "+", with: " ")) ?? String(s) }
                if query[decode(parts[0])] == nil { query[decode(parts[0])] = .string(parts.count > 1 ? decode(parts[1]) : "") }
            }
            return .dict(query)
        default: return nil
        }
    }

    /// Go's `Hostname()` and `Port()`: the host without its port (and brackets), and the port.
    private var hostname: String {
        let host = url.host
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[host.index(after: host.startIndex)..<close]) }
        if let colon = host.lastIndex(of: ":") { return String(host[..<colon]) }
        return host
    }

    private var port: String {
        let host = url.host
        let tail = host.hasPrefix("[") ? host.lastIndex(of: "]").map { host[$0...] } ?? "" : Substring(host)
        guard let colon = tail.lastIndex(of: ":") else { return "" }
        return String(tail[tail.index(after: colon)...])
    }
}
