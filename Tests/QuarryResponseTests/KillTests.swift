import Foundation
import Testing
import VQL
@testable import QuarryResponse
#if canImport(Glibc)
import Glibc
#endif

/// pskill against real processes: a sleep, a marked tree, and the processes it must refuse.
@Suite(.serialized) struct KillTests {
    /// Whether `pid` no longer runs (gone, or a zombie waiting for its parent).
    static func gone(_ pid: Int32) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return true }
        return text[text.index(close, offsetBy: 2)] == "Z"
    }

    @Test func killsASleepAndReportsWhatItKilled() throws {
        let root = try Response.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sleep = Process()
        sleep.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleep.arguments = ["301"]
        try sleep.run()
        let pid = sleep.processIdentifier
        // A vfork-style spawn returns once the child has its new memory, a moment before the
        // kernel has written the arguments into it: until then /proc/PID/cmdline reads empty.
        let deadline = Date().addingTimeInterval(5)
        while ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()).isEmpty, Date() < deadline { usleep(1000) }
        let (session, logger) = Response.session(stateRoot: root)
        let rows = try Response.rows(session, "SELECT pskill(pid=\(pid), reason='test') AS K FROM scope()")
        guard case .list(let killed)? = rows.first.flatMap({ Response.field($0, "K") }) else {
            Issue.record("no list: \(rows) \(logger.messages)")
            return
        }
        #expect(killed.count == 1)
        let row = try #require(killed.first)
        #expect(Response.field(row, "Pid")?.intValue == Int64(pid))
        #expect(Response.bool(row, "Killed") == true)
        let exe = Response.field(row, "Exe")?.stringValue ?? ""
        #expect(exe.hasSuffix("/sleep"))
        #expect(Response.field(row, "CommandLine")?.stringValue == "/bin/sleep 301")
        let (_, sum) = try Response.run(["/usr/bin/sha256sum", exe])
        #expect(Response.field(row, "SHA256")?.stringValue == String(sum.prefix(64)))
        sleep.waitUntilExit()
        #expect(sleep.terminationReason == .uncaughtSignal && sleep.terminationStatus == SIGKILL)
        #expect(logger.messages.contains { $0.hasPrefix("INFO: response pskill:") && $0.contains("pid=\(pid)") && $0.contains("sha256=") })
        let journal = try String(contentsOfFile: root + "/audit.jsonl", encoding: .utf8)
        #expect(journal.contains("\"pid\":\"\(pid)\""))
        var info = stat()
        #expect(stat(root + "/audit.jsonl", &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    @Test func killsAMarkedTreeAndNothingElse() throws {
        let root = try Response.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let marker = "quarry-tree-\(UInt32.random(in: 0...UInt32.max))"
        let bystander = Process()
        bystander.executableURL = URL(fileURLWithPath: "/bin/sleep")
        bystander.arguments = ["302"]
        try bystander.run()
        defer { bystander.terminate() }
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "sh -c 'sleep 303 & sleep 304 & wait' & sleep 305 & wait", marker]
        try shell.run()
        // Wait for the tree (sh, sh, three sleeps) to be up.
        var members: [Int32] = []
        for _ in 0..<50 {
            members = Self.descendants(of: shell.processIdentifier)
            if members.count == 4 { break }
            usleep(100_000)
        }
        #expect(members.count == 4)
        let (session, _) = Response.session(stateRoot: root)
        let rows = try Response.rows(session, "SELECT pskill(pid=\(shell.processIdentifier), tree=TRUE) AS K FROM scope()")
        guard case .list(let killed)? = rows.first.flatMap({ Response.field($0, "K") }) else {
            Issue.record("no list: \(rows)")
            return
        }
        #expect(Set(killed.compactMap { Response.field($0, "Pid")?.intValue }) == Set(([shell.processIdentifier] + members).map(Int64.init)))
        #expect(killed.allSatisfy { Response.bool($0, "Killed") == true })
        shell.waitUntilExit()
        for _ in 0..<20 where !members.allSatisfy(Self.gone) { usleep(100_000) }
        #expect(members.allSatisfy(Self.gone))
        #expect(!Self.gone(bystander.processIdentifier))
    }

    static func descendants(of pid: Int32) -> [Int32] {
        let parents = ProcessFacts.parents()
        var found: [Int32] = [], frontier = [pid]
        while let next = frontier.popLast() {
            for (child, parent) in parents where parent == next {
                found.append(child)
                frontier.append(child)
            }
        }
        return found
    }

    @Test func refusesInitItselfItsAncestorsAndKernelThreads() throws {
        let root = try Response.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var targets: [(Int32, String)] = [(1, "init"), (getpid(), "agent itself"), (getppid(), "ancestor")]
        if let kthread = ProcessFacts.parents().keys.sorted().first(where: { ProcessFacts.read($0)?.isKernelThread == true && $0 > 1 }) {
            targets.append((kthread, "kernel thread"))
        }
        for (pid, why) in targets {
            let (session, logger) = Response.session(stateRoot: root)
            let value = try Response.first(session, "SELECT pskill(pid=\(pid)) AS K FROM scope()", "K")
            #expect(value?.isNull == true, "pid \(pid) was not refused")
            #expect(logger.messages.contains { $0.hasPrefix("ERROR") && $0.contains(why) }, "\(logger.messages)")
        }
        #expect(kill(getpid(), 0) == 0)
        #expect(kill(1, 0) == 0)
    }

    @Test func needsTheRemediationPermission() throws {
        let root = try Response.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sleep = Process()
        sleep.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleep.arguments = ["306"]
        try sleep.run()
        defer { sleep.terminate() }
        let (session, logger) = Response.session(stateRoot: root)
        session.context.permissions = Set(Permission.allCases).subtracting([.remediation])
        let value = try Response.first(session, "SELECT pskill(pid=\(sleep.processIdentifier)) AS K FROM scope()", "K")
        #expect(value?.isNull == true)
        #expect(logger.messages.contains { $0.contains("permission denied (needs REMEDIATION)") })
        #expect(!Self.gone(sleep.processIdentifier))
    }
}
