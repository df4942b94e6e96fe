import Foundation
import Testing
@testable import VQL

/// query() (isolated scope, env, copy_env, inherit, exit), patch() (RFC 6902 and 7386) and alert().
@Suite struct QueryPatchAlertTests {
    @Test func queryTextRunsInAnIsolatedScope() throws {
        let rows = try TestSupport.rows("""
            LET Secret = 'outer'
            SELECT * FROM query(query='SELECT X * 2 AS Y, Secret FROM scope()', env=dict(X=21))
            """)
        #expect(rows == [#"{"Y":42,"Secret":null}"#])
    }

    @Test func queryCopiesAndInheritsVariablesOnRequest() throws {
        let copied = try TestSupport.rows("""
            LET Secret = 'outer'
            SELECT * FROM query(query='SELECT Secret FROM scope()', copy_env='Secret')
            """)
        #expect(copied == [#"{"Secret":"outer"}"#])
        let inherited = try TestSupport.rows("""
            LET Secret = 'outer'
            SELECT * FROM query(query='SELECT Secret FROM scope()', inherit=TRUE)
            """)
        #expect(inherited == [#"{"Secret":"outer"}"#])
    }

    @Test func queryRunsStatementsAndStoredQueries() throws {
        let text = try TestSupport.rows("SELECT * FROM query(query='LET A = 5 SELECT A + 1 AS B FROM scope()')")
        #expect(text == [#"{"B":6}"#])
        let stored = try TestSupport.rows("SELECT * FROM query(query={ SELECT _value FROM range(end=3) })")
        #expect(stored == [#"{"_value":0}"#, #"{"_value":1}"#, #"{"_value":2}"#])
    }

    @Test func queryStopsWhenExitSaysSo() throws {
        let rows = try TestSupport.rows("SELECT * FROM query(query={ SELECT _value FROM range(end=10) }, exit='x => x._value = 2')")
        #expect(rows.count == 3)
    }

    @Test func queryReportsBadText() throws {
        let (rows, log) = try TestSupport.run("SELECT * FROM query(query='SELECT FROM WHERE')")
        #expect(rows.last == [])
        #expect(log.contains { $0.hasPrefix("ERROR") && $0.contains("query()") })
    }

    @Test func mergePatchSetsRemovesAndMerges() throws {
        let rows = try TestSupport.rows("""
            SELECT patch(item=dict(A=1, B=2, C=dict(D=1, E=2)), merge=dict(B=NULL, C=dict(E=NULL, F=3), G=4)) AS P,
                   patch(item=dict(A=1), merge='{"A": [1, 2]}') AS Q
            FROM scope()
            """)
        #expect(rows == [#"{"P":{"A":1,"C":{"D":1,"F":3},"G":4},"Q":{"A":[1,2]}}"#])
    }

    @Test func jsonPatchOperations() throws {
        let rows = try TestSupport.rows("""
            SELECT patch(item=dict(L=[1, 2], M=dict(`a/b`=1)), patch=[
                dict(op='add', path='/L/0', value=0), dict(op='add', path='/L/-', value=3),
                dict(op='replace', path='/M/a~1b', value=9), dict(op='copy', from='/L/1', path='/C'),
                dict(op='move', from='/C', path='/D'), dict(op='remove', path='/L/3'),
                dict(op='test', path='/D', value=1)]) AS P
            FROM scope()
            """)
        #expect(rows == [#"{"P":{"L":[0,1,2],"M":{"a/b":9},"D":1}}"#])
    }

    @Test func failedPatchIsNullWithAnError() throws {
        let (rows, log) = try TestSupport.run("""
            SELECT patch(item=dict(A=1), patch='[{"op": "test", "path": "/A", "value": 2}]') AS T,
                   patch(item=dict(A=1), patch=[dict(op='remove', path='/Missing')]) AS R,
                   patch(item=dict(A=1), patch='not json') AS J
            FROM scope()
            """)
        #expect(rows.last == [#"{"T":null,"R":null,"J":null}"#])
        #expect(log.filter { $0.hasPrefix("ERROR") && $0.contains("patch()") }.count == 3)
    }

    @Test func alertIsLoggedOnceWithinTheDedupWindow() throws {
        let (rows, log) = try TestSupport.run("""
            SELECT alert(name='Odd', Path='/tmp/x') AS First, alert(name='Odd', Path='/tmp/x') AS Again,
                   alert(name='Odd', Path='/tmp/y') AS Other, alert(name='Odd', condition=FALSE) AS Skipped,
                   alert(name='Odd', Path='/tmp/x', dedup=-1) AS Forced
            FROM scope()
            """)
        #expect(rows.last == [#"{"First":true,"Again":false,"Other":true,"Skipped":false,"Forced":true}"#])
        let alerts = log.filter { $0.contains("ALERT: ") }
        #expect(alerts.count == 3)
        #expect(alerts.first?.contains(#""name":"Odd""#) == true)
        #expect(alerts.first?.contains(#""details":{"Path":"/tmp/x"}"#) == true)
    }

    /// A session that runs for months (a server rule) remembers at most 10,000 distinct alerts:
    /// past that, it forgets, and an alert it forgot is raised again.
    @Test func alertMemoryIsBounded() throws {
        let (rows, _) = try TestSupport.run("""
            LET Raised <= SELECT alert(name='Many', N=_value) AS R FROM range(end=10001)
            SELECT len(list=Raised) AS Rows, { SELECT * FROM Raised WHERE NOT R } AS Suppressed,
                   alert(name='Many', N=1) AS Again FROM scope()
            """)
        #expect(rows.last == [#"{"Rows":10001,"Suppressed":null,"Again":true}"#])
    }
}
