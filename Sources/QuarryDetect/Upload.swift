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

/// upload(): copies a file into the current collection (or --upload-dir), streaming, with size
/// and hashes in the result; a file it cannot read is recorded in the result, not fatal.
public enum UploadFunction {
    public static let serviceKey = UploadService.key

    public static let upload = FunctionDeclaration(
        name: "upload", summary: "Copies a file into the collection's uploads (or --upload-dir); returns Path, Size, Sha256, Md5 or Error.",
        arguments: [
            ArgumentSpec("file", .string, required: true, "The file to upload."),
            ArgumentSpec("name", .string, "Name to store it under (default: the file's path)."),
            ArgumentSpec("accessor", .string, "file (default) or data (upload the argument itself)."),
        ],
        returns: .dict, examples: [], permissions: [.filesystemRead]
    ) { ctx in
        guard let file = ctx.string("file") else { return .null }
        guard let destination = ctx.context.service(serviceKey, as: (any UploadDestination).self) else {
            ctx.context.logOnce(.error, "upload: no upload destination (use quarry query --upload-dir DIR, or a collection)")
            return .null
        }
        let accessor = ctx.string("accessor") ?? "file"
        let name = (ctx.string("name") ?? (accessor == "data" ? "data" : file))
        var result = Dict([("Path", .string(file)), ("Name", .string(name))])
        do {
            let stored: (path: String, size: Int64, sha256: String, md5: String)
            if accessor == "data" {
                var data = ctx.bytes("file") ?? []
                stored = try destination.store(name: accessor + "/" + name) { buffer in
                    let n = min(buffer.count, data.count)
                    buffer.replaceSubrange(0..<n, with: data[0..<n])
                    data.removeFirst(n)
                    return n
                }
            } else {
                let fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                guard fd >= 0 else { throw UploadError(message: String(cString: strerror(errno))) }
                defer { close(fd) }
                var info = stat()
                guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                    throw UploadError(message: "not a regular file")
                }
                stored = try destination.store(name: "file/" + name) { buffer in
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n < 0 { throw UploadError(message: String(cString: strerror(errno))) }
                    return n
                }
            }
            result["StoredName"] = .string(stored.path)
            result["Size"] = .int(stored.size)
            result["Sha256"] = .string(stored.sha256)
            result["Md5"] = .string(stored.md5)
        } catch {
            result["Error"] = .string("\(error)")
            ctx.context.logOnce(.warning, "upload: \(file): \(error)")
        }
        return .dict(result)
    }
}

/// The detection module's registry list, explicitly.
public enum DetectLibrary {
    public static var plugins: [PluginDeclaration] { YaraPlugins.all + [SQLitePlugin.sqlite] + ParserLibrary.plugins }
    public static var functions: [FunctionDeclaration] { [MagicFunctions.magic, UploadFunction.upload, Grok.function] + ParserLibrary.functions }
}
