import Foundation

/// Small codecs and generators: uuid, rand, base85decode, crypto_rc4, semver, similarity.
public enum CodecFunctions {
    public static let all: [FunctionDeclaration] = [uuid, rand, base85decode, cryptoRC4, semver, similarity]

    public static let uuid = FunctionDeclaration(
        name: "uuid", summary: "A new random (version 4) UUID, lower-case.", returns: .string,
        examples: ["SELECT uuid() AS ID FROM scope()"]
    ) { _ in .string(UUID().uuidString.lowercased()) }

    public static let rand = FunctionDeclaration(
        name: "rand", summary: "A random integer from 0 up to (not including) `range` (from the system's secure generator).",
        arguments: [ArgumentSpec("range", .int, "The exclusive upper bound (default: any non-negative 63-bit number).")], returns: .int,
        examples: ["SELECT rand(range=10) < 10 AS InRange FROM scope()"]
    ) { ctx in
        let upper = ctx.int("range") ?? Int64.max
        guard upper > 0 else {
            ctx.log(.warning, "rand(): range must be positive")
            return .int(0)
        }
        var generator = SystemRandomNumberGenerator()
        return .int(Int64.random(in: 0..<upper, using: &generator))
    }

    public static let base85decode = FunctionDeclaration(
        name: "base85decode", summary: "Decodes Ascii85 text (as Adobe and btoa write it; `<~ ~>` and whitespace are ignored). NULL when invalid.",
        arguments: [ArgumentSpec("string", .string, required: true, "The Ascii85 text.")], returns: .string,
        examples: ["SELECT base85decode(string='87cURD]i,\"Ebo80') AS S FROM scope()"]
    ) { ctx in
        guard var text = ctx.bytes("string") else { return .null }
        if text.starts(with: Array("<~".utf8)) { text.removeFirst(2) }
        if text.count >= 2 && text.suffix(2).elementsEqual("~>".utf8) { text.removeLast(2) }
        guard let decoded = Ascii85.decode(text) else {
            ctx.log(.warning, "base85decode(): invalid Ascii85 input")
            return .null
        }
        return .string(bytes: decoded)
    }

    public static let cryptoRC4 = FunctionDeclaration(
        name: "crypto_rc4", summary: "Applies RC4 with `key` to `string` (the same call encrypts and decrypts).",
        arguments: [
            ArgumentSpec("string", .string, required: true, "The data."),
            ArgumentSpec("key", .string, required: true, "The key, 1 to 256 bytes."),
        ],
        returns: .string, examples: ["SELECT crypto_rc4(string=crypto_rc4(string='secret', key='k'), key='k') AS S FROM scope()"]
    ) { ctx in
        guard let data = ctx.bytes("string"), let key = ctx.bytes("key"), (1...256).contains(key.count) else {
            ctx.log(.warning, "crypto_rc4(): the key must be 1 to 256 bytes")
            return .null
        }
        return .string(bytes: RC4.apply(key: key, to: data))
    }

    public static let semver = FunctionDeclaration(
        name: "semver",
        summary: "Parses a semantic version (1.2.3-beta+build); the result has Major, Minor, Patch, Prerelease and Metadata, prints as the version and compares by version order with other versions or version strings.",
        arguments: [ArgumentSpec("version", .string, required: true, "The version text (a leading v is allowed).")],
        returns: .object,
        examples: ["SELECT semver(version='1.10.0') > '1.9.2' AS Newer FROM scope()"]
    ) { ctx in
        guard let text = ctx.string("version"), let version = SemanticVersion(text) else {
            ctx.log(.warning, "semver(): not a semantic version")
            return .null
        }
        return .object(version)
    }

    public static let similarity = FunctionDeclaration(
        name: "similarity",
        summary: "How alike two dicts are, from 0 to 1: the share of their (nested) key/value pairs that both have.",
        arguments: [
            ArgumentSpec("set1", .dict, required: true, "The first dict."),
            ArgumentSpec("set2", .dict, required: true, "The second dict."),
        ],
        returns: .float,
        examples: ["SELECT similarity(set1=dict(A=1, B=2), set2=dict(A=1, B=3)) AS S FROM scope()"]
    ) { ctx in
        let a = Set(flatten(ctx.value("set1") ?? .null, prefix: ""))
        let b = Set(flatten(ctx.value("set2") ?? .null, prefix: ""))
        let union = a.union(b)
        guard !union.isEmpty else { return .double(1) }
        return .double(Double(a.intersection(b).count) / Double(union.count))
    }

    /// "path=value" strings for every leaf of a dict.
    static func flatten(_ value: Value, prefix: String, depth: Int = 0) -> [String] {
        switch value.reduced() {
        case .dict(let d) where depth < 32:
            return d.pairs.flatMap { flatten($0.1, prefix: prefix + "." + $0.0, depth: depth + 1) }
        case .object(let o) where o.scalar == nil && depth < 32:
            return flatten(.dict(o.materialized()), prefix: prefix, depth: depth)
        case let leaf:
            return [prefix + "=" + JSONWriter.string(leaf.materialized())]
        }
    }
}

