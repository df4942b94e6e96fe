import Foundation
import Testing
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// profile(), profile_goroutines() and profile_memory() describe this very test process.
@Suite struct ProfilingTests {
    @Test func metricsDescribeThisProcess() throws {
        let rows = try Host.rows("SELECT Line.Name AS Name, Line.Value AS Value FROM profile(metrics=TRUE)")
        let byName = Dictionary(rows.compactMap { row in Host.string(row, "Name").map { ($0, Host.field(row, "Value") ?? .null) } }, uniquingKeysWith: { a, _ in a })
        #expect((byName["VmRSSBytes"]?.intValue ?? 0) > 1 << 20)
        #expect((byName["Threads"]?.intValue ?? 0) >= 1)
        #expect((byName["OpenFiles"]?.intValue ?? 0) >= 3)
    }

    @Test func logsAndQueriesAreRemembered() throws {
        let marker = "profile-marker-\(UUID().uuidString)"
        let (session, _) = Host.session()
        _ = try session.run("SELECT log(message='\(marker)') FROM scope()")
        let logs = try session.run("SELECT Line.Message AS M FROM profile(logs=TRUE) WHERE M = '\(marker)'").last.flatMap { $0 } ?? []
        #expect(logs.count == 1)
        let queries = try session.run("SELECT Line.Query AS Q, Line.Duration AS D FROM profile(queries=TRUE)").last.flatMap { $0 } ?? []
        // The log() query finished (it has a duration); the profile query itself is still running.
        let finished = queries.first { Host.string($0, "Q")?.contains(marker) == true }
        #expect((finished.flatMap { Host.field($0, "D") }?.intValue ?? -1) >= 0)
        let running = queries.last { Host.string($0, "Q")?.contains("profile(queries=TRUE)") == true }
        #expect(running.flatMap { Host.field($0, "D") }?.isNull == true)
    }

    @Test func typeRegexSelectsSeveral() throws {
        let rows = try Host.rows("SELECT Type FROM profile(type='metrics|goroutine') GROUP BY Type")
        #expect(Set(rows.compactMap { Host.string($0, "Type") }) == ["metrics", "goroutine"])
    }

    @Test func threadsMatchProcTask() throws {
        let rows = try Host.rows("SELECT * FROM profile_goroutines()")
        let ids = Set(rows.compactMap { Host.int($0, "Id") })
        #expect(ids.contains(Int64(getpid())))
        #expect(rows.allSatisfy { !(Host.string($0, "State") ?? "").isEmpty })
        if geteuid() == 0 {
            // root reads kernel stacks: at least one thread is waiting somewhere in the kernel.
            #expect(rows.contains { (Host.field($0, "CallStack")?.listElements?.count ?? 0) > 0 })
        }
    }

    @Test func memoryByMappingIsSortedAndNonZero() throws {
        let rows = try Host.rows("SELECT InUseBytes, CallStack[0].Name AS Name FROM profile_memory()")
        let sizes = rows.compactMap { Host.int($0, "InUseBytes") }
        #expect(!sizes.isEmpty && sizes == sizes.sorted(by: >))
        #expect(sizes.reduce(0, +) > 1 << 20)
        #expect(rows.contains { Host.string($0, "Name")?.contains("libswiftCore") == true || Host.string($0, "Name") == "[heap]" })
    }

    @Test func goOnlyProfilesAreReportedNotFaked() throws {
        let (session, logger) = Host.session()
        let rows = try session.run("SELECT * FROM profile(block=TRUE, mutex=TRUE)").last.flatMap { $0 } ?? []
        #expect(rows.isEmpty)
        #expect(logger.messages.filter { $0.contains("Go runtime profile") }.count == 2)
    }
}
