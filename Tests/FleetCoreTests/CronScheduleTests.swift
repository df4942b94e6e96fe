import FleetCore
import Foundation
import Testing

/// Seconds since 1970 of an ISO-8601 UTC time such as `2024-03-01T10:07:00Z` (Foundation is the oracle).
func utc(_ text: String) -> Double {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    guard let date = formatter.date(from: text) else {
        Issue.record("bad test time \(text)")
        return .nan
    }
    return date.timeIntervalSince1970
}

@Suite struct CronScheduleTests {
    /// (expression, after, expected next) with answers worked out by hand against a calendar.
    /// 2024-03-01 is a Friday; 2024 and 2028 are leap years, 2100 is not.
    static let cases: [(String, String, String?)] = [
        // Steps and ranges in the minute field.
        ("*/15 * * * *", "2024-03-01T10:07:00Z", "2024-03-01T10:15:00Z"),
        ("*/15 * * * *", "2024-03-01T10:15:00Z", "2024-03-01T10:30:00Z"),  // strictly after
        ("*/15 * * * *", "2024-03-01T10:14:59Z", "2024-03-01T10:15:00Z"),
        ("*/15 * * * *", "2024-03-01T23:50:00Z", "2024-03-02T00:00:00Z"),
        ("10-40/10 * * * *", "2024-03-01T10:07:00Z", "2024-03-01T10:10:00Z"),
        ("10-40/10 * * * *", "2024-03-01T10:40:00Z", "2024-03-01T11:10:00Z"),
        ("5/20 * * * *", "2024-03-01T10:46:00Z", "2024-03-01T11:05:00Z"),  // 5, 25, 45
        ("* * * * *", "2024-03-01T10:07:30Z", "2024-03-01T10:08:00Z"),
        ("1,5,58 * * * *", "2024-03-01T10:05:00Z", "2024-03-01T10:58:00Z"),
        // Hours.
        ("30 2 * * *", "2024-03-01T02:30:00Z", "2024-03-02T02:30:00Z"),
        ("0 9-17/4 * * *", "2024-03-01T13:00:00Z", "2024-03-01T17:00:00Z"),  // 9, 13, 17
        ("0 9-17/4 * * *", "2024-03-01T17:00:00Z", "2024-03-02T09:00:00Z"),
        ("15 */6 * * *", "2024-03-01T18:15:00Z", "2024-03-02T00:15:00Z"),
        // Days of month, months, names.
        ("0 0 1 * *", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"),
        ("0 0 31 * *", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z"),  // April has 30 days
        ("30 6 1 JAN,jul *", "2024-03-01T00:00:00Z", "2024-07-01T06:30:00Z"),
        ("0 0 1 1 *", "2024-12-31T23:59:00Z", "2025-01-01T00:00:00Z"),
        ("0 12 15 Mar-May *", "2024-05-15T12:00:00Z", "2025-03-15T12:00:00Z"),
        // Leap days: the next one, and the eight-year gap across 2100.
        ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2097-03-01T00:00:00Z", "2104-02-29T00:00:00Z"),
        // Weekdays over a weekend; 0 and 7 are Sunday.
        ("0 9 * * MON-FRI", "2024-03-01T10:00:00Z", "2024-03-04T09:00:00Z"),
        ("0 9 * * MON-FRI", "2024-03-01T08:00:00Z", "2024-03-01T09:00:00Z"),
        ("0 9 * * 1-5", "2024-03-02T09:00:00Z", "2024-03-04T09:00:00Z"),
        ("0 12 * * 7", "2024-03-01T00:00:00Z", "2024-03-03T12:00:00Z"),
        ("0 12 * * 0", "2024-03-01T00:00:00Z", "2024-03-03T12:00:00Z"),
        ("0 12 * * sat-sun", "2024-03-02T13:00:00Z", "2024-03-03T12:00:00Z"),
        ("0 12 * * FRI-7", "2024-03-03T13:00:00Z", "2024-03-08T12:00:00Z"),
        // Both day fields restricted: either matches (every 13th and every Friday).
        ("0 0 13 * FRI", "2024-03-01T12:00:00Z", "2024-03-08T00:00:00Z"),
        ("0 0 13 * FRI", "2024-03-08T00:00:00Z", "2024-03-13T00:00:00Z"),
        ("0 0 13 * FRI", "2024-03-13T00:00:00Z", "2024-03-15T00:00:00Z"),
        ("0 0 1,15 * MON", "2024-03-04T00:00:00Z", "2024-03-11T00:00:00Z"),
        // One day field starts with '*': both must match (odd days that are Mondays).
        ("0 0 */2 * MON", "2024-03-01T00:00:00Z", "2024-03-11T00:00:00Z"),
        ("0 0 * 2 FRI", "2024-03-01T00:00:00Z", "2025-02-07T00:00:00Z"),
        // Macros.
        ("@hourly", "2024-03-01T10:07:00Z", "2024-03-01T11:00:00Z"),
        ("@daily", "2024-03-01T10:07:00Z", "2024-03-02T00:00:00Z"),
        ("@midnight", "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"),
        ("@weekly", "2024-03-01T10:07:00Z", "2024-03-03T00:00:00Z"),
        ("@monthly", "2024-03-01T10:07:00Z", "2024-04-01T00:00:00Z"),
        ("@yearly", "2024-03-01T10:07:00Z", "2025-01-01T00:00:00Z"),
        ("@ANNUALLY", "2024-03-01T10:07:00Z", "2025-01-01T00:00:00Z"),
        // Never: no February 30th, no 31st in 30-day months.
        ("0 0 30 2 *", "2024-03-01T00:00:00Z", nil),
        ("0 0 31 4,6,9,11 *", "2024-03-01T00:00:00Z", nil),
        // Before 1970.
        ("0 0 1 1 *", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z"),
        ("0 0 * * THU", "1969-12-25T00:00:00Z", "1970-01-01T00:00:00Z"),
    ]

    @Test(arguments: cases)
    func nextFiringTime(_ expression: String, _ after: String, _ expected: String?) throws {
        let schedule = try CronSchedule(expression)
        #expect(schedule.next(after: utc(after)) == expected.map(utc), "\(expression) after \(after)")
    }

    @Test func fractionalSecondsAndExactMinutes() throws {
        let everyMinute = try CronSchedule("* * * * *")
        #expect(everyMinute.next(after: 599.5) == 600)
        #expect(everyMinute.next(after: 600) == 660)
        #expect(everyMinute.next(after: -0.5) == 0)
        #expect(everyMinute.next(after: -60) == 0)
    }

    @Test func everyAddsItsInterval() throws {
        #expect(try CronSchedule("@every 90s").next(after: 1000.5) == 1090.5)
        #expect(try CronSchedule("@every 5m").next(after: 0) == 300)
        #expect(try CronSchedule("@every 2h").next(after: 10) == 7210)
        #expect(try CronSchedule("@every 1h30m").next(after: 0) == 5400)
        #expect(try CronSchedule("@every 1d").next(after: 0) == 86_400)
        #expect(try CronSchedule("@every 1s").next(after: 5) == 6)
        #expect(try CronSchedule("@every 90s") == CronSchedule("@every 1m30s"))
    }

    @Test func equalSchedulesFireAlike() throws {
        #expect(try CronSchedule("@daily") == CronSchedule("0 0 * * *"))
        #expect(try CronSchedule("@weekly") == CronSchedule("0 0 * * 7"))
        #expect(try CronSchedule("0 0 * * SUN") == CronSchedule("0 0 * * 0"))
        #expect(try CronSchedule("0 0 1 jan *") == CronSchedule("  0\t0 1 1 *  "))
        #expect(try CronSchedule("*/20 * * * *") == CronSchedule("0,20,40 * * * *"))
        #expect(try CronSchedule("* * * * *") != CronSchedule("*/2 * * * *"))
    }

    @Test func unusableTimesGiveNil() throws {
        let schedule = try CronSchedule("* * * * *")
        #expect(schedule.next(after: .nan) == nil)
        #expect(schedule.next(after: .infinity) == nil)
        #expect(schedule.next(after: 1e300) == nil)
        #expect(try CronSchedule("@every 1m").next(after: .nan) == nil)
    }

    @Test func impossibleDatesEndQuickly() throws {
        let never = try CronSchedule("59 23 31 2 *")
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for i in 0..<200 { #expect(never.next(after: Double(i) * 86_400) == nil) }
        }
        #expect(elapsed < .seconds(5))
    }

    @Test func successiveTimesOfAWeekdaySchedule() throws {
        // From Friday noon: Mon, Tue, Wed, Thu, Fri at 09:00, then the next Monday.
        let schedule = try CronSchedule("0 9 * * MON-FRI")
        var t = utc("2024-03-01T12:00:00Z")
        var times: [Double] = []
        for _ in 0..<6 {
            guard let next = schedule.next(after: t) else { break }
            times.append(next)
            t = next
        }
        let expected = ["04", "05", "06", "07", "08", "11"].map { utc("2024-03-\($0)T09:00:00Z") }
        #expect(times == expected)
    }

    /// Chained `next(after:)` over three weeks around a leap day equals a minute-by-minute scan whose
    /// matching is written out by hand and whose calendar is Foundation's.
    @Test func agreesWithABruteForceScan() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        typealias Fields = (minute: Int, hour: Int, day: Int, month: Int, weekday: Int)  // weekday 1 = Sunday
        let cases: [(String, (Fields) -> Bool)] = [
            ("*/7 3-5,20 */3 * *", { [3, 4, 5, 20].contains($0.hour) && $0.minute % 7 == 0 && ($0.day - 1) % 3 == 0 }),
            ("0 0 13,29 * FRI", { $0.minute == 0 && $0.hour == 0 && ($0.day == 13 || $0.day == 29 || $0.weekday == 6) }),
            ("45 23 * FEB SAT,1", { $0.minute == 45 && $0.hour == 23 && $0.month == 2 && [7, 2].contains($0.weekday) }),
            ("5,10 */8 1-3 mar *", { [5, 10].contains($0.minute) && $0.hour % 8 == 0 && $0.day <= 3 && $0.month == 3 }),
            ("@weekly", { $0.minute == 0 && $0.hour == 0 && $0.weekday == 1 }),
        ]
        let start = utc("2024-02-20T00:00:00Z")
        let end = utc("2024-03-12T00:00:00Z")
        for (expression, matches) in cases {
            let schedule = try CronSchedule(expression)
            var expected: [Double] = []
            for t in stride(from: start + 60, through: end, by: 60) {
                let c = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: Date(timeIntervalSince1970: t))
                let fields = (c.minute ?? -1, c.hour ?? -1, c.day ?? -1, c.month ?? -1, c.weekday ?? -1)
                if matches(fields) { expected.append(t) }
            }
            var actual: [Double] = []
            var t = start
            while let next = schedule.next(after: t), next <= end {
                actual.append(next)
                t = next
            }
            #expect(!expected.isEmpty)
            #expect(actual == expected, "\(expression)")
        }
    }

    static let errors: [(String, String)] = [
        ("61 * * * *", "minute field '61': value out of range 0–59"),
        ("* * *", "expected 5 fields, got 3"),
        ("* * * * * *", "expected 5 fields, got 6"),
        ("", "empty cron expression"),
        ("* 24 * * *", "hour field '24': value out of range 0–23"),
        ("* * 0 * *", "day-of-month field '0': value out of range 1–31"),
        ("* * 32 * *", "day-of-month field '32': value out of range 1–31"),
        ("* * * 13 *", "month field '13': value out of range 1–12"),
        ("* * * 0 *", "month field '0': value out of range 1–12"),
        ("* * * * 8", "day-of-week field '8': value out of range 0–7"),
        ("* * * FOO *", "month field 'FOO': expected a number or a name JAN–DEC"),
        ("* * * * MONDAY", "day-of-week field 'MONDAY': expected a number or a name SUN–SAT"),
        ("x * * * *", "minute field 'x': expected a number"),
        ("JAN * * * *", "minute field 'JAN': expected a number"),
        ("1-61 * * * *", "minute field '61': value out of range 0–59"),
        ("5-1 * * * *", "minute field '5-1': range start is after its end"),
        ("*/0 * * * *", "minute field '*/0': step must be a whole number of at least 1"),
        ("*/x * * * *", "minute field '*/x': step must be a whole number of at least 1"),
        ("*/5/2 * * * *", "minute field '*/5/2': more than one '/'"),
        ("1,,2 * * * *", "minute field '1,,2': empty list element"),
        ("-5 * * * *", "minute field '-5': a range is START-END"),
        ("1-2-3 * * * *", "minute field '1-2-3': a range is START-END"),
        ("+5 * * * *", "minute field '+5': expected a number"),
        ("99999999999999999999 * * * *", "minute field '99999999999999999999': value out of range 0–59"),
        ("@fortnightly", "unknown macro '@fortnightly'"),
        ("@daily 5", "@daily takes no arguments"),
        ("@every", "@every duration '': expected one duration such as 30s, 5m or 1h30m"),
        ("@every 1h 30m", "@every duration '1h 30m': expected one duration such as 30s, 5m or 1h30m"),
        ("@every 0s", "@every duration '0s': interval must be at least 1s"),
        ("@every 90", "@every duration '90': missing unit after 90 (use d, h, m or s)"),
        ("@every 500ms", "@every duration '500ms': expected a number before 's'"),
        ("@every 2w", "@every duration '2w': unknown unit 'w' (use d, h, m or s)"),
        ("@every h", "@every duration 'h': expected a number before 'h'"),
    ]

    @Test(arguments: errors)
    func refusedExpressions(_ expression: String, _ message: String) {
        do {
            _ = try CronSchedule(expression)
            Issue.record("'\(expression)' was accepted")
        } catch let error as CronError {
            #expect(error.description == message)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func errorsNameTheField() {
        #expect(throws: CronError(field: "hour", text: "25", reason: "value out of range 0–23")) {
            try CronSchedule("0 25 * * *")
        }
        #expect(throws: CronError(field: nil, text: "* *", reason: "expected 5 fields, got 2")) {
            try CronSchedule("* *")
        }
    }
}
