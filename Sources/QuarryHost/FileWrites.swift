import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Writing to the live file system: `copy()` (from any accessor), `write_file()`, `rm()`, and
/// `cat()`, which reads special files chunk by chunk. New files are 0600 unless `permissions`
/// says otherwise; the final path component is never followed if it is a symbolic link.
public enum FileWrites {
    public static var plugins: [PluginDeclaration] { [cat] }
    public static var functions: [FunctionDeclaration] { [copy, writeFile, rm, expand] }

    /// Writes all of `data` to a descriptor; false (errno set) on failure.
    static func writeAll(_ fd: Int32, _ data: [UInt8]) -> Bool {
        var done = 0
        while done < data.count {
            let n = data.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return Glibc.write(fd, base + done, data.count - done)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    /// A permissions argument: octal ("0755"), rwx letters ("rwxr-x---") or "x" (0700).
    static func mode(_ text: String?, default fallback: mode_t = 0o600) -> mode_t {
        guard let text, !text.isEmpty else { return fallback }
        if text.allSatisfy({ ("0"..."7").contains($0) }), let value = mode_t(text, radix: 8) { return value & 0o7777 }
        if text == "x" { return 0o700 }
        let letters = Array(text.suffix(9))
        guard letters.count == 9 else { return fallback }
        var mode: mode_t = 0
        for (i, c) in letters.enumerated() where c != "-" { mode |= 1 << mode_t(8 - i) }
        return mode
    }

    /// Opens `dest` for writing (creating directories first when asked); -1 and a logged error on failure.
    static func openDestination(_ ctx: CallContext, _ dest: String, append: Bool, mode newMode: mode_t, createDirectories: Bool) -> Int32 {
        if createDirectories {
            let parent = (dest as NSString).deletingLastPathComponent
            if !parent.isEmpty {
                try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                         attributes: [.posixPermissions: Int(mode(ctx.string("dir_permissions"), default: 0o700))])
            }
        }
        let flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        let fd = Glibc.open(dest, flags, newMode)
        if fd < 0 { ctx.context.logOnce(.warning, "\(ctx.name): \(dest): \(String(cString: strerror(errno)))") }
        return fd
    }

    public static let copy = FunctionDeclaration(
        name: "copy", summary: "Copies a file read through any accessor (a zip member, data, a device) to a file on disk; returns the destination.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The file to copy from (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
            ArgumentSpec("dest", .string, required: true, "The file to write."),
            ArgumentSpec("permissions", .string, "Mode of a new file: 0755, rw-r--r-- or x (default 0600)."),
            ArgumentSpec("dir_permissions", .string, "Mode of directories created (default 0700)."),
            ArgumentSpec("append", .bool, "Append instead of replacing."),
            ArgumentSpec("create_directories", .bool, "Create missing directories on the way."),
        ],
        returns: .string,
        examples: ["SELECT read_file(filename=copy(filename='copied', accessor='data', dest=tempdir() + '/c.txt')) AS C FROM scope()"],
        permissions: [.filesystemRead, .filesystemWrite]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("filename", for: accessor), let dest = ctx.string("dest"), !dest.isEmpty,
              let file = ctx.open(path, with: accessor) else { return .null }
        defer { file.close() }
        let fd = openDestination(ctx, dest, append: ctx.bool("append") ?? false, mode: mode(ctx.string("permissions")),
                                 createDirectories: ctx.bool("create_directories") ?? false)
        guard fd >= 0 else { return .null }
        defer { Glibc.close(fd) }
        var offset: Int64 = 0
        let limit = file.mayNotEnd ? Int64(FileFunctions.defaultLength) : Int64.max
        do {
            while offset < limit {
                try ctx.checkCancelled()
                let chunk = try file.read(at: offset, count: Int(min(1 << 20, limit - offset)))
                if chunk.isEmpty { break }
                guard writeAll(fd, chunk) else { throw AccessorError.io("\(dest): \(String(cString: strerror(errno)))") }
                offset += Int64(chunk.count)
            }
        } catch {
            ctx.logFailure(path, error)
            return .null
        }
        return .string(dest)
    }

