import Foundation

/// Go's reference-time layouts ("2006-01-02 15:04:05 MST") for parsing (timestamp(format=)) and
/// formatting (timestamp_format()), plus the civil-date arithmetic both need. Velociraptor's users
/// write these layouts, so they are read with Go's rules: "5" is the second, "1" the month, and a
/// fraction after the seconds is accepted even when the layout has none.
public enum GoTime {
    /// A wall-clock reading: civil date and time plus the zone it was read in.
    public struct Civil: Equatable, Sendable {
        public var year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0, nanosecond = 0
    }

    /// Named layouts Velociraptor accepts by name (Go's time package constants).
    public static let namedLayouts: [String: String] = [
        "ANSIC": "Mon Jan _2 15:04:05 2006", "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
        "RubyDate": "Mon Jan 02 15:04:05 -0700 2006", "RFC822": "02 Jan 06 15:04 MST",
        "RFC822Z": "02 Jan 06 15:04 -0700", "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
        "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST", "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
        "RFC3339": "2006-01-02T15:04:05Z07:00", "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
        "Kitchen": "3:04PM", "Stamp": "Jan _2 15:04:05", "StampMilli": "Jan _2 15:04:05.000",
        "StampMicro": "Jan _2 15:04:05.000000", "StampNano": "Jan _2 15:04:05.000000000",
        "DateTime": "2006-01-02 15:04:05", "DateOnly": "2006-01-02", "TimeOnly": "15:04:05",
        "Layout": "01/02 03:04:05PM '06 -0700",
    ]

