import Crypto
import Foundation
import Synchronization
import SwiftASN1
import VQL

/// parse_pe(): a Windows executable's headers, sections, imports, exports, resources, version
/// strings, PDB and Authenticode data, for the Windows binaries responders find on Linux
/// servers (web shells' droppers, tooling on file shares). Members are computed when read.
public enum ParsePEFunction {
    public static let function = FunctionDeclaration(
        name: "parse_pe",
        summary: "Parses a PE (Windows executable) file: FileHeader, GUIDAge, PDB, Directories, Sections, Resources, VersionInformation, Imports, Exports, ExportRVAs, Forwards, ImpHash, Authenticode, AuthenticodeHash. Members are computed only when used. NULL when the file is not a PE.",
        arguments: [
            ArgumentSpec("file", .any, required: true, "The PE file."),
            ArgumentSpec("accessor", .string, "How to read file: file (default) or data."),
            ArgumentSpec("base_offset", .int, "Where the PE starts in the file (default 0)."),
        ],
        returns: .dict,
        examples: ["SELECT parse_pe(accessor='data', file='MZ not really').FileHeader AS Header FROM scope() WHERE NOT Header"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let source = ParserInput.open(ctx, "file") else { return .null }
        do {
            return .object(PEInfo(try PEFile(source: source, base: ctx.int("base_offset") ?? 0)))
        } catch {
            return .null
        }
    }
}

/// The lazily computed description of one PE file.
final class PEInfo: HostObject, @unchecked Sendable {
    let pe: PEFile
    private let cache = Mutex<[String: Value]>([:])

    init(_ pe: PEFile) { self.pe = pe }

    var typeName: String { "PEInfo" }
    static let names = ["FileHeader", "GUIDAge", "PDB", "Directories", "Sections", "Resources", "VersionInformation",
                        "Imports", "Exports", "ExportRVAs", "Forwards", "ImpHash", "Authenticode", "AuthenticodeHash"]
    var memberNames: [String] { PEInfo.names }

    func member(_ name: String) -> Value? {
        guard PEInfo.names.contains(name) else { return nil }
        if let cached = cache.withLock({ $0[name] }) { return cached }
        let value = compute(name)
        cache.withLock { $0[name] = value }
        return value
    }

    private func compute(_ name: String) -> Value {
        switch name {
        case "FileHeader":
            return .dict(Dict([
                ("Machine", .string(PEFile.machines[pe.machine] ?? String(format: "0x%x", pe.machine))),
                ("TimeDateStamp", .timestamp(Timestamp(nanoseconds: Int64(pe.timeDateStamp) * 1_000_000_000))),
                ("TimeDateStampRaw", .int(Int64(pe.timeDateStamp))),
                ("Characteristics", .int(Int64(pe.characteristics))),
                ("ImageBase", .int(Int64(bitPattern: pe.imageBase))),
            ]))
        case "GUIDAge": return pe.codeView().map { .string($0.guidAge) } ?? .string("")
        case "PDB": return pe.codeView().map { .string($0.pdb) } ?? .string("")
        case "Directories": return .dict(directories())
        case "Sections":
            return .list(pe.sections.map { s in
                let perm = (s.characteristics & 0x2000_0000 != 0 ? "x" : "-") + (s.characteristics & 0x4000_0000 != 0 ? "r" : "-")
                    + (s.characteristics & 0x8000_0000 != 0 ? "w" : "-")
                return .dict(Dict([
                    ("Perm", .string(perm)), ("Name", .string(s.name)), ("FileOffset", .int(Int64(s.rawOffset))),
                    ("VMA", .int(Int64(bitPattern: pe.imageBase &+ UInt64(s.virtualAddress)))),
                    ("RVA", .int(Int64(s.virtualAddress))), ("Size", .int(Int64(s.rawSize))),
                ]))
            })
        case "Resources":
            return .list(pe.resources().map { r in
                .dict(Dict([
                    ("Type", .string(r.type)), ("TypeId", r.typeID.map { .int(Int64($0)) } ?? .null), ("Name", .string(r.name)),
                    ("FileOffset", .int(r.fileOffset)), ("DataSize", .int(Int64(r.size))), ("CodePage", .int(Int64(r.codePage))),
                ]))
            })
        case "VersionInformation":
            var dict = Dict()
            for (key, value) in pe.versionInformation() { dict[key] = .string(value) }
            return .dict(dict)
        case "Imports": return .list(pe.imports().map { .string("\($0.0)!\($0.1)") })
        case "Exports": return .list(pe.exports().items.filter { $0.forward == nil }.map { .string($0.name.isEmpty ? "#\($0.ordinal)" : $0.name) })
        case "ExportRVAs":
            return .list(pe.exports().items.map { e in
                .dict(Dict([("Name", .string(e.name)), ("Ordinal", .int(Int64(e.ordinal))), ("RVA", .int(Int64(e.rva))),
                            ("Forward", e.forward.map { .string($0) } ?? .null)]))
            })
        case "Forwards": return .list(pe.exports().items.compactMap { $0.forward.map { .string($0) } })
        case "ImpHash": return .string(ImportHash.of(pe.imports()))
        case "Authenticode": return AuthenticodeData.signature(pe).map { .dict($0) } ?? .null
        case "AuthenticodeHash": return AuthenticodeData.hashes(pe).map { .dict($0) } ?? .null
        default: return .null
        }
    }

