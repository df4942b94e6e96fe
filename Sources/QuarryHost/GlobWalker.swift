import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// The state of the walk: directories still to read, each with the glob positions reached there.
final class GlobWalker: GlobExpansion {
    typealias State = GlobAutomaton.State

    struct Pending {
        var logical: [UInt8]
        var states: [State]
        var ancestors: [DirectoryIdentity]
        /// The open parent directory and this directory's name in it (openat, no path walk).
        var parent: DirectoryHandle? = nil
        var name: [UInt8] = []
    }

    struct DirectoryIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    let automaton: GlobAutomaton
    let root: [UInt8]
    let ctx: CallContext
    let context: QueryContext
    let followLinks: Bool
    let oneFileSystem: Bool
    let callback: Lambda?
    var stack: [GlobWork<Pending>] = []
    private var rootDevice: UInt64?

    init(patterns: [GlobPattern], root: [UInt8], ctx: CallContext, followLinks: Bool, oneFileSystem: Bool, callback: Lambda?) {
        self.automaton = GlobAutomaton(patterns: patterns)
        self.root = root
        self.ctx = ctx
        self.context = ctx.context
        self.followLinks = followLinks
        self.oneFileSystem = oneFileSystem
        self.callback = callback
        if !automaton.initial.isEmpty { stack.append(.directory(Pending(logical: [PathBytes.slash], states: automaton.initial, ancestors: []))) }
        if oneFileSystem, case .success(let st) = HostFS.stat(root, follow: true) { rootDevice = st.device }
    }

    @inline(__always)
    private func isFinal(_ state: State) -> Bool { automaton.isFinal(state) }

    /// Walks everything on the current thread, handing rows over in batches; stops when `emit`
    /// returns false (consumer gone) or the query is cancelled.
    func walkAll(emit: ([Value]) -> Bool) {
        var batch: [Value] = []
        batch.reserveCapacity(256)
        while let item = stack.popLast() {
            switch item {
            case .row(let row):
                batch.append(row)
                if batch.count >= 256 {
                    if !emit(batch) { return }
                    batch.removeAll(keepingCapacity: true)
                }
            case .directory(let pending):
                if context.cancellation.isCancelled { return }
                context.throttle?.pace()
                expand(pending)
            }
        }
        if !batch.isEmpty { _ = emit(batch) }
    }

    func expand(_ pending: Pending) {
        let live = pending.states.filter { !isFinal($0) }
        guard !live.isEmpty else { return }
        let host = HostFS.resolve(pending.logical, root: root)
        var work: [GlobWork<Pending>] = []
        // Only literal names next: look them up directly, without reading the directory.
        var literalNames: [[UInt8]] = []
        let allLiteral = live.allSatisfy { state in
            guard let name = automaton.literal(state) else { return false }
            if !literalNames.contains(name) { literalNames.append(name) }
            return true
        }
        var entries: [(name: [UInt8], type: UInt8, stat: FileStat?)] = []
        var ancestors = pending.ancestors
        var handle: DirectoryHandle?
        if allLiteral {
            for name in literalNames {
                switch HostFS.stat(PathBytes.join(host, name)) {
                case .success(let st): entries.append((name, GlobWalker.directoryType(st.kind), st))
                case .failure(let e) where e.code == ENOENT || e.code == ENOTDIR: continue
                case .failure(let e): logProblem(PathBytes.join(pending.logical, name), e)
                }
            }
        } else {
            guard let (list, opened) = readDirectory(host, pending: pending, ancestors: &ancestors) else { return }
            // Name order, as Velociraptor lists directories (so results come in a stable order).
            entries = list.sorted { GlobWalker.precedes($0.0, $1.0) }.map { ($0.0, $0.1, nil) }
            handle = opened
        }
        var next: [State] = []
        next.reserveCapacity(8)
        let identityRoot = root == [PathBytes.slash]
        let remapRoot: [UInt8]? = identityRoot ? nil : root
        for entry in entries {
            automaton.advance(live, name: entry.name, into: &next)
            if next.isEmpty { continue }
            let logical = PathBytes.join(pending.logical, entry.name)
            let entryHost = identityRoot ? logical : PathBytes.join(host, entry.name)
            var anyMatched = false
            var descend = false
            for state in next {
                if isFinal(state) { anyMatched = true } else { descend = true }
            }
            var targetIsDirectory: Bool?
            var isDirectory = entry.type == UInt8(DT_DIR)
            if entry.type == UInt8(DT_LNK) {
                // Under a remapped root, link targets resolve inside the root (not via fstatat).
                if followLinks && descend, let kind = identityRoot
                    ? kindAt(handle, entry.name, host: entryHost, follow: true)
                    : kindAt(nil, entry.name, host: HostFS.resolve(logical, root: root), follow: true) {
                    targetIsDirectory = kind == .directory
                    isDirectory = kind == .directory
                } else if !followLinks {
                    isDirectory = false
                }
            } else if entry.type == UInt8(DT_UNKNOWN), descend, let kind = kindAt(handle, entry.name, host: entryHost, follow: false) {
                isDirectory = kind == .directory
            }
            var row: FileRow?
            if anyMatched || (descend && isDirectory && callback != nil) {
                let sources = anyMatched ? automaton.sources(next) : []
                row = FileRow(logical: logical, host: entryHost, directoryType: entry.type, globs: sources,
                              stat: entry.stat, targetIsDirectory: targetIsDirectory, root: remapRoot, context: context)
            }
            if anyMatched, let row { work.append(.row(.object(row))) }
            if descend && isDirectory {
                if let callback, let row, !callback.call([.object(row)], in: ctx.env).isTruthy { continue }
                work.append(.directory(Pending(logical: logical, states: next.filter { !isFinal($0) }, ancestors: ancestors,
                                               parent: identityRoot ? handle : nil, name: entry.name)))
            }
        }
        stack.append(contentsOf: work.reversed())
    }