    static let longMonths = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                             "October", "November", "December"]
    static let longDays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    // MARK: civil arithmetic (proleptic Gregorian, no Foundation calendar on the hot path)

    /// Days since 1970-01-01 of a civil date.
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The civil date of a day count since 1970-01-01.
    public static func civil(days z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Seconds since the epoch of a wall-clock reading taken at a fixed UTC offset.
    static func epochSeconds(_ c: Civil, offset: Int) -> Int {
        days(year: c.year, month: c.month, day: c.day) * 86400 + c.hour * 3600 + c.minute * 60 + c.second - offset
    }

    /// Seconds since the epoch of a wall-clock reading in a zone (the zone's offset at that moment).
    static func epochSeconds(_ c: Civil, zone: TimeZone) -> Int {
        let naive = epochSeconds(c, offset: 0)
        var offset = zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(naive)))
        let second = zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(naive - offset)))
        if second != offset { offset = second }
        return naive - offset
    }

    /// A timestamp for a wall-clock reading, or nil when it lies outside the nanosecond range.
    static func timestamp(_ c: Civil, seconds: Int) -> Timestamp? {
        let (s, overflow) = Int64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (n, overflow2) = s.addingReportingOverflow(Int64(c.nanosecond))
        return overflow2 ? nil : Timestamp(nanoseconds: n)
    }

    /// The wall clock of a timestamp at a UTC offset, with the weekday (0 = Sunday) and day of year.
    static func wallClock(_ t: Timestamp, offset: Int) -> (Civil, weekday: Int, yearDay: Int) {
        var seconds = t.nanoseconds / 1_000_000_000
        var nanos = t.nanoseconds % 1_000_000_000
        if nanos < 0 {
            nanos += 1_000_000_000
            seconds -= 1
        }
        let local = Int(seconds) + offset
        let dayCount = local >= 0 ? local / 86400 : (local - 86399) / 86400
        let secondOfDay = local - dayCount * 86400
        let (y, m, d) = civil(days: dayCount)
        let c = Civil(year: y, month: m, day: d, hour: secondOfDay / 3600, minute: secondOfDay / 60 % 60,
                      second: secondOfDay % 60, nanosecond: Int(nanos))
        let weekday = ((dayCount % 7) + 11) % 7  // 1970-01-01 was a Thursday
        let yearDay = dayCount - days(year: y, month: 1, day: 1) + 1
        return (c, weekday, yearDay)
    }

    // MARK: layout chunks

    enum Chunk: Equatable {
        case literal(String)
        case longMonth, month, numMonth, zeroMonth
        case longWeekDay, weekDay
        case day, underDay, zeroDay, underYearDay, zeroYearDay
        case hour, hour12, zeroHour12, minute, zeroMinute, second, zeroSecond
        case longYear, year, upperPM, lowerPM, zoneName
        /// Numeric zone: `iso` prints Z for UTC; `colon` separates hours and minutes; `seconds` adds seconds.
        case numericZone(iso: Bool, colon: Bool, minutes: Bool, seconds: Bool)
        /// Fraction of a second: digits, `trailingZeros` false for the 9 form; separator "." or ",".
        case fraction(digits: Int, fixed: Bool, separator: Character)
    }

    /// Splits a layout into literal runs and Go's layout tokens.
    static func chunks(_ layout: String) -> [Chunk] {
        let s = Array(layout.utf8)
        var out: [Chunk] = []
        var literal: [UInt8] = []
        var i = 0
        func has(_ text: String, at j: Int) -> Bool {
            let t = Array(text.utf8)
            return j + t.count <= s.count && Array(s[j..<(j + t.count)]) == t
        }
        func lowerAt(_ j: Int) -> Bool { j < s.count && s[j] >= 0x61 && s[j] <= 0x7A }
        func digitAt(_ j: Int) -> Bool { j < s.count && s[j] >= 0x30 && s[j] <= 0x39 }
        func emit(_ c: Chunk, _ width: Int) {
            if !literal.isEmpty { out.append(.literal(String(decoding: literal, as: UTF8.self))) }
            literal = []
            out.append(c)
            i += width
        }
        while i < s.count {
            switch s[i] {
            case UInt8(ascii: "J") where has("Jan", at: i):
                if has("January", at: i) { emit(.longMonth, 7); continue }
                if !lowerAt(i + 3) { emit(.month, 3); continue }
            case UInt8(ascii: "M"):
                if has("Mon", at: i) {
                    if has("Monday", at: i) { emit(.longWeekDay, 6); continue }
                    if !lowerAt(i + 3) { emit(.weekDay, 3); continue }
                }
                if has("MST", at: i) { emit(.zoneName, 3); continue }
            case UInt8(ascii: "0"):
                if i + 1 < s.count, s[i + 1] >= UInt8(ascii: "1"), s[i + 1] <= UInt8(ascii: "6") {
                    let kinds: [Chunk] = [.zeroMonth, .zeroDay, .zeroHour12, .zeroMinute, .zeroSecond, .year]
                    emit(kinds[Int(s[i + 1] - UInt8(ascii: "1"))], 2)
                    continue
                }
                if has("002", at: i) { emit(.zeroYearDay, 3); continue }
            case UInt8(ascii: "1"):
                if has("15", at: i) { emit(.hour, 2); continue }
                emit(.numMonth, 1)
                continue
            case UInt8(ascii: "2"):
                if has("2006", at: i) { emit(.longYear, 4); continue }
                emit(.day, 1)
                continue
            case UInt8(ascii: "_"):
                if has("_2", at: i) && !has("_2006", at: i) { emit(.underDay, 2); continue }
                if has("__2", at: i) { emit(.underYearDay, 3); continue }
            case UInt8(ascii: "3"): emit(.hour12, 1); continue
            case UInt8(ascii: "4"): emit(.minute, 1); continue
            case UInt8(ascii: "5"): emit(.second, 1); continue
            case UInt8(ascii: "P") where has("PM", at: i): emit(.upperPM, 2); continue
            case UInt8(ascii: "p") where has("pm", at: i): emit(.lowerPM, 2); continue
            case UInt8(ascii: "-"), UInt8(ascii: "Z"):
                let iso = s[i] == UInt8(ascii: "Z")
                let p = iso ? "Z" : "-"
                if has(p + "070000", at: i) { emit(.numericZone(iso: iso, colon: false, minutes: true, seconds: true), 7); continue }
                if has(p + "07:00:00", at: i) { emit(.numericZone(iso: iso, colon: true, minutes: true, seconds: true), 9); continue }
                if has(p + "0700", at: i) { emit(.numericZone(iso: iso, colon: false, minutes: true, seconds: false), 5); continue }
                if has(p + "07:00", at: i) { emit(.numericZone(iso: iso, colon: true, minutes: true, seconds: false), 6); continue }
                if has(p + "07", at: i) { emit(.numericZone(iso: iso, colon: false, minutes: false, seconds: false), 3); continue }
            case UInt8(ascii: "."), UInt8(ascii: ","):
                if i + 1 < s.count, s[i + 1] == UInt8(ascii: "0") || s[i + 1] == UInt8(ascii: "9") {
                    let digit = s[i + 1]
                    var j = i + 1
                    while j < s.count && s[j] == digit { j += 1 }
                    if !digitAt(j) {
                        emit(.fraction(digits: j - i - 1, fixed: digit == UInt8(ascii: "0"),
                                       separator: Character(Unicode.Scalar(s[i]))), j - i)
                        continue
                    }
                }
            default: break
            }
            literal.append(s[i])
            i += 1
        }
        if !literal.isEmpty { out.append(.literal(String(decoding: literal, as: UTF8.self))) }
        return out
    }

    // MARK: formatting

    /// Formats a timestamp with a Go layout (or a layout name such as "RFC3339") in `zone`.
    public static func format(_ t: Timestamp, layout: String, zone: TimeZone) -> String {
        let resolved = namedLayouts[layout] ?? layout
        let date = Date(timeIntervalSince1970: TimeInterval(t.nanoseconds / 1_000_000_000))
        let offset = zone.secondsFromGMT(for: date)
        let (c, weekday, yearDay) = wallClock(t, offset: offset)
        func pad(_ v: Int, _ width: Int, _ fill: Character = "0") -> String {
            let text = String(abs(v))
            let padded = text.count >= width ? text : String(repeating: fill, count: width - text.count) + text
            return v < 0 ? "-" + padded : padded
        }
        var out = ""
        for chunk in chunks(resolved) {
            switch chunk {
            case .literal(let text): out += text
            case .longMonth: out += longMonths[c.month - 1]
            case .month: out += String(longMonths[c.month - 1].prefix(3))
            case .numMonth: out += String(c.month)
            case .zeroMonth: out += pad(c.month, 2)
            case .longWeekDay: out += longDays[weekday]
            case .weekDay: out += String(longDays[weekday].prefix(3))
            case .day: out += String(c.day)
            case .underDay: out += pad(c.day, 2, " ")
            case .zeroDay: out += pad(c.day, 2)
            case .underYearDay: out += pad(yearDay, 3, " ")
            case .zeroYearDay: out += pad(yearDay, 3)
            case .hour: out += pad(c.hour, 2)
            case .hour12: out += String(c.hour % 12 == 0 ? 12 : c.hour % 12)
            case .zeroHour12: out += pad(c.hour % 12 == 0 ? 12 : c.hour % 12, 2)
            case .minute: out += String(c.minute)
            case .zeroMinute: out += pad(c.minute, 2)
            case .second: out += String(c.second)
            case .zeroSecond: out += pad(c.second, 2)
            case .longYear: out += pad(c.year, 4)
            case .year: out += pad(((c.year % 100) + 100) % 100, 2)
            case .upperPM: out += c.hour >= 12 ? "PM" : "AM"
            case .lowerPM: out += c.hour >= 12 ? "pm" : "am"
            case .zoneName:
                if offset == 0 && ["UTC", "GMT", "Etc/UTC", "Universal", "Zulu"].contains(zone.identifier) {
                    out += "UTC"
                } else if let name = zone.abbreviation(for: date), !name.hasPrefix("GMT") || offset == 0 {
                    out += name
                } else {
                    out += (offset < 0 ? "-" : "+") + pad(abs(offset) / 3600, 2) + pad(abs(offset) / 60 % 60, 2)
                }
            case .numericZone(let iso, let colon, let minutes, let seconds):
                if iso && offset == 0 {
                    out += "Z"
                    continue
                }
                let a = abs(offset)
                out += (offset < 0 ? "-" : "+") + pad(a / 3600, 2)
                if minutes { out += (colon ? ":" : "") + pad(a / 60 % 60, 2) }
                if seconds { out += (colon ? ":" : "") + pad(a % 60, 2) }
            case .fraction(let digits, let fixed, let separator):
                var text = pad(c.nanosecond, 9)
                text = String(text.prefix(digits))
                if !fixed {
                    while text.hasSuffix("0") { text.removeLast() }
                    if text.isEmpty { continue }
                }
                out += String(separator) + text
            }
        }
        return out
    }
}

