import Foundation
import Synchronization
import Testing
@testable import VQL

/// A plugin that counts how many rows it produced, to prove that LIMIT stops producers.
final class ProducedCounter: Sendable {
    let count = Mutex<Int>(0)
    let closed = Mutex<Bool>(false)

    func registry() -> Registry {
        let registry = CoreLibrary.registry()
        registry.add(plugins: [
            PluginDeclaration(name: "counting", summary: "Counts the rows it produces.") { [self] ctx in
                var n: Int64 = 0
                return GeneratorCursor(onClose: { self.closed.withLock { $0 = true } }) {
                    try ctx.checkCancelled()
                    n += 1
                    self.count.withLock { $0 += 1 }
                    return .dict(Dict([("N", .int(n))]))
                }
            }
        ])
        return registry
    }
}

@Suite struct SemanticsTests {
    @Test func limitStopsTheProducer() throws {
        let counter = ProducedCounter()
        let rows = try TestSupport.rows("SELECT N FROM counting() WHERE N > 2 LIMIT 2", registry: counter.registry())
        #expect(rows == [#"{"N":3}"#, #"{"N":4}"#])
        #expect(counter.count.withLock { $0 } == 4)
        #expect(counter.closed.withLock { $0 })
    }

    @Test func limitReachesThroughForeachAndStoredQueries() throws {
        let counter = ProducedCounter()
        let rows = try TestSupport.rows(
            "LET Q = SELECT N FROM counting() SELECT * FROM foreach(row=Q, query={ SELECT N * 2 AS D FROM scope() }) LIMIT 3",
            registry: counter.registry())
        #expect(rows.count == 3)
        #expect(counter.count.withLock { $0 } == 3)
    }

    @Test func cancellationStopsAnEndlessQuery() throws {
        let counter = ProducedCounter()
        let flag = CancellationFlag()
        let session = Session(registry: counter.registry(), cancellation: flag)
        guard case .rows(let cursor, _) = try session.prepare(try Parser.parse("SELECT N FROM counting()")[0]) else {
            Issue.record("expected rows")
            return
        }
        _ = try cursor.next()
        flag.cancel()
        #expect(throws: QueryCancelled.self) { _ = try cursor.next() }
    }

    @Test func missingNamesAreNullAndLogged() throws {
        let (rows, log) = try TestSupport.run("SELECT nothing, nothing.deeper, nothing[3] FROM scope()")
        #expect(rows[0] == [#"{"nothing":null,"nothing.deeper":null,"nothing[3]":null}"#])
        #expect(log.contains { $0.contains("Symbol nothing not found") })
    }

    @Test func truthiness() throws {
        let rows = try TestSupport.rows("""
            SELECT if(condition=NULL, then=1, else=0) AS Null, if(condition=0, then=1, else=0) AS Zero,
                   if(condition='', then=1, else=0) AS Empty, if(condition=[], then=1, else=0) AS List,
                   if(condition=dict(), then=1, else=0) AS Dict,
                   if(condition={ SELECT * FROM range(end=0) }, then=1, else=0) AS NoRows,
                   if(condition={ SELECT * FROM range(end=1) }, then=1, else=0) AS Rows,
                   if(condition='x', then=1, else=0) AS Text
            FROM scope()
            """)
        #expect(rows == [#"{"Null":0,"Zero":0,"Empty":0,"List":0,"Dict":0,"NoRows":0,"Rows":1,"Text":1}"#])
    }

