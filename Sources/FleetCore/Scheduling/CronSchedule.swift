// Cron schedules for hunts that run in rounds. Pure: no clock is read; times are passed in as seconds since
// 1970 and every calendar computation is in UTC (proleptic Gregorian, done with integer arithmetic).

/// Why a cron expression was refused: the field at fault and the text it could not take.
///
/// Its description reads like `minute field '61': value out of range 0–59` or `expected 5 fields, got 3`.
public struct CronError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The field at fault (`minute`, `hour`, `day-of-month`, `month`, `day-of-week`, or `@every` for a
    /// duration), or nil when the expression as a whole is wrong.
    public let field: String?
    /// The offending text: the smallest part of the field that was refused, or the whole expression.
    public let text: String
    /// What is wrong with `text`.
    public let reason: String

    /// An error in one field (`field` non-nil) or in the whole expression.
    public init(field: String?, text: String, reason: String) {
        self.field = field
        self.text = text
        self.reason = reason
    }

    public var description: String {
        guard let field else { return reason }
        if field == "@every" { return "@every duration '\(text)': \(reason)" }
        return "\(field) field '\(text)': \(reason)"
    }
}

/// A parsed cron expression that tells when it next fires.
///
/// Accepted forms:
/// - Five fields, `minute hour day-of-month month day-of-week`, each a comma-separated list of `*`, `N`,
///   `N-M`, with an optional step (`*/15`, `10-40/10`, and `N/S` meaning `N-max/S`). Months take `JAN`–`DEC`
///   and weekdays `SUN`–`SAT` (any case); both 0 and 7 mean Sunday (`MON-SUN` is 1–7).
/// - When both day-of-month and day-of-week are restricted (neither starts with `*`), a day matches if
///   EITHER matches (`0 0 13 * FRI` fires on every 13th and every Friday); otherwise both must match.
/// - Macros: `@hourly`, `@daily`/`@midnight`, `@weekly` (Sunday 00:00), `@monthly`, `@yearly`/`@annually`,
///   and `@every <duration>` with a duration of `<number><unit>` parts, units `d`, `h`, `m`, `s`
///   (`30s`, `5m`, `1h30m`, `1d`), at least one second.
///
/// Two schedules are equal when they fire at the same times (`@daily` equals `0 0 * * *`).
public struct CronSchedule: Sendable, Equatable {
    /// How far `next(after:)` looks before giving up: eight years, so a leap day is found even across
    /// 2100 (not a leap year), while an impossible date such as `0 0 30 2 *` still ends quickly.
    public static let horizonYears = 8

    private enum Rule: Sendable, Equatable {
        case every(Double)
        case calendar(Fields)
    }

    /// Bit `v` of each mask is set when value `v` is allowed.
    private struct Fields: Sendable, Equatable {
        var minutes: UInt64
        var hours: UInt64
        var daysOfMonth: UInt64
        var months: UInt64
        var daysOfWeek: UInt64
        /// The field started with `*`: the day-of-month/day-of-week OR rule does not apply.
        var daysOfMonthStar: Bool
        var daysOfWeekStar: Bool
    }

    private let rule: Rule

    /// Parses a 5-field expression or a macro; throws a `CronError` naming the field and the bad text.
    public init(_ text: String) throws {
        let words = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let first = words.first else {
            throw CronError(field: nil, text: text, reason: "empty cron expression")
        }
        if first.hasPrefix("@") {
            rule = try Self.macro(first.lowercased(), arguments: Array(words.dropFirst()))
            return
        }
        guard words.count == 5 else {
            throw CronError(field: nil, text: text, reason: "expected 5 fields, got \(words.count)")
        }
        rule = .calendar(try Self.fields(words))
    }

    /// The first time strictly after `after` when the schedule fires, or nil when there is none within
    /// `horizonYears` (or `after` is not a usable time).
    ///
    /// A 5-field schedule fires on whole minutes (seconds 0); `@every D` fires at `after + D`.
    public func next(after: Double) -> Double? {
        guard after.isFinite else { return nil }
        switch rule {
        case .every(let interval): return after + interval
        case .calendar(let fields): return Self.next(fields, after: after)
        }
    }

    // MARK: Parsing

