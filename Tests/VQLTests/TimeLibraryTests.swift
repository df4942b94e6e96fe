import Foundation
import Testing
@testable import VQL

/// timestamp(), timestamp_format() and timestamps in expressions, as Velociraptor's golden files show them.
@Suite struct TimeLibraryTests {
    private func one(_ expression: String, prefix: String = "") throws -> String {
        let rows = try TestSupport.rows(prefix + "SELECT \(expression) AS V FROM scope()")
        return rows.first ?? ""
    }

    @Test func guessesCommonDateShapes() throws {
        let cases: [(String, String)] = [
            ("March 3 2019", "2019-03-03T00:00:00Z"),
            ("07/25/2019 5pm", "2019-07-25T12:00:05Z"),  // the guesser reads a bare 5 as seconds
            ("2021-10-01T10:53:32Z", "2021-10-01T10:53:32Z"),
            ("2021-10-01T10:53:32+02:00", "2021-10-01T08:53:32Z"),
            ("2009-08-12T22:15:09.988", "2009-08-12T22:15:09.988Z"),
            ("Mon Jan  2 15:04:05 2006", "2006-01-02T15:04:05Z"),
            ("Tue, 11 Jul 2017 16:28:13 +0200 (CEST)", "2017-07-11T14:28:13Z"),
            ("06/Jan/2008:15:04:05 -0700", "2008-01-06T22:04:05Z"),
            ("May 8, 2009 5:57:51 PM", "2009-05-08T17:57:51Z"),
            ("12 Feb 2006, 19:17", "2006-02-12T19:17:00Z"),
            ("2012-08-03 18:31:59.257000000 +0000 UTC", "2012-08-03T18:31:59.257Z"),
            ("8/8/1965 12:00 AM", "1965-08-08T00:00:00Z"),
        ]
        for (text, expected) in cases {
            #expect(try one("timestamp(string='\(text)')") == #"{"V":"\#(expected)"}"#, "\(text)")
        }
    }

    @Test func parseTZAppliesOnlyToZonelessStrings() throws {
        let prefix = "LET PARSE_TZ <= 'Australia/Brisbane' "
        #expect(try one("timestamp(string='2021-10-01T10:53:32')", prefix: prefix) == #"{"V":"2021-10-01T00:53:32Z"}"#)
        #expect(try one("timestamp(string='2021-10-01T10:53:32Z')", prefix: prefix) == #"{"V":"2021-10-01T10:53:32Z"}"#)
        #expect(try one("timestamp(string='March 3 2019')", prefix: prefix) == #"{"V":"2019-03-02T14:00:00Z"}"#)
        // Daylight saving is the zone's own: Berlin is +2 in July and +1 in January.
        let berlin = "LET PARSE_TZ <= 'Europe/Berlin' "
        #expect(try one("timestamp(string='2024-07-01 12:00:00')", prefix: berlin) == #"{"V":"2024-07-01T10:00:00Z"}"#)
        #expect(try one("timestamp(string='2024-01-01 12:00:00')", prefix: berlin) == #"{"V":"2024-01-01T11:00:00Z"}"#)
    }

    @Test func epochsOfEverySize() throws {
        for epoch in ["1630414425", "1630414425000", "1630414425000000", "1630414425000000000"] {
            #expect(try one("timestamp(epoch=\(epoch))") == #"{"V":"2021-08-31T12:53:45Z"}"#)
        }
        #expect(try one("timestamp(winfiletime=132723144250000000)") == #"{"V":"2021-08-01T18:00:25Z"}"#)
        #expect(try one("timestamp(cocoatime=0)") == #"{"V":"2001-01-01T00:00:00Z"}"#)
    }

    @Test func goLayouts() throws {
        #expect(try one("timestamp(string='8/30/2021 6:01:28 PM', format='1/2/2006 3:04:05 PM')") == #"{"V":"2021-08-30T18:01:28Z"}"#)
        #expect(try one("timestamp_format(time=1700000000, format='RFC1123')") == #"{"V":"Tue, 14 Nov 2023 22:13:20 UTC"}"#)
        #expect(try one("timestamp_format(time=1700000000, format='Monday _2 January 06 3PM .000')") == #"{"V":"Tuesday 14 November 23 10PM .000"}"#)
        #expect(try one("timestamp_format(time=1700000000, format='2006-01-02T15:04:05Z07:00')", prefix: "LET TZ <= 'Asia/Tokyo' ")
            == #"{"V":"2023-11-15T07:13:20+09:00"}"#)
        // A layout that does not match gives NULL and a warning, not a crash.
        let (rows, log) = try TestSupport.run("SELECT timestamp(string='yesterday', format='2006-01-02') AS V FROM scope()")
        #expect(rows.last == [#"{"V":null}"#])
        #expect(log.contains { $0.hasPrefix("WARN") && $0.contains("cannot parse") })
    }

    @Test func membersAndComparisons() throws {
        let rows = try TestSupport.rows("""
            LET T <= timestamp(epoch=1723428985)
            SELECT T.Unix AS Unix, T.Year AS Y, T.Month AS M, T.Day AS D, T.Weekday AS W, T.YearDay AS YD,
                   T.String AS S, T.UnixMilli AS Ms, T < 1118628985 AS A, 1118628985 < T AS B,
                   T > '2024-08-12T02:15:25.176Z' AS C, '2024-08-12T02:15:25.176Z' > T AS D2, T < 1118628985.0 AS E
            FROM scope()
            """)
        #expect(rows == [#"{"Unix":1723428985,"Y":2024,"M":8,"D":12,"W":1,"YD":225,"S":"2024-08-12T02:16:25Z","Ms":1723428985000,"A":false,"B":true,"C":true,"D2":false,"E":false}"#])
    }

    @Test func clockTicksAndEnds() throws {
        let rows = try TestSupport.rows("SELECT Unix > 1630414425 AS Later FROM clock(ms=10, start=0) LIMIT 3")
        #expect(rows == Array(repeating: #"{"Later":true}"#, count: 3))
    }

    @Test func civilArithmeticRoundTrips() {
        for days in stride(from: -800_000, through: 800_000, by: 997) {
            let (y, m, d) = GoTime.civil(days: days)
            #expect(GoTime.days(year: y, month: m, day: d) == days)
        }
    }
}
