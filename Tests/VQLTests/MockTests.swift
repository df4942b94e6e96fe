import Foundation
import Testing
@testable import VQL

/// mock(), mock_check(), mock_replay() and mock_clear(): canned results per call for plugins,
/// functions and artifacts, call counting, and the real names answering again once cleared.
@Suite struct MockTests {
    // TestSupport.run keeps only the SELECTs' rows: indices count SELECTs.
    @Test func aMockedPluginGivesOneEntryPerCall() throws {
        let (rows, log) = try TestSupport.run("""
            LET _ <= mock(plugin='range', results=[[dict(A=1), dict(A=2)], dict(A=3)])
            SELECT * FROM range(end=100)
            SELECT * FROM range(end=100)
            SELECT * FROM range(end=100)
            SELECT mock_check(plugin='range', expected_calls=3) AS Three, mock_check(plugin='range', expected_calls=1) AS One FROM scope()
            LET _ <= mock_clear()
            SELECT _value FROM range(end=2)
            """)
        try #require(rows.count == 5, "\(rows) \(log)")
        #expect(rows[0] == [#"{"A":1}"#, #"{"A":2}"#], "the first call's list is its rows")
        #expect(rows[1] == [#"{"A":3}"#], "a single value is one row")
        #expect(rows[2] == [], "past the end a plugin yields nothing")
        #expect(rows[3] == [#"{"Three":true,"One":false}"#])
        #expect(log.contains { $0.hasPrefix("ERROR") && $0.contains("called 3 times, expected 1") })
        #expect(rows[4] == [#"{"_value":0}"#, #"{"_value":1}"#], "mock_clear() restores the real plugin")
    }

    @Test func mockedFunctionsAndArtifactsAndReplay() throws {
        let (rows, _) = try TestSupport.run("""
            LET _ <= mock(function='now', results=[100, 200])
            SELECT now() AS First, now() AS Second, now() AS Third FROM scope()
            LET _ <= mock_replay(function='now')
            SELECT now() AS Again FROM scope()
            LET _ <= mock(artifact='Linux.Sys.Users', results=[[dict(User='mocked')]])
            SELECT * FROM Artifact.Linux.Sys.Users()
            LET _ <= mock_check(function='now', clear=TRUE)
            SELECT now() > 1000000000 AS RealClock FROM scope()
            SELECT mock(results=[1]) AS NoTarget FROM scope()
            """)
        try #require(rows.count == 5, "\(rows)")
        #expect(rows[0] == [#"{"First":100,"Second":200,"Third":null}"#])
        #expect(rows[1] == [#"{"Again":100}"#])
        #expect(rows[2] == [#"{"User":"mocked"}"#], "an artifact is mocked as its plugin, even when no definition is loaded")
        #expect(rows[3] == [#"{"RealClock":true}"#])
        #expect(rows[4] == [#"{"NoTarget":false}"#])
    }
}
