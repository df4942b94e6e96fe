import Foundation
import Testing
import VQL
@testable import QuarryHost
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SystemTests {
    @Test func infoReplacesTheCoreOne() throws {
        let rows = try Host.rows("SELECT * FROM info()")
        #expect(rows.count == 1)
        guard let row = rows.first else { return }
        for column in SystemInfo.infoColumns {
            #expect(Host.field(row, column.name) != nil, "missing column \(column.name)")
        }
        #expect(Host.string(row, "OS") == "linux")
        #expect(Host.string(row, "Architecture") == SystemInfo.architecture)
        #expect(Host.string(row, "Hostname")?.isEmpty == false)
        #expect(Host.field(row, "IsAdmin")?.isTruthy == (geteuid() == 0))
        let machineID = try Host.shell("cat /etc/machine-id 2>/dev/null").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Host.string(row, "HostID") == machineID)
    }

    @Test func sysinfoMountsEnviron() throws {
        let memory = try Host.rows("SELECT MemTotal, SwapTotal FROM sysinfo()")
        #expect((memory.first.flatMap { Host.int($0, "MemTotal") } ?? 0) > 1 << 20)
        let mounts = try Host.rows("SELECT * FROM mounts() WHERE Mountpoint = '/proc'")
        #expect(mounts.first.flatMap { Host.string($0, "Type") } == "proc")
        let env = try Host.rows("SELECT environ(var='PATH') AS P, environ(var='QUARRY_SURELY_UNSET') AS U FROM scope()")
        #expect(env.first.flatMap { Host.string($0, "P") } == ProcessInfo.processInfo.environment["PATH"])
        #expect(env.first.flatMap { Host.field($0, "U") }?.isNull == true)
        let plugin = try Host.rows("SELECT Value FROM environ(vars='PATH')")
        #expect(plugin.count == 1)
        let modules = try Host.rows("SELECT * FROM kernel_modules()")
        #expect(modules.isEmpty == !FileManager.default.fileExists(atPath: "/proc/modules") || !modules.isEmpty)
    }

    @Test func execveRunsAndCaptures() throws {
        let rows = try Host.rows("SELECT * FROM execve(argv=['sh', '-c', 'echo out; echo err >&2; exit 3'])")
        #expect(rows.count == 1)
        guard let row = rows.first else { return }
        #expect(Host.string(row, "Stdout") == "out\n")
        #expect(Host.string(row, "Stderr") == "err\n")
        #expect(Host.int(row, "ReturnCode") == 3)
        #expect(Host.field(row, "Complete")?.isTruthy == true)
        let records = try Host.rows("SELECT Stdout FROM execve(argv=['printf', 'a\\nb\\n'], sep='\\n') WHERE Stdout")
        #expect(records.compactMap { Host.string($0, "Stdout") } == ["a", "b"])
        // Many records stay linear; a record split across reads is joined.
        let many = try Host.rows("SELECT count() AS N, sum(item=int(int=Stdout)) AS S FROM execve(argv=['seq', '1', '50000'], sep='\\n') WHERE Stdout GROUP BY 1")
        #expect(many.first.flatMap { Host.int($0, "N") } == 50000)
        let sum: Int64? = many.first.flatMap { Host.int($0, "S") }
        #expect(sum == Int64(1_250_025_000))
        let chunks = try Host.rows("SELECT len(list=Stdout) AS L, Complete FROM execve(argv=['seq', '1', '1000'], length=1000)")
        let total: Int64 = chunks.compactMap { Host.int($0, "L") }.reduce(0, +)
        let expected = Int64(try Host.shell("seq 1 1000 | wc -c").trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(total == expected)
        #expect(chunks.count >= 4)
        #expect(chunks.last.flatMap { Host.field($0, "Complete") }?.isTruthy == true)
    }

    @Test func execveStopsEarlyAndNeverHangs() throws {
        let start = Date()
        // Endless output, taken in 1000-byte rows; LIMIT closes the cursor, which kills the child.
        let rows = try Host.rows("SELECT Stdout FROM execve(argv=['yes'], length=1000) LIMIT 2")
        #expect(rows.count == 2)
        // A program that reads stdin gets EOF instead of waiting forever.
        let cat = try Host.rows("SELECT ReturnCode FROM execve(argv=['cat'])")
        #expect(cat.first.flatMap { Host.int($0, "ReturnCode") } == 0)
        #expect(Date().timeIntervalSince(start) < 20)
    }

    @Test func execveNeedsPermission() throws {
        let (session, logger) = Host.session()
        session.context.permissions.remove(.execve)
        let rows = try session.run("SELECT * FROM execve(argv=['echo', 'hi'])").last.flatMap { $0 } ?? []
        #expect(rows.isEmpty)
        #expect(logger.messages.contains { $0.contains("permission denied") })
    }
}
