import Foundation
import Synchronization
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `tempfile()` and `tempdir()`: scratch files for one session, all inside one private folder
/// (0700, from mkdtemp) that is removed, with everything in it, when the session ends. Files
/// are 0600 from their first syscall, so evidence written there is never readable by others.
public enum TempFiles {
    public static var functions: [FunctionDeclaration] { [tempfile, tempdir] }

    /// The session's private folder (made on first use) and its cleanup.
    final class Folder: Sendable {
        static let key = ServiceKey<Folder>("host.tempfolder")
        let path: String
        private let counter = Counter()

        init?() {
            let base = (ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp") + "/quarry-XXXXXX"
            var template = Array(base.utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else { return nil }
            path = String(cString: made)
        }

        /// A new unique name inside the folder.
        func name(_ suffix: String) -> String { path + "/tmp\(counter.next())" + suffix }

        func remove() { try? FileManager.default.removeItem(atPath: path) }

        static func of(_ context: QueryContext) -> Folder? {
            if let existing = context.service(key) { return existing }
            guard let folder = Folder() else {
                context.logOnce(.error, "tempfile: cannot create a private temporary folder: \(String(cString: strerror(errno)))")
                return nil
            }
            let chosen = context.service(key, orMake: { folder })
            if chosen === folder { context.atEnd { folder.remove() } } else { folder.remove() }
            return chosen
        }
    }

    /// A thread-safe counter for unique names.
    final class Counter: Sendable {
        private let value = Mutex<Int>(0)
        func next() -> Int { value.withLock { $0 += 1; return $0 } }
    }

    public static let tempfile = FunctionDeclaration(
        name: "tempfile", summary: "Creates a private temporary file (0600) holding `data`; removed when the query ends. Returns its path.",
        arguments: [
            ArgumentSpec("data", .stringList, "Content to write (several strings are written one after another)."),
            ArgumentSpec("extension", .string, "A file name extension, such as .txt."),
            ArgumentSpec("permissions", .string, "'x' makes the file executable (0700)."),
            ArgumentSpec("remove_last", .bool, "Accepted for compatibility: everything is removed when the query ends."),
        ],
        returns: .string,
        examples: ["SELECT read_file(filename=tempfile(data='scratch')) AS Content FROM scope()"],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard let folder = Folder.of(ctx.context) else { return .null }
        let path = folder.name(ctx.string("extension") ?? "")
        let mode: mode_t = ctx.string("permissions")?.contains("x") == true ? 0o700 : 0o600
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            ctx.context.logOnce(.error, "tempfile: \(path): \(String(cString: strerror(errno)))")
            return .null
        }
        defer { Glibc.close(fd) }
        var data: [UInt8] = []
        if let value = ctx.value("data") {
            for item in value.listElements ?? [value] { data += item.reduced().byteValue ?? Array(CellText.text(item.reduced()).utf8) }
        }
        guard FileWrites.writeAll(fd, data) else {
            ctx.context.logOnce(.error, "tempfile: \(path): \(String(cString: strerror(errno)))")
            return .null
        }
        return .string(path)
    }

    public static let tempdir = FunctionDeclaration(
        name: "tempdir", summary: "Creates a private temporary directory (0700); removed with its content when the query ends. Returns its path.",
        arguments: [ArgumentSpec("remove_last", .bool, "Accepted for compatibility: everything is removed when the query ends.")],
        returns: .string,
        examples: ["SELECT tempdir() =~ 'quarry-' AS Made FROM scope()"],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard let folder = Folder.of(ctx.context) else { return .null }
        let path = folder.name("")
        guard mkdir(path, 0o700) == 0 else {
            ctx.context.logOnce(.error, "tempdir: \(path): \(String(cString: strerror(errno)))")
            return .null
        }
        return .string(path)
    }
}