    public static let writeFile = FunctionDeclaration(
        name: "write_file", summary: "Writes a string to a file (0600 unless permissions say otherwise); returns the destination.",
        arguments: [
            ArgumentSpec("data", .string, required: true, "What to write."),
            ArgumentSpec("dest", .string, required: true, "The file to write."),
            ArgumentSpec("permissions", .string, "Mode of a new file: 0755, rw-r--r-- or x (default 0600)."),
            ArgumentSpec("append", .bool, "Append instead of replacing."),
            ArgumentSpec("create_directories", .bool, "Create missing directories on the way."),
        ],
        returns: .string,
        examples: ["SELECT read_file(filename=write_file(data='hello', dest=tempdir() + '/w.txt')) AS W FROM scope()"],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard let dest = ctx.string("dest"), !dest.isEmpty else { return .null }
        let fd = openDestination(ctx, dest, append: ctx.bool("append") ?? false, mode: mode(ctx.string("permissions")),
                                 createDirectories: ctx.bool("create_directories") ?? false)
        guard fd >= 0 else { return .null }
        defer { Glibc.close(fd) }
        guard writeAll(fd, ctx.bytes("data") ?? []) else {
            ctx.context.logOnce(.warning, "write_file: \(dest): \(String(cString: strerror(errno)))")
            return .null
        }
        return .string(dest)
    }

    public static let rm = FunctionDeclaration(
        name: "rm", summary: "Removes a file (not a directory); true when it was removed.",
        arguments: [ArgumentSpec("filename", .any, required: true, "The file to remove.")],
        returns: .bool,
        examples: ["SELECT rm(filename=tempfile(data='x')) AS Removed FROM scope()"],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard let value = ctx.value("filename"), let path = value.byteValue, !path.isEmpty else { return .bool(false) }
        let host = HostFS.resolve(path, root: HostFS.root(ctx.context), followLast: false)
        let rc = HostFS.withCPath(host) { unlink($0) }
        if rc != 0 {
            ctx.context.logOnce(.warning, "rm: \(String(decoding: path, as: UTF8.self)): \(String(cString: strerror(errno)))")
            return .bool(false)
        }
        return .bool(true)
    }

    public static let expand = FunctionDeclaration(
        name: "expand", summary: "Expands environment variables in a path: $NAME, ${NAME} and %NAME% (unknown %NAME% stays as written).",
        arguments: [ArgumentSpec("path", .string, required: true, "A path with variables.")],
        returns: .string,
        examples: ["SELECT expand(path='$HOME/.bash_history') AS History FROM scope()"],
        permissions: [.machineState]
    ) { ctx in
        guard let path = ctx.string("path") else { return .null }
        return .string(expandVariables(path, SystemInfo.environment(ctx.context)))
    }

    /// `$NAME`, `${NAME}` (unknown: empty, as Go's os.ExpandEnv) and `%NAME%` (unknown: kept).
    static func expandVariables(_ text: String, _ environment: [String: String]) -> String {
        let chars = Array(text)
        var out = ""
        var i = 0
        func isNameChar(_ c: Character) -> Bool { c == "_" || c.isLetter || c.isNumber }
        while i < chars.count {
            let c = chars[i]
            if c == "$", i + 1 < chars.count {
                if chars[i + 1] == "{", let close = chars[(i + 2)...].firstIndex(of: "}") {
                    out += environment[String(chars[(i + 2)..<close])] ?? ""
                    i = close + 1
                    continue
                }
                var j = i + 1
                while j < chars.count && isNameChar(chars[j]) { j += 1 }
                if j > i + 1 {
                    out += environment[String(chars[(i + 1)..<j])] ?? ""
                    i = j
                    continue
                }
            }
            if c == "%", let close = chars[(i + 1)...].firstIndex(of: "%"), close > i + 1,
               chars[(i + 1)..<close].allSatisfy(isNameChar) {
                let name = String(chars[(i + 1)..<close])
                if let value = environment[name] ?? environment.first(where: { $0.key.uppercased() == name.uppercased() })?.value {
                    out += value
                    i = close + 1
                    continue
                }
            }
            out.append(c)
            i += 1
        }
        return out
    }

    public static let cat = PluginDeclaration(
        name: "cat", summary: "Reads a file (devices and /proc files too) in chunks: one row per chunk (Data).",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The file (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
            ArgumentSpec("chunk", .int, "Bytes per row (default 4096)."),
            ArgumentSpec("timeout", .int, "Stop reading after this many seconds."),
        ],
        columns: [ColumnSpec("Data", .string, "The chunk's bytes.")],
        examples: ["SELECT Data FROM cat(filename='/proc/self/comm')"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("filename", for: accessor),
              let reader = ChunkReader.open(path, accessor: accessor, maxLength: nil, ctx: ctx) else { return ArrayCursor([]) }
        let chunk = Int(clamping: max(1, ctx.int("chunk") ?? 4096))
        let deadline = ctx.int("timeout").map { Date().addingTimeInterval(Double($0)) }
        let schema = Schema(["Data"], caseInsensitiveFallback: true)
        return GeneratorCursor(onClose: { reader.close() }) {
            try ctx.checkCancelled()
            if let deadline, Date() > deadline { return nil }
            guard let (_, data) = reader.next(chunk) else { return nil }
            return .dict(Dict(schema: schema, values: [.string(bytes: data)]))
        }
    }
}