    /// Byte order of two names (memcmp, then length).
    @inline(__always)
    static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let order = a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y -> Int32 in
                guard let p = x.baseAddress, let q = y.baseAddress else { return 0 }
                return memcmp(p, q, min(x.count, y.count))
            }
        }
        return order != 0 ? order < 0 : a.count < b.count
    }

    static func directoryType(_ kind: FileStat.Kind) -> UInt8 {
        switch kind {
        case .directory: return UInt8(DT_DIR)
        case .symlink: return UInt8(DT_LNK)
        case .regular: return UInt8(DT_REG)
        case .fifo: return UInt8(DT_FIFO)
        case .socket: return UInt8(DT_SOCK)
        case .characterDevice: return UInt8(DT_CHR)
        case .blockDevice: return UInt8(DT_BLK)
        case .unknown: return UInt8(DT_UNKNOWN)
        }
    }

    private func logProblem(_ logical: [UInt8], _ error: Errno) {
        context.logOnce(.warning, "glob: \(String(decoding: logical, as: UTF8.self)): \(error)")
    }

    /// The file type of an entry, by fstatat on its open parent when there is one.
    private func kindAt(_ parent: DirectoryHandle?, _ name: [UInt8], host: [UInt8], follow: Bool) -> FileStat.Kind? {
        guard let parent else {
            if case .success(let st) = HostFS.stat(host, follow: follow) { return st.kind }
            return nil
        }
        var st = stat()
        let rc = HostFS.withCPath(name) { fstatat(parent.descriptor, $0, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) }
        return rc == 0 ? FileStat(st).kind : nil
    }

    /// Reads one directory's entries (name, d_type) and keeps it open for its children; nil when
    /// it cannot be read, is on another file system (one_filesystem) or closes a symlink loop.
    private func readDirectory(_ host: [UInt8], pending: Pending, ancestors: inout [DirectoryIdentity]) -> ([([UInt8], UInt8)], DirectoryHandle)? {
        let logical = pending.logical
        let flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK
        let fd: Int32
        if let parent = pending.parent {
            fd = HostFS.withCPath(pending.name) { openat(parent.descriptor, $0, flags) }
        } else {
            fd = HostFS.withCPath(host) { open($0, flags) }
        }
        guard fd >= 0 else {
            let code = errno
            if code != ENOENT && code != ENOTDIR { logProblem(logical, Errno(code)) }
            return nil
        }
        var st = stat()
        if fstat(fd, &st) == 0 {
            let identity = DirectoryIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            if ancestors.contains(identity) {
                close(fd)
                context.logOnce(.warning, "glob: \(String(decoding: logical, as: UTF8.self)): symlink loop, not descending")
                return nil
            }
            if let rootDevice, identity.device != rootDevice {
                close(fd)
                return nil
            }
            ancestors.append(identity)
        }
        guard let dir = fdopendir(fd) else {
            logProblem(logical, Errno(errno))
            close(fd)
            return nil
        }
        let handle = DirectoryHandle(dir)
        var entries: [([UInt8], UInt8)] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { logProblem(logical, Errno(errno)) }
                break
            }
            let type = entry.pointee.d_type
            let name: [UInt8] = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: UInt8.self, capacity: 256) { bytes in
                    let length = strnlen(UnsafeRawPointer(bytes).assumingMemoryBound(to: CChar.self), 256)
                    return Array(UnsafeBufferPointer(start: bytes, count: length))
                }
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            entries.append((name, type))
        }
        return (entries, handle)
    }
}

/// An open directory kept while its subdirectories are pending, so they are opened with openat
/// relative to it (no full-path lookups). At most one per level of the walk is open.
final class DirectoryHandle {
    private let dir: OpaquePointer
    let descriptor: Int32

    init(_ dir: OpaquePointer) {
        self.dir = dir
        self.descriptor = dirfd(dir)
    }

    deinit { closedir(dir) }
}
