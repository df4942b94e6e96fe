import Foundation
import VQL
import CResponse
#if canImport(Glibc)
import Glibc
#endif

/// One running session program: spawns it, pumps its output, accepts input, and turns what it
/// said into rows. All mutable state is guarded by `condition`.
final class ShellSession: @unchecked Sendable {
    /// Buffered output (stdout + stderr) past which the pump stops reading.
    static let bufferCap = 8 << 20
    /// Output is cut into a row once it has been quiet this long (a command's answer as one row).
    static let quiet: TimeInterval = 0.2
    /// A row carries at most this much of each stream.
    static let rowCap = 1 << 20
    static let schema = Schema(["Stdin", "Stdout", "Stderr"], caseInsensitiveFallback: true)

    let name: String
    let argv: [String]
    let pid: pid_t
    private let condition = NSCondition()
    private var stdinFD: Int32
    private var out: [UInt8] = []
    private var err: [UInt8] = []
    private var pendingStdin: [UInt8] = []
    private var lastActivity = Date()
    private var exitCode: Int32?
    private var readerAttached = false

    init(name: String, executable: String, argv: [String], environment: [String: String], cwd: String?) throws {
        self.name = name
        self.argv = argv
        var stdinPair: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &stdinPair) == 0 else {
            throw ShellSessionError("socketpair: \(String(cString: strerror(errno)))")
        }
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            for fd in stdinPair + outPipe + errPipe where fd >= 0 { close(fd) }
            throw ShellSessionError("pipe: \(String(cString: strerror(errno)))")
        }
        // Only the dup2'd copies reach the child; the agent's ends must not leak into it.
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPair[1], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        // Nothing else of the agent's reaches the program (a test server's stdin pipe held open by
        // a shell kept that server from ever seeing its end).
        quarry_spawn_addclosefrom(&actions, 3)
        if let cwd { quarry_spawn_addchdir(&actions, cwd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (so kill reaches what the shell started), default signal
        // dispositions (the agent ignores SIGPIPE; a shell pipeline must not) and no blocked signals.
        var defaults = sigset_t(), empty = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgv + cEnv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, cArgv, cEnv)
        close(stdinPair[1]); close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(stdinPair[0]); close(outPipe[0]); close(errPipe[0])
            throw ShellSessionError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        stdinFD = stdinPair[0]
        let flags = fcntl(stdinFD, F_GETFL)
        _ = fcntl(stdinFD, F_SETFL, flags | O_NONBLOCK)
        let (outFD, errFD) = (outPipe[0], errPipe[0])
        let pump = Thread { [self] in self.pump(outFD, errFD) }
        pump.name = "quarry.shell_session.\(name)"
        pump.start()
    }

    var isRunning: Bool { condition.withLock { exitCode == nil } }

    var state: Dict {
        condition.withLock {
            Dict([("Name", .string(name)), ("Pid", .int(Int64(pid))), ("IsRunning", .bool(exitCode == nil)),
                  ("ReturnCode", exitCode.map { .int(Int64($0)) } ?? .null)])
        }
    }

    /// Writes input without blocking: what does not fit in the socket buffer now is an error.
    func write(_ bytes: [UInt8]) throws {
        try condition.withLock {
            guard exitCode == nil, stdinFD >= 0 else { throw ShellSessionError("the session has ended or its stdin is closed") }
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { send(stdinFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 { written += n; continue }
                if n < 0 && errno == EINTR { continue }
                pendingStdin += bytes[0..<written]
                throw ShellSessionError(n < 0 && errno == EAGAIN ? "the program is not reading its input (\(written) of \(bytes.count) bytes written)" : "write: \(String(cString: strerror(errno)))")
            }
            pendingStdin += bytes
            lastActivity = Date()
            condition.broadcast()
        }
    }

    func closeStdin() {
        condition.withLock {
            if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
        }
    }

    /// Kills the whole process group (the pump reaps it).
    func kill() {
        condition.withLock {
            guard exitCode == nil else { return }
            _ = Glibc.kill(-pid, SIGKILL)
            _ = Glibc.kill(pid, SIGKILL)
        }
    }

    /// Reads both pipes until both end, never holding more than `bufferCap`; then reaps the program.
    private func pump(_ outFD: Int32, _ errFD: Int32) {
        var fds = [outFD, errFD]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while fds.contains(where: { $0 >= 0 }) {
            let full = condition.withLock { out.count + err.count >= Self.bufferCap }
            if full {
                condition.withLock { _ = condition.wait(until: Date().addingTimeInterval(0.1)) }
                continue
            }
            var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&polls, nfds_t(polls.count), 200) <= 0 { continue }
            for i in polls.indices where polls[i].fd >= 0 && polls[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(polls[i].fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    condition.withLock {
                        if i == 0 { out += buffer[0..<n] } else { err += buffer[0..<n] }
                        lastActivity = Date()
                        condition.broadcast()
                    }
                } else if n == 0 || errno != EINTR {
                    close(fds[i])
                    fds[i] = -1
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (the macros are not imported).
        let signal = status & 0x7f
        let code: Int32 = signal == 0 ? (status >> 8) & 0xff : -signal
        condition.withLock {
            exitCode = code
            if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
            condition.broadcast()
        }
    }

    /// The session's output as rows, until the program exits or the enclosing query(timeout=)
    /// passes. One reader at a time (a second gets an error). Stopping to read leaves the program
    /// running (a REPL user reads, types more, reads again); cancelling the query kills it, and the
    /// end of the query that started it kills it in any case.
    func reader(cancellation: CancellationFlag) -> RowCursor {
        let attached = condition.withLock { () -> Bool in
            if readerAttached { return false }
            readerAttached = true
            return true
        }
        guard attached else {
            return GeneratorCursor { throw ShellSessionError("session '\(self.name)' is already being read by another query") }
        }
        var done = false
        return GeneratorCursor(onClose: { [self] in
            condition.withLock { readerAttached = false }
        }) { [self] in
            guard !done else { return nil }
            while true {
                if cancellation.isCancelled { kill(); throw QueryCancelled() }
                if QueryDeadline.hasPassed { done = true; return nil }
                let next = condition.withLock { () -> (row: Value?, ended: Bool) in
                    let hasData = !out.isEmpty || !err.isEmpty || !pendingStdin.isEmpty
                    let ended = exitCode != nil
                    if hasData && (ended || out.count >= Self.rowCap || err.count >= Self.rowCap || Date().timeIntervalSince(lastActivity) >= Self.quiet) {
                        return (takeRow(), false)
                    }
                    if ended { return (nil, true) }
                    _ = condition.wait(until: Date().addingTimeInterval(hasData ? Self.quiet / 2 : 0.1))
                    return (nil, false)
                }
                if let row = next.row { return row }
                if next.ended { done = true; return nil }
            }
        }
    }

    /// Must hold `condition`.
    private func takeRow() -> Value {
        let o = Array(out.prefix(Self.rowCap)), e = Array(err.prefix(Self.rowCap))
        out.removeFirst(o.count)
        err.removeFirst(e.count)
        let input = pendingStdin
        pendingStdin = []
        condition.broadcast()
        return .dict(Dict(schema: Self.schema, values: [.string(bytes: input), .string(bytes: o), .string(bytes: e)]))
    }
}
