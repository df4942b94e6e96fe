import Foundation
import Testing
@testable import VQL

/// batch, column_filter, combine, dedup, delay, sample, diff, sequence, for, help, panic, parse_json_array.
@Suite struct StreamPluginTests {
    @Test func batchBySizeByLambdaAndByTimeout() throws {
        #expect(try TestSupport.rows("SELECT * FROM batch(query={ SELECT _value FROM range(end=5) }, batch_size=2)") == [
            #"{"rows":[{"_value":0},{"_value":1}]}"#, #"{"rows":[{"_value":2},{"_value":3}]}"#, #"{"rows":[{"_value":4}]}"#,
        ])
        let byLambda = try TestSupport.rows("""
            SELECT rows.Item AS Items FROM batch(query={ SELECT format(format='Step %v', args=_value) AS Item FROM range(end=10) },
                                               batch_func="x=>x.Item =~ 'Step [25]'")
            """)
        #expect(byLambda == [
            #"{"Items":["Step 0","Step 1","Step 2"]}"#, #"{"Items":["Step 3","Step 4","Step 5"]}"#,
            #"{"Items":["Step 6","Step 7","Step 8","Step 9"]}"#,
        ])
        // The 900 ms row arrives after the open group's 1 s timeout, so the group closes without it.
        let timed = try TestSupport.rows("""
            LET Q = SELECT if(condition=_value <= 5, then=sleep(ms=100), else=sleep(ms=900)) AS W,
                           if(condition=_value <= 5, then='fast', else='slow') AS T FROM range(start=1, end=7)
            SELECT rows.T AS R FROM batch(query=Q, batch_size=3, timeout=1)
            """)
        #expect(timed == [#"{"R":["fast","fast","fast"]}"#, #"{"R":["fast","fast"]}"#, #"{"R":["slow"]}"#])
    }

    @Test func columnFilter() throws {
        let rows = try TestSupport.rows("""
            SELECT * FROM column_filter(query={ SELECT * FROM parse_json_array(data='[{"Column1": 1, "Column2": 2}, {"Column2": 1, "Column3": 2}]') },
                                        include="Column[1-2]", exclude="Column[2]")
            """)
        #expect(rows == [#"{"Column1":1}"#, "{}"])
        // An invalid regex is logged once and filters nothing out.
        let (out, log) = try TestSupport.run("SELECT * FROM column_filter(query={ SELECT 1 AS A FROM scope() }, exclude='(')")
        #expect(out.last == [#"{"A":1}"#])
        #expect(log.contains { $0.hasPrefix("ERROR") && $0.contains("regex") })
    }

    @Test func combineDedupSampleDelay() throws {
        #expect(try TestSupport.rows("SELECT * FROM combine(a={ SELECT 1 AS X FROM scope() }, b={ SELECT 2 AS X FROM scope() }) ORDER BY X")
            == [#"{"X":1}"#, #"{"X":2}"#])
        #expect(try TestSupport.rows("SELECT * FROM dedup(query={ SELECT _value % 3 AS K, _value AS V FROM range(end=7) }, key='K')")
            == [#"{"K":0,"V":0}"#, #"{"K":1,"V":1}"#, #"{"K":2,"V":2}"#])
        #expect(try TestSupport.rows("SELECT * FROM sample(query={ SELECT _value FROM range(end=7) }, n=3)")
            == [#"{"_value":0}"#, #"{"_value":3}"#, #"{"_value":6}"#])
        let start = Date()
        #expect(try TestSupport.rows(#"SELECT * FROM delay(query={ SELECT "Hello" FROM scope() }, delay=1)"#) == [#"{"\"Hello\"":"Hello"}"#])
        #expect(Date().timeIntervalSince(start) >= 0.9)
    }

    @Test func diffReportsAddedRows() throws {
        let rows = try TestSupport.rows("SELECT Diff, K FROM diff(query={ SELECT _value AS K FROM range(end=2) }, key='K', period=1) LIMIT 2")
        #expect(rows == [#"{"Diff":"added","K":0}"#, #"{"Diff":"added","K":1}"#])
    }

    @Test func diffSeesRemovedRows() throws {
        // Row 1 marks itself in an lru() on the first run, and is filtered out from the second on.
        let rows = try TestSupport.rows("""
            LET C <= lru(size=10)
            LET Q = SELECT _value AS K FROM range(end=2)
                    WHERE NOT get(item=C, field=str(str=_value)) AND (_value = 0 OR set(item=C, field=str(str=_value), value=TRUE))
            SELECT Diff, K FROM diff(query=Q, key='K', period=1) LIMIT 3
            """)
        #expect(rows == [#"{"Diff":"added","K":0}"#, #"{"Diff":"added","K":1}"#, #"{"Diff":"removed","K":1}"#])
    }

    @Test func sequenceRunsTheQueryPerRow() throws {
        let rows = try TestSupport.rows("""
            SELECT * FROM sequence(a={ SELECT 1 AS X FROM scope() },
                                   query={ SELECT count() AS Seen FROM SEQUENCE GROUP BY 1 })
            """)
        #expect(rows == [#"{"Seen":1}"#])
    }

    @Test func forHelpPanicAndJSONArrays() throws {
        #expect(try TestSupport.rows("SELECT * FROM for(var='X', foreach=[1, 2], query={ SELECT X * 10 AS Y FROM scope() })")
            == [#"{"Y":10}"#, #"{"Y":20}"#])
        #expect(try TestSupport.rows("SELECT Name, Type FROM help() WHERE Name = 'batch'") == [#"{"Name":"batch","Type":"Plugin"}"#])
        let (rows, log) = try TestSupport.run("SELECT * FROM panic()")
        #expect(rows.last == [])
        #expect(log.contains { $0.hasPrefix("ERROR") })
        #expect(try TestSupport.rows(#"SELECT * FROM parse_json_array(data='[{"foo": 1}, 2, null]')"#) == [#"{"foo":1}"#, #"{"_value":2}"#])
        let (bad, badLog) = try TestSupport.run("SELECT * FROM parse_json_array(data='[1, ')")
        #expect(bad.last == [])
        #expect(badLog.contains { $0.hasPrefix("WARN") })
    }

    @Test func eventPluginsStopWhenCancelled() throws {
        let flag = CancellationFlag()
        let session = Session(registry: CoreLibrary.registry(), cancellation: flag)
        guard case .rows(let cursor, _) = try session.prepare(try Parser.parse("SELECT * FROM clock(period=3600)")[0]) else {
            Issue.record("expected rows")
            return
        }
        _ = try cursor.next()
        flag.cancel()
        let start = Date()
        #expect(throws: QueryCancelled.self) { _ = try cursor.next() }
        #expect(Date().timeIntervalSince(start) < 2)
    }
}
