import Foundation

/// Guessing a time from a free-form date string, as timestamp(string=) does: ISO 8601 and RFC 3339
/// with or without a zone, US dates (7/25/2019), month names (March 3 2019, 3 Mar 2019), the
/// RFC 822/1123 and ctime families, Apache's 02/Jan/2006:15:04:05 -0700, 12-hour clocks. A reading
/// without a zone is taken in the given zone (PARSE_TZ). The shapes follow the date guesser
/// Velociraptor uses, down to its reading of a bare "5pm" (hour 12, second 5).
enum FuzzyTime {
    private enum Kind { case number, word, separator }

    private struct Token {
        var kind: Kind
        var text: String
        var lower: String { text.lowercased() }
    }

    private static let monthWords: [String: Int] = {
        var table: [String: Int] = [:]
        for (i, name) in GoTime.longMonths.enumerated() {
            table[name.lowercased()] = i + 1
            table[String(name.lowercased().prefix(3))] = i + 1
        }
        table["sept"] = 9
        return table
    }()

    private static let dayWords: Set<String> = {
        var set = Set<String>()
        for name in GoTime.longDays {
            set.insert(name.lowercased())
            set.insert(String(name.lowercased().prefix(3)))
        }
        for short in ["tues", "wed", "thur", "thurs"] { set.insert(short) }
        return set
    }()

    private static func tokenize(_ s: String) -> [Token] {
        var tokens: [Token] = []
        for ch in s {
            let kind: Kind = ch.isASCII && ch.isNumber ? .number : (ch.isLetter ? .word : .separator)
            if kind != .separator, let last = tokens.last, last.kind == kind {
                tokens[tokens.count - 1].text.append(ch)
            } else if ch == " " || ch == "\t", let last = tokens.last, last.text == " " {
                continue
            } else {
                tokens.append(Token(kind: kind, text: ch == "\t" ? " " : String(ch)))
            }
        }
        return tokens
    }

