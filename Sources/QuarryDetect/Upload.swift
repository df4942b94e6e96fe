import Crypto
import Foundation
import PrivateFiles
import VQL

/// Sanitises an upload name into relative path components: no "..", no ".", no absolute root,
/// no empty parts; nil when nothing safe is left.
public enum UploadNames {
    public static func components(_ name: String) -> [String]? {
        let parts = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).map(String.init)
        if parts.contains("..") { return nil }
        let kept = parts.filter { !$0.isEmpty && $0 != "." }
        return kept.isEmpty ? nil : kept
    }
}

/// Uploads into a folder (streamed, hashed on the way).
public final class DirectoryUploads: UploadDestination, @unchecked Sendable {
    public let root: String
    private let lock = NSLock()

    public init(root: String) { self.root = root }

    public func store(name: String, reader: (inout [UInt8]) throws -> Int) throws -> (path: String, size: Int64, sha256: String, md5: String) {
        guard let parts = UploadNames.components(name) else {
            throw UploadError(message: "refusing upload name '\(name)': it would escape the upload folder")
        }
        let relative = parts.joined(separator: "/")
        let target = root + "/" + relative
        lock.lock()
        defer { lock.unlock() }
        try FileManager.default.createDirectory(
            atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // Evidence: private (0600) from the call that creates it; a file already there is replaced.
        let fd: Int32
        do {
            fd = try PrivateFile.replace(target)
        } catch {
            throw UploadError(message: "cannot write \(target): \(error)")
        }
        let out = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        defer { try? out.close() }
        var sha = SHA256()
        var md5 = Insecure.MD5()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        while true {
            let n = try reader(&buffer)
            if n <= 0 { break }
            let chunk = buffer[0..<n]
            sha.update(data: chunk)
            md5.update(data: chunk)
            try out.write(contentsOf: chunk)
            total += Int64(n)
        }
        return (relative, total, sha.finalize().map { String(format: "%02x", $0) }.joined(), md5.finalize().map { String(format: "%02x", $0) }.joined())
    }
}

/// Why an upload was refused or failed.
public struct UploadError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// upload(): copies a file, read through any accessor, into the current collection (or
/// --upload-dir), streaming, with size and hashes in the result; a file it cannot read is
/// recorded in the result, not fatal. A sparse file (process memory) stores only its data
/// ranges, with a `.idx` member mapping them back to their offsets, as Velociraptor does.
public enum UploadFunction {
    public static let serviceKey = UploadService.key

    public static let upload = FunctionDeclaration(
        name: "upload", summary: "Copies a file (through any accessor) into the collection's uploads (or --upload-dir); returns Path, Size, Sha256, Md5 or Error.",
        arguments: [
            ArgumentSpec("file", .any, required: true, "The file to upload (a string, OSPath or pathspec)."),
            ArgumentSpec("name", .string, "Name to store it under (default: the file's path)."),
            ArgumentSpec("accessor", .string, "How to reach the file: file (default), data (upload the argument itself), process (/PID), zip, …"),
        ],
        returns: .dict, examples: [], permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("file", for: accessor) else { return .null }
        guard let destination = ctx.context.service(serviceKey, as: (any UploadDestination).self) else {
            ctx.context.logOnce(.error, "upload: no upload destination (use quarry query --upload-dir DIR, or a collection)")
            return .null
        }
        let display = accessor.name == "data" ? "data" : String(decoding: path.raw ?? path.path, as: UTF8.self)
        // Stored under the accessor's name (the default, auto, stores under file/ as it always has).
        let prefix = accessor.name == "auto" ? "file" : accessor.name
        let name = ctx.string("name") ?? display
        var result = Dict([("Path", .string(accessor.name == "data" ? display : PathValues.display(path))), ("Name", .string(name))])
        do {
            let file = try accessor.open(path, in: ctx.accessorScope)
            defer { file.close() }
            if file.mayNotEnd { throw UploadError(message: "not a regular file") }
            let ranges = file.ranges ?? [0..<(file.size ?? Int64.max)]
            var index = 0
            var offset = ranges.first?.lowerBound ?? 0
            let stored = try destination.store(name: prefix + "/" + name) { buffer in
                while index < ranges.count {
                    let range = ranges[index]
                    if offset < range.lowerBound { offset = range.lowerBound }
                    guard offset < range.upperBound else {
                        index += 1
                        continue
                    }
                    try ctx.checkCancelled()
                    let want = Int(min(Int64(buffer.count), range.upperBound - offset))
                    let n = try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: offset) }
                    if n <= 0 {
                        index += 1
                        continue
                    }
                    offset += Int64(n)
                    return n
                }
                return 0
            }
            if let sparse = file.ranges {
                var fileOffset: Int64 = 0
                let entries = sparse.map { range -> Value in
                    defer { fileOffset += range.upperBound - range.lowerBound }
                    return .dict(Dict([("file_offset", .int(fileOffset)), ("original_offset", .int(range.lowerBound)),
                                       ("file_length", .int(range.upperBound - range.lowerBound)), ("length", .int(range.upperBound - range.lowerBound))]))
                }
                var index = Array(JSONWriter.string(.dict(Dict([("ranges", .list(entries))]))).utf8)
                _ = try destination.store(name: prefix + "/" + name + ".idx") { buffer in
                    let n = min(buffer.count, index.count)
                    buffer.replaceSubrange(0..<n, with: index[0..<n])
                    index.removeFirst(n)
                    return n
                }
                result["Sparse"] = .bool(true)
            }
            result["StoredName"] = .string(stored.path)
            result["Size"] = .int(stored.size)
            result["Sha256"] = .string(stored.sha256)
            result["Md5"] = .string(stored.md5)
        } catch {
            result["Error"] = .string("\(error)")
            ctx.context.logOnce(.warning, "upload: \(PathValues.display(path)): \(error)")
        }
        return .dict(result)
    }
}

/// The detection module's registry list, explicitly.
public enum DetectLibrary {
    public static var plugins: [PluginDeclaration] {
        YaraPlugins.all + [SQLitePlugin.sqlite, SQLitePlugin.sql] + ParserLibrary.plugins + FormatLibrary.plugins + SigmaPlugins.plugins
            + IndexPlugins.plugins + CryptoFilePlugins.plugins
    }
    public static var functions: [FunctionDeclaration] {
        [MagicFunctions.magic, UploadFunction.upload, Grok.function, GeoIPFunction.declaration] + ParserLibrary.functions + DocumentParsers.functions + FormatLibrary.functions
            + SigmaPlugins.functions
    }
}
