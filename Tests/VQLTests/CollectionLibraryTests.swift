import Foundation
import Testing
@testable import VQL

/// all/any, slice, to_dict, set/get with lru(), memoize(), cache(), rate(), eval(), generate(), atexit().
@Suite struct CollectionLibraryTests {
    @Test func allAndAny() throws {
        let rows = try TestSupport.rows("""
            SELECT all(items=[1, 2, 3], filter='x => x > 0') AS A1, all(items=[1, 0]) AS A2, all(items=[]) AS A3,
                   any(items=['a', 'bc'], regex='^b') AS B1, any(items={ SELECT _value FROM range(end=3) }, filter='x => x._value = 2') AS B2,
                   any(items=[]) AS B3, all(items={ SELECT * FROM scope() WHERE FALSE }) AS A4
            FROM scope()
            """)
        #expect(rows == [#"{"A1":true,"A2":false,"A3":true,"B1":true,"B2":true,"B3":false,"A4":true}"#])
    }

    @Test func anyStopsAtTheFirstMatch() throws {
        // An endless query: any() must stop pulling once it has its answer.
        let rows = try TestSupport.rows("SELECT any(items={ SELECT Unix FROM clock(ms=1) }, filter='x => x.Unix > 0') AS A FROM scope()")
        #expect(rows == [#"{"A":true}"#])
    }

    @Test func sliceClampsHugeAndNegativeBounds() throws {
        let rows = try TestSupport.rows("""
            SELECT slice(list=[1, 2, 3, 4], start=1, end=3) AS A, slice(list=[1, 2], start=0, end=9223372036854775807) AS B,
                   slice(list=[1, 2], start=5, end=1) AS C, slice(list=[1, 2], start=-4, end=1) AS D
            FROM scope()
            """)
        #expect(rows == [#"{"A":[2,3],"B":[1,2],"C":[],"D":[1]}"#])
    }

    @Test func toDictAndItems() throws {
        let rows = try TestSupport.rows("""
            SELECT to_dict(item={ SELECT _key, _value FROM items(item=dict(A=1, B=2)) WHERE _key != 'A' }) AS D,
                   to_dict(item=[dict(_key='x', _value=1), dict(_key=3, _value=2)]) AS E
            FROM scope()
            """)
        #expect(rows == [#"{"D":{"B":2},"E":{"x":1}}"#])
    }

    @Test func lruKeepsTheNewestKeys() throws {
        let rows = try TestSupport.rows("""
            LET Cache <= lru(size=3)
            LET _ <= SELECT set(item=Cache, field=_value, value=format(format='Message %d', args=_value)) FROM range(end=10)
            SELECT get(item=Cache, field='6') AS Six, get(item=Cache, field='8') AS Eight, Cache.`9` AS Nine FROM scope()
            """)
        #expect(rows == [#"{"Six":null,"Eight":"Message 8","Nine":"Message 9"}"#])
        let (bad, log) = try TestSupport.run("SELECT lru(size=100000000000) AS L, lru(size=0) AS Z FROM scope()")
        #expect(bad.last == [#"{"L":null,"Z":null}"#])
        #expect(log.contains { $0.contains("lru(): size") })
    }

    @Test func setUpdatesDictVariablesAndGetFollowsPaths() throws {
        let rows = try TestSupport.rows("""
            LET D <= dict(A=1)
            LET _ <= set(item=D, field='B', value=dict(C=[5, 6]))
            SELECT D AS D, get(item=D, member='B.C.1') AS P, get(item=D, field='B.C', default='none') AS F FROM scope()
            """)
        #expect(rows == [#"{"D":{"A":1,"B":{"C":[5,6]}},"P":6,"F":"none"}"#])
    }

    @Test func memoizeRunsTheQueryOnce() throws {
        let rows = try TestSupport.rows("""
            LET M <= memoize(query={ SELECT _value AS K, count() AS Runs FROM range(end=3) }, key='K')
            SELECT get(item=M, field=_value).K AS K FROM range(end=4)
            """)
        #expect(rows == [#"{"K":0}"#, #"{"K":1}"#, #"{"K":2}"#, #"{"K":null}"#])
    }

    @Test func cacheEvaluatesOncePerKey() throws {
        // func= is only evaluated on a miss: count() advances only for new keys.
        let rows = try TestSupport.rows("SELECT cache(func=count(), key=_value % 2) AS C FROM range(end=5)")
        #expect(rows == [#"{"C":1}"#, #"{"C":2}"#, #"{"C":1}"#, #"{"C":2}"#, #"{"C":1}"#])
        let lambda = try TestSupport.rows("""
            LET _ <= cache(lambda='x => x * 100', name='hundreds')
            SELECT cache(key=_value, name='hundreds') AS C FROM range(end=2)
            """)
        #expect(lambda == [#"{"C":0}"#, #"{"C":100}"#])
    }

    @Test func rateIsPerCallSite() throws {
        let rows = try TestSupport.rows("SELECT rate(x=_value * 10, y=_value) AS R, rate(x=_value, y=_value * 2) AS S FROM range(end=3)")
        #expect(rows == [#"{"R":null,"S":null}"#, #"{"R":10,"S":0.5}"#, #"{"R":10,"S":0.5}"#])
    }

    @Test func evalAndItsDepthLimit() throws {
        let rows = try TestSupport.rows("""
            LET AddTwo(x) = x + 2
            SELECT eval(func='x => AddTwo(x=1)') AS Three, eval(func='(a, b) => a * b', args=[6, 7]) AS P FROM scope()
            """)
        #expect(rows == [#"{"Three":3,"P":42}"#])
        // A lambda that evals itself ends with a logged error, not a stack overflow.
        let (deep, log) = try TestSupport.run("""
            LET F = 'x => eval(func=F)'
            SELECT eval(func=F) AS V FROM scope()
            """)
        #expect(deep.last == [#"{"V":null}"#])
        #expect(log.contains { $0.contains("nested more than") })
        let (bad, badLog) = try TestSupport.run("SELECT eval(func='x => (') AS V FROM scope()")
        #expect(bad.last == [#"{"V":null}"#])
        #expect(badLog.contains { $0.hasPrefix("ERROR") && $0.contains("lambda") })
    }

    @Test func generateAndAtexit() throws {
        #expect(try TestSupport.rows("LET G = generate(query={ SELECT _value FROM range(end=2) }) SELECT * FROM G") == [#"{"_value":0}"#, #"{"_value":1}"#])
        let logger = MemoryLogger()
        let session = Session(registry: CoreLibrary.registry(), logger: logger)
        _ = try session.run("LET _ <= atexit(query={ SELECT log(message='cleaning up') FROM scope() }) SELECT 1 AS X FROM scope()")
        #expect(!logger.messages.contains { $0.contains("cleaning up") })
        session.close()
        session.close()
        #expect(logger.messages.filter { $0.contains("cleaning up") }.count == 1)
    }

    @Test func lazyDictKeepsArguments() throws {
        #expect(try TestSupport.rows("SELECT lazy_dict(A=1, B='x') AS D FROM scope()") == [#"{"D":{"A":1,"B":"x"}}"#])
    }
}