    private static func macro(_ name: String, arguments: [String]) throws -> Rule {
        if name == "@every" {
            guard arguments.count == 1, let duration = arguments.first else {
                throw CronError(
                    field: "@every", text: arguments.joined(separator: " "),
                    reason: "expected one duration such as 30s, 5m or 1h30m")
            }
            return .every(try parseDuration(duration))
        }
        guard arguments.isEmpty else {
            throw CronError(field: nil, text: name, reason: "\(name) takes no arguments")
        }
        let expansion: [String]
        switch name {
        case "@hourly": expansion = ["0", "*", "*", "*", "*"]
        case "@daily", "@midnight": expansion = ["0", "0", "*", "*", "*"]
        case "@weekly": expansion = ["0", "0", "*", "*", "0"]
        case "@monthly": expansion = ["0", "0", "1", "*", "*"]
        case "@yearly", "@annually": expansion = ["0", "0", "1", "1", "*"]
        default: throw CronError(field: nil, text: name, reason: "unknown macro '\(name)'")
        }
        return .calendar(try fields(expansion))
    }

    /// `1h30m` → 5400. Parts are `<digits><unit>`, units d, h, m, s; the total must be at least 1 s.
    private static func parseDuration(_ text: String) throws -> Double {
        func bad(_ reason: String) -> CronError { CronError(field: "@every", text: text, reason: reason) }
        var total = 0.0
        var digits = ""
        var parts = 0
        for ch in text.lowercased() {
            if ch.isASCII, ch.isNumber {
                digits.append(ch)
                continue
            }
            let seconds: Double
            switch ch {
            case "d": seconds = 86_400
            case "h": seconds = 3_600
            case "m": seconds = 60
            case "s": seconds = 1
            default: throw bad("unknown unit '\(ch)' (use d, h, m or s)")
            }
            guard !digits.isEmpty else { throw bad("expected a number before '\(ch)'") }
            guard let count = Int(digits) else { throw bad("number too large") }
            total += Double(count) * seconds
            digits = ""
            parts += 1
        }
        guard digits.isEmpty else { throw bad("missing unit after \(digits) (use d, h, m or s)") }
        guard parts > 0 else { throw bad("empty duration") }
        guard total >= 1 else { throw bad("interval must be at least 1s") }
        return total
    }

    private struct FieldSpec {
        let name: String
        let low: Int
        /// Highest value accepted in the text (7 for day-of-week, folded to 0).
        let high: Int
        /// Names for values `nameBase`, `nameBase + 1`, …
        let names: [String]
        let nameBase: Int
    }