/// Ascii85 (btoa/Adobe): groups of five characters '!'…'u' make four bytes; 'z' is four zeros.
enum Ascii85 {
    static func decode(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var group: [UInt32] = []
        for c in text {
            if c == UInt8(ascii: " ") || (c >= 0x09 && c <= 0x0D) { continue }
            if c == UInt8(ascii: "z") && group.isEmpty {
                out.append(contentsOf: [0, 0, 0, 0])
                continue
            }
            guard c >= 33 && c <= 117 else { return nil }
            group.append(UInt32(c - 33))
            if group.count == 5 {
                guard let word = value(group) else { return nil }
                out.append(contentsOf: bytes(word))
                group = []
            }
        }
        if !group.isEmpty {
            guard group.count > 1 else { return nil }
            let kept = group.count - 1
            while group.count < 5 { group.append(84) }
            guard let word = value(group) else { return nil }
            out.append(contentsOf: bytes(word).prefix(kept))
        }
        return out
    }

    private static func value(_ group: [UInt32]) -> UInt32? {
        var total: UInt64 = 0
        for digit in group { total = total * 85 + UInt64(digit) }
        return total > UInt64(UInt32.max) ? nil : UInt32(total)
    }

    private static func bytes(_ word: UInt32) -> [UInt8] {
        [UInt8(word >> 24), UInt8(word >> 16 & 0xFF), UInt8(word >> 8 & 0xFF), UInt8(word & 0xFF)]
    }
}

/// The RC4 stream cipher.
enum RC4 {
    static func apply(key: [UInt8], to data: [UInt8]) -> [UInt8] {
        var s = [UInt8](0...255)
        var j = 0
        for i in 0..<256 {
            j = (j + Int(s[i]) + Int(key[i % key.count])) & 0xFF
            s.swapAt(i, j)
        }
        var out = data
        var i = 0
        j = 0
        for k in 0..<out.count {
            i = (i + 1) & 0xFF
            j = (j + Int(s[i])) & 0xFF
            s.swapAt(i, j)
            out[k] ^= s[(Int(s[i]) + Int(s[j])) & 0xFF]
        }
        return out
    }
}

/// A parsed semantic version: ordered by semver's precedence rules (a pre-release sorts before
/// its release; metadata is ignored).
final class SemanticVersion: OrderedHostObject, @unchecked Sendable {
    let major: Int64, minor: Int64, patch: Int64
    let prerelease: [String]
    let metadata: String
    let original: String

    init?(_ text: String) {
        original = text
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        if body.first == "v" || body.first == "V" { body.removeFirst() }
        var meta = ""
        if let plus = body.firstIndex(of: "+") {
            meta = String(body[body.index(after: plus)...])
            body = body[..<plus]
        }
        var pre: [String] = []
        if let dash = body.firstIndex(of: "-") {
            pre = body[body.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            body = body[..<dash]
            if pre.contains(where: \.isEmpty) { return nil }
        }
        let numbers = body.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(numbers.count) else { return nil }
        var parsed: [Int64] = []
        for n in numbers {
            guard !n.isEmpty, n.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int64(n) else { return nil }
            parsed.append(v)
        }
        while parsed.count < 3 { parsed.append(0) }
        major = parsed[0]
        minor = parsed[1]
        patch = parsed[2]
        prerelease = pre
        metadata = meta
    }

    var text: String {
        "\(major).\(minor).\(patch)" + (prerelease.isEmpty ? "" : "-" + prerelease.joined(separator: ".")) + (metadata.isEmpty ? "" : "+" + metadata)
    }

    var typeName: String { "semver" }
    var memberNames: [String] { ["Major", "Minor", "Patch", "Prerelease", "Metadata", "Original"] }
    var scalar: Value? { .string(text) }

    func member(_ name: String) -> Value? {
        switch name {
        case "Major": return .int(major)
        case "Minor": return .int(minor)
        case "Patch": return .int(patch)
        case "Prerelease": return .string(prerelease.joined(separator: "."))
        case "Metadata": return .string(metadata)
        case "Original": return .string(original)
        case "String": return .string(text)
        default: return nil
        }
    }

    func compare(_ other: Value) -> Int? {
        let version: SemanticVersion?
        switch other.reduced() {
        case .object(let o as SemanticVersion): version = o
        case let v: version = v.stringValue.flatMap { SemanticVersion($0) }
        }
        guard let version else { return nil }
        for (a, b) in [(major, version.major), (minor, version.minor), (patch, version.patch)] where a != b {
            return a < b ? -1 : 1
        }
        switch (prerelease.isEmpty, version.prerelease.isEmpty) {
        case (true, true): return 0
        case (true, false): return 1
        case (false, true): return -1
        default: break
        }
        for (a, b) in zip(prerelease, version.prerelease) where a != b {
            switch (Int64(a), Int64(b)) {
            case (let x?, let y?): return x < y ? -1 : 1
            case (.some, nil): return -1
            case (nil, .some): return 1
            default: return a < b ? -1 : 1
            }
        }
        return prerelease.count == version.prerelease.count ? 0 : (prerelease.count < version.prerelease.count ? -1 : 1)
    }
}
