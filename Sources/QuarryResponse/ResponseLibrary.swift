import Foundation
import PrivateFiles
import Synchronization
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Response on the endpoint: the VQL that acts rather than looks — kill a process (tree),
/// quarantine and restore a file, isolate the host and lift it. Every declaration needs the
/// REMEDIATION permission, and every action is written to the query log and the response audit
/// journal before it is taken.
public enum ResponseLibrary {
    public static var plugins: [PluginDeclaration] { [Quarantine.list, Isolation.status] }
    public static var functions: [FunctionDeclaration] {
        [ProcessKill.pskill, Quarantine.quarantine, Quarantine.restore, Isolation.isolate, Isolation.unisolate]
    }
}

/// Where response actions keep their state (the quarantine vault, the isolation record, the
/// audit journal) and which server addresses isolation must keep reachable. The agent sets the
/// process-wide defaults from its state folder and configuration; a session may override them
/// through the service keys (tests do, to work in a folder of their own).
public enum ResponseSettings {
    /// Overrides the state folder for one session.
    public static let stateRootKey = ServiceKey<String>("response.state_root")
    /// Overrides the server addresses (URLs or host[:port]) isolation keeps reachable.
    public static let serversKey = ServiceKey<[String]>("response.servers")

    private static let defaults = Mutex<(root: String?, servers: [String])>((nil, []))

    /// Sets the process-wide state folder and server URLs (the agent calls this at start).
    public static func configure(stateRoot: String, servers: [String]) {
        defaults.withLock { $0 = (stateRoot, servers) }
    }

    /// The state folder for `context`: the session override, the configured one, or a default
    /// (/var/lib/quarry/response for root, ~/.quarry/response otherwise).
    public static func stateRoot(_ context: QueryContext) -> String {
        if let root = context.service(stateRootKey) { return root }
        if let root = defaults.withLock({ $0.root }) { return root }
        return getuid() == 0 ? "/var/lib/quarry/response" : NSHomeDirectory() + "/.quarry/response"
    }

    /// The server addresses isolation keeps reachable when the call names none.
    public static func servers(_ context: QueryContext) -> [String] {
        context.service(serversKey) ?? defaults.withLock { $0.servers }
    }

    /// Creates `path` (and its parents) as private folders (0700), tightening one that exists.
    static func privateFolder(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard chmod(path, 0o700) == 0 else { throw ResponseError("cannot make \(path) private: \(String(cString: strerror(errno)))") }
    }
}

/// A response action that could not be done; the message says what and why.
public struct ResponseError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The record of every response action: one line in the query log (so the collection's log and
/// the server's audit carry it) and one JSON line in `audit.jsonl` in the state folder (0600),
/// written before the action is taken, with its outcome after.
enum ResponseAudit {
    private static let lock = Mutex<Void>(())

    static func record(_ ctx: CallContext, action: String, _ details: [String: String], level: LogLevel = .info) {
        let text = details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        ctx.log(level, "response \(action): \(text)")
        var entry = details
        entry["action"] = action
        entry["time"] = ISO8601DateFormatter().string(from: Date())
        guard let json = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) else { return }
        let root = ResponseSettings.stateRoot(ctx.context)
        lock.withLock { _ in
            do {
                try ResponseSettings.privateFolder(root)
                let path = root + "/audit.jsonl"
                var fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 { fd = try PrivateFile.create(path) }
                defer { close(fd) }
                try PrivateFile.writeAll(fd, json + Data("\n".utf8), path: path)
            } catch {
                ctx.context.logOnce(.warning, "response: cannot write the audit journal: \(error)")
            }
        }
    }

    /// Checks the REMEDIATION permission (logged when missing).
    static func allowed(_ ctx: CallContext) -> Bool { ctx.context.require(.remediation, for: ctx.name) }
}
