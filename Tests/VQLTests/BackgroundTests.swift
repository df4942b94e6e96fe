import Foundation
import Testing
import VQL

/// background(): the query runs beside the caller and stops when the session ends.
@Suite struct BackgroundTests {
    @Test func runsBesideTheCallerAndStopsWithTheSession() throws {
        let logger = MemoryLogger()
        let session = Session(registry: CoreLibrary.registry(), logger: logger)
        let results = try session.run("""
            LET _ <= background(query={ SELECT log(message='tick %v', args=_value) FROM range(end=1000000) WHERE sleep(ms=20) })
            SELECT sleep(ms=400) AS Slept FROM scope()
            """)
        #expect(results.last??.first?.member("Slept").isTruthy == true)
        func ticks() -> Int { logger.messages.filter { $0.contains("tick ") }.count }
        #expect(ticks() >= 3, "the background query ran while the caller slept: \(logger.messages.prefix(5))")
        session.close()
        Thread.sleep(forTimeInterval: 0.2)
        let after = ticks()
        Thread.sleep(forTimeInterval: 0.4)
        #expect(ticks() <= after + 1, "stopped with the session (\(after) → \(ticks()))")
        #expect(try Session(registry: CoreLibrary.registry()).run("SELECT background(query=1) AS B FROM scope()").last??.first?.member("B").isTruthy == false)
    }
}
