import Foundation

/// Reading times with Go layouts (timestamp(format=), and the guesser's zone rules).
extension GoTime {
    /// Why a value did not match a layout.
    public struct ParseError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Parses `value` with a Go layout (or layout name). A reading without a zone is taken in
    /// `zone`; a zone abbreviation that `zone` does not use counts as UTC (Go's rule).
    public static func parse(_ value: String, layout: String, zone: TimeZone) throws -> Timestamp {
        let resolved = namedLayouts[layout] ?? layout
        var v = Substring(value)
        var c = Civil()
        var pm: Bool?
        var offset: Int?
        var zoneName: String?
        var yearDay: Int?
        var sawYear = false
        func fail(_ what: String) -> ParseError { ParseError(message: "cannot parse '\(value)' as '\(resolved)': \(what)") }
        func number(_ fixed: Bool, _ maxDigits: Int = 2) throws -> Int {
            var digits = 0
            var n = 0
            while digits < maxDigits, let ch = v.first, let d = ch.wholeNumberValue, ch.isASCII {
                n = n * 10 + d
                v.removeFirst()
                digits += 1
            }
            if digits == 0 || (fixed && digits < maxDigits) { throw fail("bad number") }
            return n
        }
        func lookup(_ names: [String], prefix: Int?) throws -> Int {
            for (i, name) in names.enumerated() {
                let candidate = prefix.map { String(name.prefix($0)) } ?? name
                if v.count >= candidate.count, v.prefix(candidate.count).lowercased() == candidate.lowercased() {
                    v.removeFirst(candidate.count)
                    return i
                }
            }
            throw fail("bad name")
        }
        let pieces = chunks(resolved)
        for (index, chunk) in pieces.enumerated() {
            switch chunk {
            case .literal(let text):
                var p = Substring(text)
                while let first = p.first {
                    if first == " " {
                        if let f = v.first, f != " " { throw fail("expected space") }
                        while p.first == " " { p.removeFirst() }
                        while v.first == " " { v.removeFirst() }
                        continue
                    }
                    guard v.first == first else { throw fail("expected '\(text)'") }
                    v.removeFirst()
                    p.removeFirst()
                }
            case .longYear:
                guard v.count >= 4, v.prefix(4).allSatisfy({ $0.isASCII && $0.isNumber }) else { throw fail("bad year") }
                c.year = Int(v.prefix(4)) ?? 0
                v.removeFirst(4)
                sawYear = true
            case .year:
                let y = try number(true)
                c.year = y >= 69 ? 1900 + y : 2000 + y
                sawYear = true
            case .longMonth: c.month = try lookup(longMonths, prefix: nil) + 1
            case .month: c.month = try lookup(longMonths, prefix: 3) + 1
            case .numMonth, .zeroMonth:
                c.month = try number(chunk == .zeroMonth)
                if c.month < 1 || c.month > 12 { throw fail("month out of range") }
            case .longWeekDay: _ = try lookup(longDays, prefix: nil)
            case .weekDay: _ = try lookup(longDays, prefix: 3)
            case .day, .underDay, .zeroDay:
                if chunk == .underDay && v.first == " " { v.removeFirst() }
                c.day = try number(chunk == .zeroDay)
            case .underYearDay, .zeroYearDay:
                for _ in 0..<2 where chunk == .underYearDay && v.first == " " { v.removeFirst() }
                yearDay = try number(chunk == .zeroYearDay, 3)
            case .hour:
                c.hour = try number(false)
                if c.hour > 23 { throw fail("hour out of range") }
            case .hour12, .zeroHour12:
                c.hour = try number(chunk == .zeroHour12)
                if c.hour > 12 { throw fail("hour out of range") }
            case .minute, .zeroMinute:
                c.minute = try number(chunk == .zeroMinute)
                if c.minute > 59 { throw fail("minute out of range") }
            case .second, .zeroSecond:
                c.second = try number(chunk == .zeroSecond)
                if c.second > 59 { throw fail("second out of range") }
                // A fraction the layout does not mention is still read (Go's rule).
                if let sep = v.first, sep == "." || sep == ",", v.dropFirst().first?.isNumber == true {
                    if index + 1 < pieces.count, case .fraction = pieces[index + 1] { break }
                    v.removeFirst()
                    c.nanosecond = fractionNanos(&v)
                }
            case .fraction(let digits, let fixed, _):
                if fixed {
                    guard let sep = v.first, sep == "." || sep == "," else { throw fail("expected fraction") }
                    v.removeFirst()
                    let taken = v.prefix(digits)
                    guard taken.count == digits, taken.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw fail("bad fraction") }
                    var rest = Substring(taken)
                    c.nanosecond = fractionNanos(&rest)
                    v.removeFirst(digits)
                } else if let sep = v.first, sep == "." || sep == ",", v.dropFirst().first?.isNumber == true {
                    v.removeFirst()
                    c.nanosecond = fractionNanos(&v)
                }
            case .upperPM, .lowerPM:
                let text = String(v.prefix(2))
                let (pmText, amText) = chunk == .upperPM ? ("PM", "AM") : ("pm", "am")
                if text == pmText { pm = true } else if text == amText { pm = false } else { throw fail("bad AM/PM") }
                v.removeFirst(2)
            case .numericZone(let iso, let colon, let minutes, let seconds):
                if iso && v.first == "Z" {
                    v.removeFirst()
                    offset = 0
                    continue
                }
                guard let sign = v.first, sign == "+" || sign == "-" else { throw fail("bad zone") }
                v.removeFirst()
                let h = try number(true)
                var m = 0, s = 0
                if minutes {
                    if colon { guard v.first == ":" else { throw fail("bad zone") }; v.removeFirst() }
                    m = try number(true)
                }
                if seconds {
                    if colon { guard v.first == ":" else { throw fail("bad zone") }; v.removeFirst() }
                    s = try number(true)
                }
                offset = (sign == "-" ? -1 : 1) * (h * 3600 + m * 60 + s)
            case .zoneName:
                guard let name = zoneAbbreviation(&v) else { throw fail("bad zone name") }
                zoneName = name
            }
        }
        if !v.isEmpty { throw fail("extra text '\(v)'") }
        if let pm {
            if pm && c.hour < 12 { c.hour += 12 } else if !pm && c.hour == 12 { c.hour = 0 }
        }
        if let yearDay {
            guard yearDay >= 1, yearDay <= (isLeap(c.year) ? 366 : 365) else { throw fail("day of year out of range") }
            let (_, m, d) = civil(days: days(year: c.year, month: 1, day: 1) + yearDay - 1)
            c.month = m
            c.day = d
        }
        if c.day < 1 || c.day > daysIn(month: c.month, year: c.year) { throw fail("day out of range") }
        _ = sawYear
        let seconds: Int
        if let offset {
            seconds = epochSeconds(c, offset: offset)
        } else if let zoneName {
            seconds = epochSeconds(c, offset: offsetForAbbreviation(zoneName, civil: c, zone: zone))
        } else {
            seconds = epochSeconds(c, zone: zone)
        }
        guard let t = timestamp(c, seconds: seconds) else { throw fail("out of range") }
        return t
    }

    /// Reads up to nine fraction digits (more are skipped) as nanoseconds.
    static func fractionNanos(_ v: inout Substring) -> Int {
        var n = 0
        var digits = 0
        while let ch = v.first, ch.isASCII, let d = ch.wholeNumberValue {
            if digits < 9 {
                n = n * 10 + d
                digits += 1
            }
            v.removeFirst()
        }
        while digits < 9 {
            n *= 10
            digits += 1
        }
        return n
    }

    /// A zone abbreviation as Go reads one: UTC, GMT±h, or 3 to 5 capitals (ChST, MeST too).
    static func zoneAbbreviation(_ v: inout Substring) -> String? {
        if v.hasPrefix("UTC") {
            v.removeFirst(3)
            return "UTC"
        }
        if v.hasPrefix("GMT") {
            var name = "GMT"
            v.removeFirst(3)
            if let sign = v.first, sign == "+" || sign == "-" {
                var digits = ""
                var rest = v.dropFirst()
                while let d = rest.first, d.isASCII, d.isNumber, digits.count < 2 {
                    digits.append(d)
                    rest.removeFirst()
                }
                if !digits.isEmpty {
                    name += String(sign) + digits
                    v = rest
                }
            }
            return name
        }
        let letters = v.prefix { $0.isASCII && $0.isUppercase }
        if v.hasPrefix("ChST") || v.hasPrefix("MeST") {
            v.removeFirst(4)
            return String(letters)
        }
        guard letters.count >= 3, letters.count <= 5 else { return nil }
        v.removeFirst(letters.count)
        return String(letters)
    }

    /// The offset a zone abbreviation stands for: GMT±h by its number, the default zone's own
    /// abbreviations by that zone, anything else as UTC.
    static func offsetForAbbreviation(_ name: String, civil c: Civil, zone: TimeZone) -> Int {
        if name == "UTC" || name == "GMT" { return 0 }
        if name.hasPrefix("GMT"), let hours = Int(name.dropFirst(3)) { return hours * 3600 }
        let guess = Date(timeIntervalSince1970: TimeInterval(epochSeconds(c, offset: 0)))
        for probe in [guess, guess.addingTimeInterval(-183 * 86400), guess.addingTimeInterval(183 * 86400)] {
            if zone.abbreviation(for: probe) == name { return zone.secondsFromGMT(for: probe) }
        }
        return 0
    }
}