    @Test func operators() throws {
        let rows = try TestSupport.rows("""
            SELECT 'Hello' =~ '^h' AS CaseInsensitive, NULL =~ '.' AS DotMatchesAll, 'b' IN ('a', 'b') AS InList,
                   'ell' IN 'Hello' AS Substring, 'k' IN dict(k=1) AS Key, 7 / 2 AS Div, 8 / 2 AS ExactDiv,
                   1 / 0 AS DivZero, 7 % 3 AS Mod, 'Hello'[1] AS Byte, [1, 2, 3][-1] AS Last,
                   'Hello'[1:3] AS Slice, timestamp(epoch=100) > 50 AS TimeVsNumber,
                   timestamp(epoch=100) = '1970' AS TimeVsString, 2 > 'a' AS Mixed
            FROM scope()
            """)
        #expect(rows == [
            #"{"CaseInsensitive":true,"DotMatchesAll":true,"InList":true,"Substring":true,"Key":true,"Div":3.5,"ExactDiv":4,"DivZero":null,"Mod":1,"Byte":101,"Last":3,"Slice":"el","TimeVsNumber":true,"TimeVsString":false,"Mixed":false}"#
        ])
    }

    @Test func lazyLetIsReevaluatedAndMaterializedIsNot() throws {
        let rows = try TestSupport.rows("""
            LET Lazy = count()
            LET Now <= count()
            SELECT Lazy AS A, Lazy AS B, Now AS C, Now AS D FROM scope()
            """)
        #expect(rows == [#"{"A":1,"B":2,"C":1,"D":1}"#])
    }

    @Test func selfReferenceIsNullNotAHang() throws {
        let (rows, log) = try TestSupport.run("LET X = 1 + X LET Q(n) = SELECT * FROM Q(n=n) SELECT X, Q(n=1) AS Q FROM scope()")
        #expect(rows.last == [#"{"X":null,"Q":[]}"#])
        #expect(log.contains { $0.contains("recursive") })
    }

    @Test func ifIsLazy() throws {
        // The branch not taken must not run: log() would write to the log if it did.
        let (rows, log) = try TestSupport.run("SELECT if(condition=TRUE, then='yes', else=log(message='evaluated')) AS R FROM scope()")
        #expect(rows[0] == [#"{"R":"yes"}"#])
        #expect(!log.contains { $0.contains("evaluated") })
    }

    @Test func whereRunsBeforeUnreadColumns() throws {
        // Columns that WHERE does not read are evaluated only for rows that pass.
        let (rows, log) = try TestSupport.run(
            "SELECT _value AS V, log(message='row %v', args=_value) AS Logged FROM range(end=5) WHERE V > 2")
        #expect(rows[0].count == 2)
        #expect(log.filter { $0.contains("row ") } == ["INFO: row 3", "INFO: row 4"])
    }

    @Test func groupByKeepsFirstSeenOrderAndLastRow() throws {
        let rows = try TestSupport.rows("""
            SELECT _value % 3 AS K, _value AS Last, count() AS N, enumerate(items=_value) AS All
            FROM range(start=1, end=8) GROUP BY K
            """)
        #expect(rows == [
            #"{"K":1,"Last":7,"N":3,"All":[1,4,7]}"#, #"{"K":2,"Last":5,"N":2,"All":[2,5]}"#, #"{"K":0,"Last":6,"N":2,"All":[3,6]}"#,
        ])
    }

    @Test func orderByAndDesc() throws {
        let rows = try TestSupport.rows("SELECT _value AS X FROM foreach(row=[3, 1, 2]) ORDER BY X DESC")
        #expect(rows == [#"{"X":3}"#, #"{"X":2}"#, #"{"X":1}"#])
    }

    @Test func formatVerbs() throws {
        let rows = try TestSupport.rows("""
            SELECT format(format='%v|%d|%s|%x|%02x|%q|%5.2f|%-4s|%t|%T|%%', args=[1, 2, 'three', 255, 'AB', 'q', 3.14159, 'ab', TRUE, 1.5]) AS F
            FROM scope()
            """)
        #expect(rows == [#"{"F":"1|2|three|ff|4142|\"q\"| 3.14|ab  |true|float64|%"}"#])
    }

    @Test func stringFunctions() throws {
        let rows = try TestSupport.rows("""
            SELECT split(string='a, b,c', sep=',\\s*') AS Split, join(array=['x', 'y'], sep='+') AS Join,
                   strip(string='  pad ') AS Strip, upcase(string='ab') AS Up,
                   regex_replace(source='key=value', re='(?P<k>\\w+)=(\\w+)', replace='$2=${k}') AS Swap,
                   base64decode(string=base64encode(string='hi')) AS RoundTrip, encode(string='hi', type='hex') AS Hex
            FROM scope()
            """)
        #expect(rows == [#"{"Split":["a","b","c"],"Join":"x+y","Strip":"pad","Up":"AB","Swap":"value=key","RoundTrip":"hi","Hex":"6869"}"#])
    }

    @Test func lambdasAndGet() throws {
        let rows = try TestSupport.rows("""
            SELECT filter(list=[1, 5, 10], condition='x => x > 3') AS Big,
                   get(item=dict(a=[dict(b=7)]), member='a.0.b') AS Deep, get(item=dict(), member='x', default=9) AS Default
            FROM scope()
            """)
        #expect(rows == [#"{"Big":[5,10],"Deep":7,"Default":9}"#])
    }

    @Test func parallelForeachProducesEveryRow() throws {
        let rows = try TestSupport.rows("SELECT * FROM foreach(row={ SELECT _value AS V FROM range(end=200) }, query={ SELECT V * 2 AS D FROM scope() }, workers=4)")
        #expect(rows.count == 200)
        let values = Set(rows)
        #expect(values.contains(#"{"D":398}"#))
    }

    @Test func unpackArguments() throws {
        let rows = try TestSupport.rows("LET args <= dict(format='%v-%v', args=[1, 2]) SELECT format(**args) AS F FROM scope()")
        #expect(rows == [#"{"F":"1-2"}"#])
    }

    @Test func binderSuggestsClosestNames() throws {
        let registry = CoreLibrary.registry()
        let problems = Binder.check(try Parser.parse("SELECT formt(format='x') FROM rang(end=2)"), registry: registry)
        #expect(problems.count == 2)
        #expect(problems.contains { $0.kind == .unknownPlugin && $0.suggestion == "range" })
        #expect(problems.contains { $0.kind == .unknownFunction && $0.suggestion == "format" })
        let defined = Binder.check(try Parser.parse("LET F(x) = x + 1 SELECT F(x=1) FROM scope()"), registry: registry)
        #expect(defined.isEmpty)
    }

    /// Inside a subquery, `FROM Name` may read a column of the enclosing row (only the run time
    /// knows the columns), so it is not an unknown plugin; at the top level, and with arguments, it is.
    @Test func binderLeavesColumnSourcesOfSubqueriesToRunTime() throws {
        let registry = CoreLibrary.registry()
        let nested = Binder.check(try Parser.parse("SELECT { SELECT A FROM Stack } AS C FROM scope()"), registry: registry)
        #expect(nested.isEmpty)
        let top = Binder.check(try Parser.parse("SELECT * FROM Stack"), registry: registry)
        #expect(top.map(\.kind) == [.unknownPlugin])
        let called = Binder.check(try Parser.parse("SELECT { SELECT * FROM Stak(x=1) } FROM scope()"), registry: registry)
        #expect(called.map(\.kind) == [.unknownPlugin])
        let rows = try TestSupport.rows("LET R = SELECT [dict(A=1), dict(A=2)] AS Stack FROM scope() SELECT { SELECT A FROM Stack } AS C FROM R")
        #expect(rows == [#"{"C":[1,2]}"#])
    }
}

