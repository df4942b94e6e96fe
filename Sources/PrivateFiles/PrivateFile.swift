#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// Files that hold evidence or keys: created with their final, private mode by the very system call
/// that makes them (`open` with O_CREAT|O_EXCL and 0600), never created readable and tightened
/// afterwards. Replacing a file goes through a private temporary name in the same folder, fsync,
/// rename and an fsync of the folder, so a crash leaves the old file or the new one, never a torn
/// one, and no other user can read either at any moment. Every target that writes such files uses
/// these functions; nothing else in Quarry creates them.
public enum PrivateFile {
    /// Owner read and write only.
    public static let privateMode: mode_t = 0o600

    /// Creates `path` exclusively (it must not exist; a symbolic link there is not followed) with
    /// `mode`, and returns the open descriptor (write-only unless `readable`).
    public static func create(_ path: String, mode: mode_t = privateMode, readable: Bool = false) throws -> Int32 {
        let flags = O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | (readable ? O_RDWR : O_WRONLY)
        let fd = open(path, flags, mode)
        guard fd >= 0 else { throw PrivateFileError("cannot create \(path): \(lastError())") }
        // The umask may have taken bits away (never added them): the mode asked for is the mode set.
        if fchmod(fd, mode) != 0 {
            let message = lastError()
            close(fd)
            unlink(path)
            throw PrivateFileError("cannot set the mode of \(path): \(message)")
        }
        return fd
    }

    /// Creates `path` for writing with `mode`, removing whatever was there first (a file left by an
    /// earlier run, or one another user placed there in a shared folder: it is unlinked, never
    /// written through).
    /// Only a regular file or a symbolic link is ever removed: a device (`/dev/null`), a folder or a
    /// pipe at the path is an error, not something to replace.
    public static func replace(_ path: String, mode: mode_t = privateMode, readable: Bool = false) throws -> Int32 {
        var info = stat()
        if lstat(path, &info) == 0 {
            let type = info.st_mode & S_IFMT
            guard type == S_IFREG || type == S_IFLNK else { throw PrivateFileError("\(path) exists and is not a regular file: not replacing it") }
            if unlink(path) != 0 && errno != ENOENT { throw PrivateFileError("cannot replace \(path): \(lastError())") }
        }
        return try create(path, mode: mode, readable: readable)
    }

    /// Writes `data` to `path` atomically: a new private file under a temporary name in the same
    /// folder, written, fsynced, renamed over `path`, then the folder fsynced.
    public static func write(_ data: some DataProtocol, to path: String, mode: mode_t = privateMode) throws {
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try create(temporary, mode: mode)
        do {
            try writeAll(fd, data, path: temporary)
            guard fsync(fd) == 0 else { throw PrivateFileError("cannot sync \(temporary): \(lastError())") }
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let message = lastError()
            unlink(temporary)
            throw PrivateFileError("cannot write \(path): \(message)")
        }
        syncFolder(of: path)
    }

    /// Writes all of `data` to `fd` (retrying short writes and interruptions).
    public static func writeAll(_ fd: Int32, _ data: some DataProtocol, path: String) throws {
        for region in data.regions {
            try region.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return }
                var offset = 0
                while offset < buffer.count {
                    let n = posixWrite(fd, base + offset, buffer.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw PrivateFileError("cannot write \(path): \(lastError())")
                    }
                    offset += n
                }
            }
        }
    }

    /// Makes a rename or an unlink in the folder holding `path` durable.
    public static func syncFolder(of path: String) {
        let folder = (path as NSString).deletingLastPathComponent
        let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    // MARK: temporary files

    private static let temporaryRootBox = Mutex<String?>(nil)

    /// Where temporary files and folders go: set once by the agent to a folder inside its state
    /// folder; otherwise `$TMPDIR` or /tmp.
    public static var temporaryRoot: String {
        get {
            if let root = temporaryRootBox.withLock({ $0 }) { return root }
            let environment = ProcessInfo.processInfo.environment["TMPDIR"] ?? ""
            return environment.isEmpty ? "/tmp" : environment
        }
        set { temporaryRootBox.withLock { $0 = newValue } }
    }

    /// A new folder only its owner may enter (mkdtemp makes it 0700), under the temporary root.
    public static func makeTemporaryFolder(prefix: String) throws -> String {
        var template = Array((temporaryRoot + "/" + prefix + "-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw PrivateFileError("cannot make a temporary folder in \(temporaryRoot): \(lastError())") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func lastError() -> String { String(cString: strerror(errno)) }
}

/// `write(2)`, named apart from `PrivateFile.write`.
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// A private file could not be made or written; the text names the file and the system's reason.
public struct PrivateFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
