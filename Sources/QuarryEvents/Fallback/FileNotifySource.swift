import CLibBPF
import CLinuxEvents
import Foundation
import QuarryHost
import Synchronization
import VQL

/// File events without BPF. Privileged: fanotify marks on the mounts holding the watched
/// prefixes, reporting opens (flags unknown, "") and closes after writing ("O_WRONLY"), with
/// the pid. Unprivileged: inotify on the prefix folders themselves (not recursive, no pid).
/// Rows have security_file_open's shape, System.Source "fanotify" or "inotify".
final class FileNotifySource: @unchecked Sendable {
    let kind: String
    private let fd: Int32
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let deliver: @Sendable (DecodedEvent) -> Void
    /// inotify watch descriptor → folder.
    private var folders: [Int32: [UInt8]] = [:]

    init(prefixes: [String], deliver: @escaping @Sendable (DecodedEvent) -> Void) throws {
        self.deliver = deliver
        let fanotify = fanotify_init(UInt32(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK), UInt32(O_RDONLY | O_CLOEXEC))
        if fanotify >= 0 {
            var marked = 0
            for prefix in prefixes {
                let mask = UInt64(FAN_OPEN | FAN_CLOSE_WRITE)
                if fanotify_mark(fanotify, UInt32(FAN_MARK_ADD | FAN_MARK_MOUNT), mask, AT_FDCWD, Self.existingAncestor(prefix)) == 0 {
                    marked += 1
                }
            }
            guard marked > 0 else {
                let code = errno
                close(fanotify)
                throw Errno(code)
            }
            kind = "fanotify"
            fd = fanotify
        } else {
            let inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard inotify >= 0 else { throw Errno(errno) }
            var folders: [Int32: [UInt8]] = [:]
            for prefix in prefixes {
                let folder = Self.folder(of: prefix)
                let watch = inotify_add_watch(inotify, folder, UInt32(IN_OPEN | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO))
                if watch >= 0 { folders[watch] = Array(folder.utf8) }
            }
            guard !folders.isEmpty else {
                let code = errno
                close(inotify)
                throw Errno(code)
            }
            self.folders = folders
            kind = "inotify"
            fd = inotify
        }
        let thread = Thread { [self] in run() }
        thread.name = "quarry-file-notify"
        thread.start()
    }

    /// The path itself, or the nearest ancestor that exists (a watched file may not exist yet).
    static func existingAncestor(_ path: String) -> String {
        var candidate = path
        while !candidate.isEmpty && candidate != "/" {
            if access(candidate, F_OK) == 0 { return candidate }
            candidate = (candidate as NSString).deletingLastPathComponent
        }
        return "/"
    }

    /// The folder an inotify watch covers for a prefix: the prefix when it names a folder,
    /// else its parent.
    static func folder(of prefix: String) -> String {
        var isFolder: ObjCBool = false
        let existing = existingAncestor(prefix)
        if FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder), isFolder.boolValue { return existing }
        return (existing as NSString).deletingLastPathComponent
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let me = getpid()
        while !stopping.load(ordering: .relaxed) {
            guard poll(&poller, 1, 200) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { continue }
            if kind == "fanotify" { fanotifyEvents(buffer, count: n, me: me) } else { inotifyEvents(buffer, count: n) }
        }
        finished.signal()
    }

    private func fanotifyEvents(_ buffer: [UInt8], count: Int, me: Int32) {
        let size = MemoryLayout<fanotify_event_metadata>.size
        var offset = 0
        while offset + size <= count {
            let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: fanotify_event_metadata.self) }
            guard event.event_len >= UInt32(size) else { break }
            offset += Int(event.event_len)
            guard event.fd >= 0 else { continue }
            defer { close(event.fd) }
            if event.pid == me { continue }
            let path = HostFS.readlink(Array("/proc/self/fd/\(event.fd)".utf8)) ?? []
            var stats = stat()
            let found = fstat(event.fd, &stats) == 0
            let written = event.mask & UInt64(FAN_CLOSE_WRITE) != 0
            emit(pid: event.pid, path: path, flags: written ? "O_WRONLY" : "", stats: found ? stats : nil)
        }
    }

    private func inotifyEvents(_ buffer: [UInt8], count: Int) {
        let header = MemoryLayout<inotify_event>.size
        var offset = 0
        while offset + header <= count {
            let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
            let nameStart = offset + header
            let nameEnd = min(count, nameStart + Int(event.len))
            offset = nameEnd
            guard let folder = folders[event.wd] else { continue }
            let name = Array(buffer[nameStart..<nameEnd].prefix { $0 != 0 })
            var path = folder
            if !name.isEmpty {
                if path.last != UInt8(ascii: "/") { path.append(UInt8(ascii: "/")) }
                path += name
            }
            let written = event.mask & UInt32(IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO) != 0
            var stats = stat()
            let found = stat(String(decoding: path, as: UTF8.self), &stats) == 0
            emit(pid: 0, path: path, flags: written ? "O_WRONLY" : "", stats: found ? stats : nil)
        }
    }

    private func emit(pid: Int32, path: [UInt8], flags: String, stats: stat?) {
        let kind = EventCatalog.kind(QE_FILE_OPEN)
        let row = pid > 0 ? ProcessRow.live(pid: pid) : nil
        let identity = FallbackRows.identity(pid: pid, row: row)
        let ctime = stats.map { Int64($0.st_ctim.tv_sec) * 1_000_000_000 + Int64($0.st_ctim.tv_nsec) } ?? 0
        let data = Dict([
            ("pathname", .string(bytes: path)), ("flags", .string(flags)),
            ("dev", .int(Int64(stats?.st_dev ?? 0))), ("inode", .int(Int64(stats?.st_ino ?? 0))), ("ctime", .int(ctime)),
            ("mode", .int(Int64(stats?.st_mode ?? 0))),
        ])
        deliver(FallbackRows.event(kind, identity, data: data, path: path, source: self.kind))
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        close(fd)
    }
}
