import CResponse
import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `pskill(pid=, tree=)`: kills a process, or a process and all its descendants. Each target is
/// held by a pidfd from before its facts are read until it is killed, so a pid recycled in between
/// can never receive the signal; a tree is frozen (SIGSTOP) top-down first so it cannot fork away.
/// pid 1, kernel threads, this agent and its ancestors are refused. What is killed (pid, exe,
/// command line, SHA-256 of the exe) is audit-logged before the signal is sent.
public enum ProcessKill {
    static let schema = Schema(["Pid", "Ppid", "Name", "Exe", "CommandLine", "SHA256", "Killed", "Error"], caseInsensitiveFallback: true)
    /// At most this many processes in one tree kill.
    static let maxTree = 4096

    public static let pskill = FunctionDeclaration(
        name: "pskill",
        summary: "Kills a process (or with tree=TRUE its whole tree); returns one row per process killed, NULL when refused.",
        arguments: [
            ArgumentSpec("pid", .int, required: true, "The process to kill."),
            ArgumentSpec("tree", .bool, "Also kill every descendant (frozen first so none escapes)."),
            ArgumentSpec("reason", .string, "Why: written to the audit journal."),
        ],
        returns: .list,
        examples: ["SELECT pskill(pid=1) AS Refused FROM scope()"],
        permissions: [.remediation]
    ) { ctx in
        guard ResponseAudit.allowed(ctx) else { return .null }
        guard let pid = ctx.int("pid"), let target = Int32(exactly: pid) else {
            ctx.log(.error, "pskill: pid must be a process id")
            return .null
        }
        do {
            let killed = try kill(target, tree: ctx.bool("tree") ?? false, ctx: ctx)
            return .list(killed)
        } catch {
            ResponseAudit.record(ctx, action: "pskill", ["pid": String(pid), "refused": "\(error)"], level: .error)
            return .null
        }
    }

    /// Why a process may not be killed, or nil when it may.
    static func refusal(_ facts: ProcessFacts, protected: Set<Int32>) -> String? {
        if facts.pid <= 1 { return "pid \(facts.pid) is init" }
        if facts.isKernelThread { return "pid \(facts.pid) (\(facts.name)) is a kernel thread" }
        if facts.pid == getpid() { return "pid \(facts.pid) is the agent itself" }
        if protected.contains(facts.pid) { return "pid \(facts.pid) (\(facts.name)) is an ancestor of the agent" }
        return nil
    }

    /// A process held by its pidfd.
    struct Held {
        let fd: Int32
        let facts: ProcessFacts
    }

    static func hold(_ pid: Int32, protected: Set<Int32>) throws -> Held {
        guard pid > 1 else { throw ResponseError("pid \(pid) is init or not a process") }
        let fd = quarry_pidfd_open(pid)
        guard fd >= 0 else { throw ResponseError("no process \(pid): \(String(cString: strerror(errno)))") }
        // Facts read after the pidfd exists, then the pidfd confirms the same process still runs.
        guard let facts = ProcessFacts.read(pid), quarry_pidfd_send_signal(fd, 0) == 0 else {
            close(fd)
            throw ResponseError("process \(pid) exited")
        }
        if let reason = refusal(facts, protected: protected) {
            close(fd)
            throw ResponseError("refused: \(reason)")
        }
        return Held(fd: fd, facts: facts)
    }

    static func kill(_ pid: Int32, tree: Bool, ctx: CallContext) throws -> [Value] {
        let protected = ProcessFacts.selfAndAncestors()
        var held = [try hold(pid, protected: protected)]
        defer { for h in held { close(h.fd) } }
        if tree {
            try freezeTree(&held, protected: protected)
        }
        var rows: [Value] = []
        for h in held {
            let facts = h.facts, exe = facts.exe, commandLine = facts.commandLine, digest = facts.exeSHA256
            ResponseAudit.record(ctx, action: "pskill", [
                "pid": String(facts.pid), "ppid": String(facts.ppid), "exe": exe, "cmdline": commandLine,
                "sha256": digest, "reason": ctx.string("reason") ?? "", "tree": String(tree),
            ])
            var error = ""
            if quarry_pidfd_send_signal(h.fd, SIGKILL) != 0 {
                error = String(cString: strerror(errno))
            } else if !waitExit(h.fd, milliseconds: 2000) {
                error = "still running 2 s after SIGKILL"
            }
            if !error.isEmpty { ResponseAudit.record(ctx, action: "pskill", ["pid": String(facts.pid), "failed": error], level: .error) }
            rows.append(.dict(Dict(schema: schema, values: [
                .int(Int64(facts.pid)), .int(Int64(facts.ppid)), .string(facts.name), .string(exe), .string(commandLine),
                .string(digest), .bool(error.isEmpty), .string(error),
            ])))
        }
        return rows
    }

    /// Stops the held root, then every descendant level by level (each held by a pidfd and
    /// stopped before its own children are looked for), until a pass finds no new process.
    static func freezeTree(_ held: inout [Held], protected: Set<Int32>) throws {
        var frozen = Set<Int32>()
        var progress = true
        while progress {
            progress = false
            for h in held where !frozen.contains(h.facts.pid) {
                _ = quarry_pidfd_send_signal(h.fd, SIGSTOP)
                frozen.insert(h.facts.pid)
            }
            let members = Set(held.map(\.facts.pid))
            for (child, parent) in ProcessFacts.parents() where members.contains(parent) && !members.contains(child) {
                guard held.count < maxTree else { throw ResponseError("more than \(maxTree) processes in the tree") }
                // A child that exited meanwhile is skipped; a protected one refuses the whole kill.
                do {
                    held.append(try hold(child, protected: protected))
                    progress = true
                } catch let error as ResponseError where error.description.hasPrefix("refused") {
                    for h in held { _ = quarry_pidfd_send_signal(h.fd, SIGCONT) }
                    throw error
                } catch {}
            }
        }
    }

    /// Waits until the process behind `fd` has exited (a pidfd polls readable then).
    static func waitExit(_ fd: Int32, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) == 1
    }
}