    /// Non-empty data directories by name, with their file address and section.
    private func directories() -> Dict {
        var pairs: [(String, Value)] = []
        for d in pe.directories where d.index < PEFile.directoryNames.count {
            // The security directory holds a file offset, the others an RVA.
            let fileAddress = d.index == 4 ? Int64(d.rva) : pe.offset(ofRVA: d.rva)
            let stamp = fileAddress.flatMap { pe.u32($0 + 4) } ?? 0
            pairs.append((PEFile.directoryNames[d.index], .dict(Dict([
                ("Timestamp", .timestamp(Timestamp(nanoseconds: Int64(stamp) * 1_000_000_000))),
                ("TimestampRaw", .int(Int64(stamp))), ("Size", .int(Int64(d.size))),
                ("FileAddress", .int(fileAddress ?? 0)),
                ("SectionName", .string(d.index == 4 ? "" : pe.section(ofRVA: d.rva)?.name ?? "")),
            ]))))
        }
        pairs.sort { $0.0 < $1.0 }
        return Dict(pairs)
    }
}

/// The import hash (pefile's imphash): MD5 of "dll.function" pairs, lower-case, extension-less
/// DLL names, comma-joined.
enum ImportHash {
    static func of(_ imports: [(String, String)]) -> String {
        guard !imports.isEmpty else { return "" }
        let parts = imports.map { dll, function -> String in
            var library = dll.lowercased()
            for ext in [".dll", ".ocx", ".sys"] where library.hasSuffix(ext) { library.removeLast(ext.count) }
            return library + "." + function.lowercased()
        }
        return X509Decoder.hexString(Array(Insecure.MD5.hash(data: Array(parts.joined(separator: ",").utf8))))
    }
}

/// The Authenticode parts of a PE: the embedded PKCS#7 signature and the file's hashes computed
/// the Authenticode way (skipping the checksum, the security directory entry and the
/// certificate table), with whether the signed hash matches.
enum AuthenticodeData {
    /// WIN_CERTIFICATE: length, revision, type, then the PKCS#7 signed data.
    static func signatureBytes(_ pe: PEFile) -> [UInt8]? {
        guard let dir = pe.directory(4), dir.size > 8, dir.size < 64 << 20 else { return nil }
        let data = pe.source.read(at: pe.base + Int64(dir.rva), count: Int(dir.size))
        guard data.count > 8 else { return nil }
        let length = Int(data[0]) | Int(data[1]) << 8 | Int(data[2]) << 16 | Int(data[3]) << 24
        return Array(data[8..<min(data.count, max(8, length))])
    }

    static func signature(_ pe: PEFile) -> Dict? {
        guard let bytes = signatureBytes(pe) else { return nil }
        return try? PKCS7Decoder.signedData(bytes)
    }

    static func hashes(_ pe: PEFile) -> Dict? {
        let checksum = pe.optionalHeaderOffset + 64
        let securityEntry = pe.optionalHeaderOffset + (pe.is64 ? 144 : 128)
        var end = pe.source.size ?? 0
        if let dir = pe.directory(4), dir.rva > 0, Int64(dir.rva) < end { end = Int64(dir.rva) }
        var md5 = Insecure.MD5()
        var sha1 = Insecure.SHA1()
        var sha256 = SHA256()
        var position: Int64 = 0
        for (from, to) in [(Int64(0), checksum), (checksum + 4, securityEntry), (securityEntry + 8, end)] {
            position = from
            while position < to {
                let chunk = pe.source.read(at: pe.base + position, count: Int(min(1 << 20, to - position)))
                if chunk.isEmpty { break }
                md5.update(data: chunk)
                sha1.update(data: chunk)
                sha256.update(data: chunk)
                position += Int64(chunk.count)
            }
        }
        let digests = [
            ("MD5", X509Decoder.hexString(Array(md5.finalize()))), ("SHA1", X509Decoder.hexString(Array(sha1.finalize()))),
            ("SHA256", X509Decoder.hexString(Array(sha256.finalize()))),
        ]
        var result = Dict(digests.map { ($0.0, Value.string($0.1)) })
        let signed = signatureBytes(pe).flatMap(signedDigest)
        result["HashMatches"] = .bool(signed.map { signed in digests.contains { $0.1 == signed } } ?? false)
        return result
    }

    /// The digest inside SpcIndirectDataContent (the hash the publisher signed).
    static func signedDigest(_ der: [UInt8]) -> String? {
        guard let root = try? BER.parse(der), let info = try? X509Decoder.children(root), info.count >= 2,
              let signed = (try? X509Decoder.children(info[1]))?.first, let parts = try? X509Decoder.children(signed), parts.count >= 3,
              let encapsulated = try? X509Decoder.children(parts[2]), encapsulated.count >= 2,
              let content = (try? X509Decoder.children(encapsulated[1]))?.first,
              let indirect = try? X509Decoder.children(content), indirect.count >= 2,
              let digestInfo = try? X509Decoder.children(indirect[1]), digestInfo.count >= 2,
              let digest = X509Decoder.primitive(digestInfo[1]) else { return nil }
        return X509Decoder.hexString(Array(digest))
    }
}
