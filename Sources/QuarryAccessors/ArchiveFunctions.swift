import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Archives as VQL names: `unzip()` (zip, tar, tar.gz into a directory, safely), `gunzip()`
/// (a gzip string) and `compress()` (gzip a file).
public enum ArchiveFunctions {
    public static var plugins: [PluginDeclaration] { [unzip] }
    public static var functions: [FunctionDeclaration] { [gunzip, compress] }

    /// Bytes one unzip() call writes at most (a zip bomb stops here, with an error).
    static let extractionLimit: Int64 = 8 << 30

    static let schema = Schema(["OriginalPath", "NewPath", "Size"], caseInsensitiveFallback: true)

    enum Kind { case zip, tar, tgz }

    public static let unzip = PluginDeclaration(
        name: "unzip",
        summary: "Extracts a zip, tar or tar.gz file into a directory; members with absolute, `..` or NUL names are refused.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The archive (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, "How to reach the archive (file by default; data when filename holds it)."),
            ArgumentSpec("filename_filter", .string, "Only extract members whose name matches this regex."),
            ArgumentSpec("output_directory", .string, required: true, "Where to extract (created 0700 when missing)."),
            ArgumentSpec("type", .string, "zip, tgz or tar (default: from the extension, else from the content)."),
        ],
        columns: [
            ColumnSpec("OriginalPath", .string, "The member's name in the archive."),
            ColumnSpec("NewPath", .string, "Where it was written."),
            ColumnSpec("Size", .int, "Bytes written."),
        ],
        examples: [
            "LET dir <= tempdir() SELECT OriginalPath, Size FROM unzip(filename=base64decode(string='UEsDBBQAAAAAAAAAIVh6em/tAwAAAAMAAAAFAAAAYS50eHRoaQpQSwECFAMUAAAAAAAAACFYenpv7QMAAAADAAAABQAAAAAAAAAAAAAAgAEAAAAAYS50eHRQSwUGAAAAAAEAAQAzAAAAJgAAAAAA'), accessor='data', type='zip', output_directory=dir)",
        ],
        permissions: [.filesystemRead, .filesystemWrite]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("filename", for: accessor) else { return ArrayCursor([]) }
        guard let output = ctx.string("output_directory"), !output.isEmpty else {
            ctx.log(.error, "unzip: needs output_directory=")
            return ArrayCursor([])
        }
        let filter = ctx.string("filename_filter").flatMap { ctx.context.regex($0) }
        guard let file = ctx.open(path, with: accessor) else { return ArrayCursor([]) }
        defer { file.close() }
        let kind: Kind
        do {
            kind = try detect(ctx.string("type"), path: path, accessor: accessor, file: file)
        } catch {
            ctx.logFailure(path, error)
            return ArrayCursor([])
        }
        var rows: [Value] = []
        do {
            let writer = try ExtractionWriter(root: output)
            var budget = extractionLimit
            func extract(_ name: [UInt8], isDirectory: Bool, read: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
                try ctx.checkCancelled()
                let display = String(decoding: name, as: UTF8.self)
                if let filter, !filter.matches(display) { return }
                if let reason = ExtractionWriter.refusal(name) {
                    ctx.context.logOnce(.error, "unzip: member '\(display)' \(reason): refused")
                    return
                }
                let components = ExtractionWriter.components(name)
                guard !components.isEmpty else { return }
                if isDirectory {
                    try writer.makeDirectory(components)
                    return
                }
                guard budget > 0 else {
                    ctx.context.logOnce(.error, "unzip: \(PathValues.display(path)): more than \(extractionLimit) bytes extracted, stopping (a zip bomb?)")
                    return
                }
                do {
                    let written = try writer.write(components, limit: budget, read: read)
                    budget -= written
                    rows.append(.dict(Dict(schema: schema, values: [.string(display), .string(writer.path(components)), .int(written)])))
                } catch {
                    ctx.context.logOnce(.warning, "unzip: \(display): \(error)")
                }
            }
            switch kind {
            case .zip:
                let archive = try ZipArchive(file: file)
                for problem in archive.problems { ctx.context.logOnce(.warning, "unzip: \(problem)") }
                for index in archive.entries.indices {
                    let entry = archive.entries[index]
                    if entry.isDirectory {
                        try extract(entry.name, isDirectory: true) { _ in 0 }
                        continue
                    }
                    let member: any ReadableFile
                    do {
                        member = try archive.open(index, passwords: ctx.accessorScope.zipPasswords)
                    } catch {
                        ctx.context.logOnce(.warning, "unzip: \(error)")
                        continue
                    }
                    defer { member.close() }
                    var offset: Int64 = 0
                    try extract(entry.name, isDirectory: false) { buffer in
                        let n = try member.read(into: buffer, at: offset)
                        offset += Int64(n)
                        return n
                    }
                }
            case .tar, .tgz:
                let stream: any ReadableFile = kind == .tgz
                    ? StreamFile(limit: nil, retainLimit: 0) { try InflateDecoder(file, format: .gzip) } : file
                let tar = TarReader(stream)
                while let member = try tar.next() {
                    switch member.type {
                    case UInt8(ascii: "5"):
                        try extract(member.name, isDirectory: true) { _ in 0 }
                    case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                        var offset: Int64 = 0
                        try extract(member.name, isDirectory: false) { buffer in
                            guard offset < member.size else { return 0 }
                            let want = Int(min(Int64(buffer.count), member.size - offset))
                            let n = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: member.dataOffset + offset)
                            offset += Int64(n)
                            return n
                        }
                    default:
                        ctx.context.logOnce(.info, "unzip: \(String(decoding: member.name, as: UTF8.self)): links and special files are not extracted")
                    }
                }
            }
        } catch {
            ctx.logFailure(path, error)
        }
        return ArrayCursor(rows)
    }

    /// The archive kind: the type argument, else the file name's extension, else its first bytes.
    static func detect(_ type: String?, path: OSPath, accessor: any Accessor, file: any ReadableFile) throws -> Kind {
        switch type?.lowercased() {
        case "zip": return .zip
        case "tgz", "tar.gz", "gz": return .tgz
        case "tar": return .tar
        case nil, "": break
        case let other?: throw AccessorError.invalid("unknown archive type '\(other)' (zip, tgz or tar)")
        }
        if accessor.name != "data" && accessor.name != "scope" {
            let name = String(decoding: path.basename, as: UTF8.self).lowercased()
            if name.hasSuffix(".zip") { return .zip }
            if name.hasSuffix(".tgz") || name.hasSuffix(".tar.gz") { return .tgz }
            if name.hasSuffix(".tar") { return .tar }
        }
        let head = try file.read(at: 0, count: 512)
        if head.starts(with: [0x50, 0x4B]) { return .zip }
        if head.starts(with: [0x1F, 0x8B]) { return .tgz }
        if head.count >= 262, head[257..<262].elementsEqual("ustar".utf8) { return .tar }
        throw AccessorError.invalid("not a zip, tar or tar.gz file")
    }

    public static let gunzip = FunctionDeclaration(
        name: "gunzip", summary: "Decompresses gzip data held in a string.",
        arguments: [
            ArgumentSpec("string", .string, required: true, "The gzip-compressed data."),
            ArgumentSpec("max_bytes", .int, "Give at most this many bytes (default 64 MiB)."),
        ],
        returns: .string,
        examples: ["SELECT gunzip(string=base64decode(string='H4sIAAAAAAACA8tIzcnJBwCGphA2BQAAAA==')) AS Text FROM scope()"]
    ) { ctx in
        guard let data = ctx.bytes("string") else { return .null }
        let limit = Int(clamping: max(0, ctx.int("max_bytes") ?? (64 << 20)))
        do {
            return .string(bytes: try Compression.gunzip(data, limit: limit))
        } catch {
            ctx.context.logOnce(.warning, "gunzip: \(error)")
            return .null
        }
    }

    public static let compress = FunctionDeclaration(
        name: "compress", summary: "Writes a gzip-compressed copy of a file (the original stays); returns the output path.",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The file to compress."),
            ArgumentSpec("output", .string, required: true, "Where to write the .gz file (created 0600)."),
            ArgumentSpec("accessor", .string, "How to reach the file (default file)."),
        ],
        returns: .string,
        examples: ["LET out <= tempdir() + '/passwd.gz' SELECT compress(path='/etc/passwd', output=out) AS Out FROM scope()"],
        permissions: [.filesystemRead, .filesystemWrite]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("path", for: accessor),
              let output = ctx.string("output"), !output.isEmpty,
              let file = ctx.open(path, with: accessor) else { return .null }
        defer { file.close() }
        let fd = Glibc.open(output, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            ctx.context.logOnce(.warning, "compress: \(output): \(String(cString: strerror(errno)))")
            return .null
        }
        defer { Glibc.close(fd) }
        var offset: Int64 = 0
        do {
            try Compression.gzip(read: { buffer in
                try ctx.checkCancelled()
                let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
                offset += Int64(n)
                return n
            }, write: { chunk in try ExtractionWriter.writeAll(fd, chunk[...]) })
        } catch {
            ctx.context.logOnce(.warning, "compress: \(PathValues.display(path)): \(error)")
            return .null
        }
        return .string(output)
    }
}