    /// The parsed time, or nil when the text is not a date this guesser knows.
    static func parse(_ text: String, zone: TimeZone) -> Timestamp? {
        let tokens = tokenize(text.trimmingCharacters(in: .whitespaces))
        var i = 0
        var c = GoTime.Civil()
        var year: Int?
        var pm: Bool?
        var offset: Int?
        var zoneName: String?

        func peek(_ k: Int = 0) -> Token? { i + k < tokens.count ? tokens[i + k] : nil }
        func isSep(_ k: Int, _ chars: String) -> Bool {
            guard let t = peek(k), t.kind == .separator else { return false }
            return chars.contains(t.text)
        }
        func number(_ k: Int, digits: ClosedRange<Int>) -> Int? {
            guard let t = peek(k), t.kind == .number, digits.contains(t.text.count) else { return nil }
            return Int(t.text)
        }
        func month(_ k: Int) -> Int? {
            guard let t = peek(k), t.kind == .word else { return nil }
            return monthWords[t.lower]
        }
        func twoDigitYear(_ y: Int) -> Int { y >= 69 ? 1900 + y : 2000 + y }
        func yearValue(_ t: Token) -> Int? {
            guard t.kind == .number, let y = Int(t.text) else { return nil }
            if t.text.count == 4 { return y }
            if t.text.count == 2 { return twoDigitYear(y) }
            return nil
        }
        func skipSpaces() { while isSep(0, " ") { i += 1 } }
        func skipOrdinal() {
            if let t = peek(), t.kind == .word, ["st", "nd", "rd", "th"].contains(t.lower) { i += 1 }
        }

        // A leading day name ("Mon,", "Thursday").
        if let t = peek(), t.kind == .word, dayWords.contains(t.lower) {
            i += 1
            if isSep(0, ",") { i += 1 }
            skipSpaces()
        }

        // The date.
        if let y = number(0, digits: 4...4), isSep(1, "-/."), let sep = peek(1)?.text {
            year = y
            if let m = number(2, digits: 1...2) ?? month(2) {
                c.month = m
                i += 3
                if isSep(0, sep), let d = number(1, digits: 1...2) {
                    c.day = d
                    i += 2
                }
            } else {
                return nil
            }
        } else if number(0, digits: 1...2) != nil, isSep(1, "/"), let m = month(2), isSep(3, "/"), let t = peek(4), let y = yearValue(t) {
            c.day = number(0, digits: 1...2) ?? 1
            c.month = m
            year = y
            i += 5
            if isSep(0, ":") { i += 1 }
        } else if let a = number(0, digits: 1...2), isSep(1, "/.-"), let sep = peek(1)?.text, let b = number(2, digits: 1...2),
            isSep(3, sep), let t = peek(4), let y = yearValue(t)
        {
            c.month = a
            c.day = b
            year = y
            i += 5
        } else if let d = number(0, digits: 1...2), isSep(1, "-"), let m = month(2), isSep(3, "-"), let t = peek(4), let y = yearValue(t) {
            c.day = d
            c.month = m
            year = y
            i += 5
        } else if let d = number(0, digits: 1...2), isSep(1, " "), let m = month(2) {
            c.day = d
            c.month = m
            i += 3
            if isSep(0, ",") { i += 1 }
            if isSep(0, " "), let t = peek(1), let y = yearValue(t) {
                year = y
                i += 2
            }
        } else if let m = month(0) {
            c.month = m
            i += 1
            if isSep(0, ".") { i += 1 }
            skipSpaces()
            guard let d = number(0, digits: 1...2) else { return nil }
            c.day = d
            i += 1
            skipOrdinal()
            if isSep(0, ",") { i += 1 }
            if isSep(0, " "), let t = peek(1), t.kind == .number, t.text.count == 4, !isSep(2, ":") {
                year = Int(t.text)
                i += 2
            } else if isSep(0, " "), isSep(1, "'"), let t = peek(2), t.kind == .number, t.text.count == 2 {
                year = twoDigitYear(Int(t.text) ?? 0)
                i += 3
            }
        } else {
            return nil
        }

        // The clock, after a space, a comma, a 'T' or the colon of Apache's layout.
        if let t = peek(), t.kind == .word, t.lower == "t" { i += 1 }
        if isSep(0, ",") { i += 1 }
        skipSpaces()
        if let h = number(0, digits: 1...2), isSep(1, ":"), let m = number(2, digits: 2...2) {
            c.hour = h
            c.minute = m
            i += 3
            if isSep(0, ":"), let s = number(1, digits: 2...2) {
                c.second = s
                i += 2
                if isSep(0, ".,:"), let f = peek(1), f.kind == .number {
                    var digits = Substring(f.text)
                    c.nanosecond = GoTime.fractionNanos(&digits)
                    i += 2
                }
            }
        } else if let t = peek(), t.kind == .number, t.text.count <= 2, let next = peek(1), next.kind == .word,
            ["am", "pm"].contains(next.lower)
        {
            // A bare hour before am/pm is read as Go reads the layout the guesser builds: seconds.
            c.second = Int(t.text) ?? 0
            i += 1
        }

        // Whatever follows: AM/PM, a zone, a year after the clock (ctime), a comment in parentheses.
        while let t = peek() {
            switch t.kind {
            case .separator where t.text == " " || t.text == ",":
                i += 1
            case .separator where t.text == "(":
                while let u = peek(), u.text != ")" { i += 1 }
                i += 1
            case .separator where t.text == "+" || t.text == "-":
                guard let digits = peek(1), digits.kind == .number else { return nil }
                var hours = 0, minutes = 0
                switch digits.text.count {
                case 1, 2: hours = Int(digits.text) ?? 0
                case 4:
                    hours = Int(digits.text.prefix(2)) ?? 0
                    minutes = Int(digits.text.suffix(2)) ?? 0
                default: return nil
                }
                i += 2
                if digits.text.count <= 2, isSep(0, ":"), let m = number(1, digits: 2...2) {
                    minutes = m
                    i += 2
                }
                if offset == nil || zoneName == "UTC" || zoneName == "GMT" {
                    offset = (t.text == "-" ? -1 : 1) * (hours * 3600 + minutes * 60)
                }
            case .word:
                let lower = t.lower
                if lower == "am" || lower == "pm" {
                    pm = lower == "pm"
                } else if t.text == "Z" {
                    offset = 0
                } else if t.text.count >= 3, t.text.count <= 5, t.text.allSatisfy({ $0.isUppercase }) {
                    if zoneName == nil && offset == nil { zoneName = t.text }
                } else {
                    return nil
                }
                i += 1
            case .number:
                guard year == nil, t.text.count == 4 else { return nil }
                year = Int(t.text)
                i += 1
            default:
                return nil
            }
        }
        guard let year else { return nil }
        c.year = year
        if let pm {
            if pm && c.hour < 12 { c.hour += 12 } else if !pm && c.hour == 12 { c.hour = 0 }
        }
        guard c.month >= 1, c.month <= 12, c.day >= 1, c.day <= GoTime.daysIn(month: c.month, year: c.year),
            c.hour < 24, c.minute < 60, c.second < 60
        else { return nil }
        let seconds: Int
        if let offset {
            seconds = GoTime.epochSeconds(c, offset: offset)
        } else if let zoneName {
            seconds = GoTime.epochSeconds(c, offset: GoTime.offsetForAbbreviation(zoneName, civil: c, zone: zone))
        } else {
            seconds = GoTime.epochSeconds(c, zone: zone)
        }
        return GoTime.timestamp(c, seconds: seconds)
    }
}

extension GoTime {
    /// A time from free-form text, as timestamp(string=) reads it (UTC when the text has no zone);
    /// nil when it is not a date the guesser knows.
    public static func parseAny(_ text: String) -> Timestamp? {
        FuzzyTime.parse(text, zone: TimeZone(secondsFromGMT: 0) ?? .current)
    }
}