    private static let specs = [
        FieldSpec(name: "minute", low: 0, high: 59, names: [], nameBase: 0),
        FieldSpec(name: "hour", low: 0, high: 23, names: [], nameBase: 0),
        FieldSpec(name: "day-of-month", low: 1, high: 31, names: [], nameBase: 0),
        FieldSpec(
            name: "month", low: 1, high: 12,
            names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], nameBase: 1),
        FieldSpec(name: "day-of-week", low: 0, high: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], nameBase: 0),
    ]

    private static func fields(_ words: [String]) throws -> Fields {
        var masks: [UInt64] = []
        for (word, spec) in zip(words, specs) {
            masks.append(try parseField(word, spec))
        }
        return Fields(
            minutes: masks[0], hours: masks[1], daysOfMonth: masks[2], months: masks[3], daysOfWeek: masks[4],
            daysOfMonthStar: words[2].hasPrefix("*"), daysOfWeekStar: words[4].hasPrefix("*"))
    }

    private static func parseField(_ text: String, _ spec: FieldSpec) throws -> UInt64 {
        func bad(_ part: String, _ reason: String) -> CronError {
            CronError(field: spec.name, text: part, reason: reason)
        }
        var mask: UInt64 = 0
        for element in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !element.isEmpty else { throw bad(text, "empty list element") }
            let pieces = element.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard pieces.count <= 2 else { throw bad(element, "more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard isDigits(pieces[1]), let s = Int(pieces[1]), s >= 1 else {
                    throw bad(element, "step must be a whole number of at least 1")
                }
                step = s
            }
            let range = pieces[0]
            // `*` and `N/S` run to the last value of the field: Saturday for day-of-week.
            let last = spec.name == "day-of-week" ? 6 : spec.high
            let low: Int
            let high: Int
            if range == "*" {
                (low, high) = (spec.low, last)
            } else if range.contains("-") {
                let ends = range.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
                guard ends.count == 2, !ends[0].isEmpty, !ends[1].isEmpty else {
                    throw bad(element, "a range is START-END")
                }
                low = try value(ends[0], spec, rangeEnd: false)
                high = try value(ends[1], spec, rangeEnd: true)
                guard low <= high else { throw bad(element, "range start is after its end") }
            } else {
                low = try value(range, spec, rangeEnd: false)
                high = pieces.count == 2 ? max(low, last) : low
            }
            for v in stride(from: low, through: high, by: step) {
                mask |= 1 << UInt64(spec.name == "day-of-week" ? v % 7 : v)
            }
        }
        return mask
    }

    /// A number or a name of the field, checked against its range. A range ending in `SUN` ends at 7.
    private static func value(_ text: String, _ spec: FieldSpec, rangeEnd: Bool) throws -> Int {
        let range = "\(spec.low)–\(spec.high)"
        if isDigits(text) {
            guard let v = Int(text), v >= spec.low, v <= spec.high else {
                throw CronError(field: spec.name, text: text, reason: "value out of range \(range)")
            }
            return v
        }
        if let index = spec.names.firstIndex(of: text.uppercased()) {
            let v = index + spec.nameBase
            return rangeEnd && spec.name == "day-of-week" && v == 0 ? 7 : v
        }
        let expected = spec.names.isEmpty ? "a number" : "a number or a name \(spec.names[0])–\(spec.names[spec.names.count - 1])"
        throw CronError(field: spec.name, text: text, reason: "expected \(expected)")
    }

    private static func isDigits(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber }
    }

    // MARK: Searching

    /// Walks forward month by month, then day by day, then to the next allowed hour and minute.
    private static func next(_ f: Fields, after: Double) -> Double? {
        // About ±30,000 years: beyond that no schedule is meaningful and Int conversion must stay safe.
        guard abs(after) < 1e12 else { return nil }
        let start = Int((after / 60).rounded(.down)) + 1
        let startDay = floorDiv(start, 1440)
        let minuteOfDay = start - startDay * 1440
        var (year, month, day) = civil(fromDays: startDay)
        var hour = minuteOfDay / 60
        var minute = minuteOfDay % 60
        let lastYear = year + horizonYears

        func nextMonth() {
            month += 1
            if month > 12 { (year, month) = (year + 1, 1) }
            (day, hour, minute) = (1, 0, 0)
        }
        func nextDay() {
            day += 1
            (hour, minute) = (0, 0)
            if day > daysIn(year, month) { nextMonth() }
        }

        while year <= lastYear {
            guard f.months & (1 << UInt64(month)) != 0 else {
                nextMonth()
                continue
            }
            let days = daysFromCivil(year, month, day)
            let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4); Sunday is 0.
            let domHit = f.daysOfMonth & (1 << UInt64(day)) != 0
            let dowHit = f.daysOfWeek & (1 << UInt64(weekday)) != 0
            let dayHit = f.daysOfMonthStar || f.daysOfWeekStar ? domHit && dowHit : domHit || dowHit
            guard dayHit else {
                nextDay()
                continue
            }
            guard let h = nextBit(f.hours, from: hour, through: 23) else {
                nextDay()
                continue
            }
            if h != hour { (hour, minute) = (h, 0) }
            guard let m = nextBit(f.minutes, from: minute, through: 59) else {
                if hour == 23 { nextDay() } else { (hour, minute) = (hour + 1, 0) }
                continue
            }
            return Double((days * 1440 + hour * 60 + m) * 60)
        }
        return nil
    }

    private static func nextBit(_ mask: UInt64, from: Int, through: Int) -> Int? {
        guard from <= through else { return nil }
        let rest = mask >> UInt64(from)
        guard rest != 0 else { return nil }
        let v = from + rest.trailingZeroBitCount
        return v <= through ? v : nil
    }

    private static func floorDiv(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return a % b < 0 ? q - 1 : q
    }

    private static func isLeap(_ y: Int) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }

    private static func daysIn(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    private static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date of a day counted from 1970-01-01 (H. Hinnant's `civil_from_days`).
    private static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