@Suite struct ThrottleTests {
    /// A busy loop that paces itself stays near its CPU budget (30% of a core here).
    /// This thread's CPU time: other tests run in parallel in this process.
    static func threadCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Spins for `seconds`, pacing with `throttle`; returns the share of a core this thread used.
    static func spin(_ throttle: CPUThrottle, seconds: Double) -> Double {
        let startWall = Date()
        let startCPU = threadCPU()
        var sink = 0
        while Date().timeIntervalSince(startWall) < seconds {
            for i in 0..<20_000 { sink &+= i &* i }
            throttle.pace()
        }
        withExtendedLifetime(sink) {}
        return (threadCPU() - startCPU) / Date().timeIntervalSince(startWall)
    }

    @Test func cpuThrottleKeepsTheBudget() {
        let used = Self.spin(CPUThrottle(percent: 30, cpuClock: ThrottleTests.threadCPU), seconds: 1.5)
        #expect(used < 0.5, "used \(used * 100)% of a core")
        #expect(used > 0.1)
    }

    /// The fleet agent's watchdog lowers a running collection's budget; it is never raised again.
    /// A fake CPU clock says the work was busy all along, so the pause pace() takes is known whatever
    /// the machine's load: none at 100% of a core, four times the busy time at 20%.
    @Test func cpuThrottleCanBeLoweredWhileItRuns() {
        let cpu = Mutex(0.0)
        let throttle = CPUThrottle(percent: 100, cpuClock: { cpu.withLock { $0 } })
        func burst() -> Double {
            let start = Date()
            Thread.sleep(forTimeInterval: 0.1)
            cpu.withLock { $0 += Date().timeIntervalSince(start) }
            let before = Date()
            for _ in 0..<16 { throttle.pace() }
            return Date().timeIntervalSince(before)
        }
        #expect(burst() < 0.2)
        throttle.lower(toPercent: 20)
        throttle.lower(toPercent: 90)
        #expect(throttle.percent == 20)
        let paced = burst()
        #expect(paced >= 0.35 && paced < 3, "paused \(paced) s")
    }
}
