import Foundation
import Synchronization
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `shell_session()` and `shell_session_control()`: a long-lived interactive program (a shell)
/// that several calls — and, in a fleet, several requests of one flow — talk to by name.
///
/// execve() runs a command to its end with stdin closed; a responder working a live host wants a
/// shell that keeps its working directory and variables between commands, as Velociraptor's
/// Linux.Sys.BashShell does with these two names. A session is a process in its own process
/// group with stdin on a socket (writes never raise SIGPIPE) and stdout/stderr drained by a pump
/// thread into bounded buffers (a full buffer stops reading, so the shell waits rather than the
/// agent's memory growing). The handle's `Query` streams the output as rows; reading it ends when
/// the program exits or the enclosing query(timeout=) passes. Cancelling the reading query, or
/// the end of the query that started the session, kills the program's whole process group.
public enum ShellSessions {
    public static var functions: [FunctionDeclaration] { [shellSession, shellSessionControl] }

    /// Live sessions per process; past this, new sessions are refused.
    static let maxSessions = 32
    static let table = Mutex<[String: ShellSession]>([:])

    public static let shellSession = FunctionDeclaration(
        name: "shell_session",
        summary: "Starts a named interactive program (e.g. bash), or returns the running one of that name; the handle has Name, Pid, Argv, IsRunning (true when it was already running) and Query (its output as rows: Stdin, Stdout, Stderr).",
        arguments: [
            ArgumentSpec("argv", .stringList, required: true, "Program and arguments (the program is looked up in PATH)."),
            ArgumentSpec("env", .dict, "Extra environment variables."),
            ArgumentSpec("cwd", .string, "Working directory to start in."),
            ArgumentSpec("secret", .string, "Accepted for compatibility; Quarry has no secrets service on the endpoint."),
            ArgumentSpec("name", .string, "The session's name; calling again with a running session's name returns it (default \"\")."),
        ],
        returns: .any,
        examples: [
            "SELECT * FROM foreach(row={ SELECT shell_session(name='example', argv=['bash']) AS S, shell_session_control(name='example', stdin='echo hello; exit\\n') AS C FROM scope() }, query={ SELECT Stdout FROM foreach(row=S.Query) })",
        ],
        permissions: [.execve]
    ) { ctx in
        guard ctx.context.require(.execve, for: "shell_session") else { return .null }
        let argv = ctx.strings("argv") ?? []
        // Velociraptor's sessions are keyed by name alone; no name is the name "".
        let name = ctx.string("name") ?? ""
        if ctx.string("secret") != nil { ctx.log(.warning, "shell_session: secret= is not supported and was ignored") }
        if let running = table.withLock({ $0[name] }), running.isRunning {
            return .object(ShellSessionHandle(session: running, wasRunning: true, env: ctx.env))
        }
        guard let program = argv.first, let executable = Execve.resolve(program) else {
            ctx.log(.error, "shell_session: cannot find program '\(argv.first ?? "")'")
            return .null
        }
        var environment = ProcessInfo.processInfo.environment
        if case .dict(let extra)? = ctx.value("env") {
            for (key, value) in extra.pairs { environment[key] = value.stringValue ?? JSONWriter.string(value) }
        }
        let session: ShellSession
        do {
            let started = try table.withLock { sessions -> ShellSession in
                sessions = sessions.filter { $0.value.isRunning }
                guard sessions.count < maxSessions else { throw ShellSessionError("\(maxSessions) sessions are running already") }
                let new = try ShellSession(name: name, executable: executable, argv: argv, environment: environment, cwd: ctx.string("cwd"))
                sessions[name] = new
                return new
            }
            session = started
        } catch {
            ctx.log(.error, "shell_session: \(program): \(error)")
            return .null
        }
        ctx.log(.info, "shell_session: started '\(name)' (pid \(session.pid)): \(argv.joined(separator: " "))")
        // The query that started a session owns it: its end kills what is still running.
        ctx.context.atEnd { [weak session] in session?.kill() }
        return .object(ShellSessionHandle(session: session, wasRunning: false, env: ctx.env))
    }

    public static let shellSessionControl = FunctionDeclaration(
        name: "shell_session_control",
        summary: "Writes to a named session's stdin, closes its stdin, or kills it; returns the session's state (Name, Pid, IsRunning, ReturnCode).",
        arguments: [
            ArgumentSpec("name", .string, "The session's name."),
            ArgumentSpec("stdin", .string, "Text to write to the program's stdin (add \\n to run a command line)."),
            ArgumentSpec("close_stdin", .bool, "Close stdin (a shell then exits once it has run what it read)."),
            ArgumentSpec("kill", .bool, "Kill the session's whole process group."),
        ],
        returns: .dict,
        examples: ["SELECT shell_session(name='uname', argv=['bash']).Name AS Name, shell_session_control(name='uname', stdin='uname -a\\n', close_stdin=TRUE) AS State FROM scope()"],
        permissions: [.execve]
    ) { ctx in
        guard ctx.context.require(.execve, for: "shell_session_control") else { return .null }
        let name = ctx.string("name") ?? ""
        guard let session = table.withLock({ $0[name] }) else {
            ctx.log(.error, "shell_session_control: no session named '\(name)'")
            return .null
        }
        if let text = ctx.bytes("stdin"), !text.isEmpty {
            do {
                try session.write(text)
            } catch {
                ctx.log(.error, "shell_session_control: \(name): \(error)")
            }
        }
        if ctx.bool("close_stdin") == true { session.closeStdin() }
        if ctx.bool("kill") == true {
            session.kill()
            ctx.log(.info, "shell_session_control: killed '\(name)' (pid \(session.pid))")
        }
        return .dict(session.state)
    }
}

struct ShellSessionError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What shell_session() returns: the session plus whether it was already running for this caller.
final class ShellSessionHandle: HostObject, @unchecked Sendable {
    let session: ShellSession
    let wasRunning: Bool
    /// A scope of its own for `Query`: holding the caller's scope would make a cycle (the scope
    /// holds the handle in a LET), so the session's context — whose end kills the program —
    /// would never be released.
    let env: Env

    init(session: ShellSession, wasRunning: Bool, env: Env) {
        self.session = session
        self.wasRunning = wasRunning
        self.env = Env(context: env.context)
    }

    var typeName: String { "shell_session" }
    var memberNames: [String] { ["Name", "Pid", "Argv", "IsRunning", "Query"] }

    func member(_ name: String) -> Value? {
        switch name {
        case "Name": return .string(session.name)
        case "Pid": return .int(Int64(session.pid))
        case "Argv": return .list(session.argv.map { .string($0) })
        case "IsRunning": return .bool(wasRunning)
        case "Query":
            let session = self.session
            return .query(StoredQuery(env: env) { runEnv in session.reader(cancellation: runEnv.context.cancellation) })
        default: return nil
        }
    }
}
