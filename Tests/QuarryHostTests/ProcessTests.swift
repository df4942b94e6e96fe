import Foundation
import Testing
import VQL
@testable import QuarryHost
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ProcessTests {
    /// Starts `executable` with one distinctive argument and waits until its exec has happened (the
    /// command line is in place). The caller kills it with `stop`.
    static func startSleeper(_ executable: String, marker: String) throws -> Process {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = [marker]
        child.standardInput = FileHandle.nullDevice
        try child.run()
        for _ in 0..<100 {
            if let cmdline = try? String(contentsOfFile: "/proc/\(child.processIdentifier)/cmdline", encoding: .utf8), cmdline.contains(marker) { break }
            usleep(20_000)
        }
        return child
    }

    static func stop(_ child: Process) {
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
    }

    @Test func findsASpawnedChildByPid() throws {
        let child = try Self.startSleeper("/bin/sleep", marker: "30.4242")
        let pid = child.processIdentifier
        defer { Self.stop(child) }
        let rows = try Host.rows("SELECT * FROM pslist(pid=\(pid))")
        #expect(rows.count == 1)
        guard let row = rows.first else { return }
        #expect(Host.int(row, "Pid") == Int64(pid))
        #expect(Host.int(row, "Ppid") == Int64(getpid()))
        #expect(Host.string(row, "CommandLine") == "/bin/sleep 30.4242")
        #expect(Host.string(row, "Name") == "sleep")
        #expect(Host.string(row, "Exe")?.hasSuffix("sleep") == true)
        #expect(Host.int(row, "Uid") == Int64(getuid()))
        for column in Processes.columns {
            #expect(Host.field(row, column.name) != nil, "missing column \(column.name)")
        }
        // CreateTime is a timestamp close to now.
        if case .timestamp(let t)? = Host.field(row, "CreateTime") {
            #expect(abs(t.seconds - Date().timeIntervalSince1970) < 120)
        } else {
            Issue.record("CreateTime should be a timestamp")
        }
        // The full listing finds it too, by its distinctive argument.
        let listed = try Host.rows("SELECT Pid FROM pslist() WHERE CommandLine =~ '30\\\\.4242'")
        #expect(listed.compactMap { Host.int($0, "Pid") }.contains(Int64(pid)))
    }

    @Test func deletedExecutableIsMarked() throws {
        let dir = Host.temporaryDirectory("deleted")
        defer { Host.cleanup(dir) }
        let copy = dir + "/sleepcopy"
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: copy)
        let child = try Self.startSleeper(copy, marker: "30.5151")
        let pid = child.processIdentifier
        defer { Self.stop(child) }
        unlink(copy)
        let rows = try Host.rows("SELECT Exe, Exe =~ '\\\\(deleted\\\\)$' AS Deleted FROM pslist(pid=\(pid))")
        #expect(rows.first.flatMap { Host.string($0, "Exe") } == copy + " (deleted)")
        #expect(rows.first.flatMap { Host.field($0, "Deleted") }?.isTruthy == true)
    }

    @Test func countIsCloseToPs() throws {
        let ps = try Host.shell("ps -e --no-headers | wc -l").trimmingCharacters(in: .whitespacesAndNewlines)
        let rows = try Host.rows("SELECT Pid FROM pslist()")
        guard let expected = Int(ps) else {
            Issue.record("ps gave \(ps)")
            return
        }
        #expect(abs(rows.count - expected) <= max(10, expected / 10))
    }

    @Test func memoryInfoIsCaseInsensitive() throws {
        let rows = try Host.rows("SELECT MemoryInfo.rss AS RSS, MemoryInfo.RSS AS Rss2, Times.User AS U FROM pslist(pid=getpid())")
        #expect((rows.first.flatMap { Host.int($0, "RSS") } ?? 0) > 0)
        #expect(rows.first.flatMap { Host.int($0, "RSS") } != nil)
        #expect(rows.first.flatMap { Host.field($0, "U") }?.doubleValue != nil)
    }

    @Test func missingProcessGivesNoRows() throws {
        #expect(try Host.rows("SELECT * FROM pslist(pid=999999999)").isEmpty)
    }

    @Test func procMapsOfThisProcess() throws {
        let rows = try Host.rows("SELECT * FROM proc_maps(pid=getpid())")
        #expect(rows.count > 5)
        #expect(rows.contains { Host.string($0, "Filename") == "[stack]" })
        #expect(rows.allSatisfy { (Host.int($0, "Size") ?? 0) > 0 })
    }
}
