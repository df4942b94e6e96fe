import Foundation

/// Making and printing times: timestamp() from epochs and date strings, timestamp_format() with
/// Go layouts. Zone-less strings are read in the zone named by the `PARSE_TZ` scope variable
/// (UTC by default, "local" for this machine's); timestamp_format() prints in `TZ`'s zone.
public enum TimeFunctions {
    public static let all: [FunctionDeclaration] = [timestamp, timestampFormat]

    public static let timestamp = FunctionDeclaration(
        name: "timestamp",
        summary: "Makes a timestamp from epoch seconds (ms, µs and ns told apart by size), a date string (guessed, or read with a Go `format` layout), or a Windows, Cocoa or HFS+ time.",
        arguments: [
            ArgumentSpec("epoch", .any, "Seconds since 1970 (or milli/micro/nanoseconds), a date string or a timestamp."),
            ArgumentSpec("cocoatime", .int, "Seconds since 2001-01-01 (Apple Cocoa)."),
            ArgumentSpec("mactime", .int, "Seconds since 1904-01-01 (HFS+)."),
            ArgumentSpec("winfiletime", .int, "Windows FILETIME (100 ns since 1601)."),
            ArgumentSpec("string", .string, "A date string to guess (RFC 3339, 'March 3 2019', '7/25/2019 5pm', …)."),
            ArgumentSpec("format", .string, "A Go layout such as '1/2/2006 3:04:05 PM' to read `string` with."),
        ],
        returns: .timestamp,
        examples: [
            "SELECT timestamp(epoch=1700000000) AS T FROM scope()",
            "SELECT timestamp(string='8/30/2021 6:01:28 PM', format='1/2/2006 3:04:05 PM') AS T FROM scope()",
        ]
    ) { ctx in
        if let ft = ctx.int("winfiletime") {
            return .timestamp(Timestamp(nanoseconds: (ft &- 116_444_736_000_000_000) &* 100))
        }
        if let cocoa = ctx.double("cocoatime") { return .timestamp(Timestamp(seconds: cocoa + 978_307_200)) }
        if let mac = ctx.double("mactime") { return .timestamp(Timestamp(seconds: mac - 2_082_844_800)) }
        let zone = Timestamps.parseZone(ctx.env)
        if let layout = ctx.string("format"), let text = ctx.string("string") ?? ctx.string("epoch") {
            do {
                return .timestamp(try GoTime.parse(text, layout: layout, zone: zone))
            } catch {
                ctx.log(.warning, "timestamp: \(error)")
                return .null
            }
        }
        let value = ctx.value("epoch") ?? ctx.value("string") ?? .null
        return Timestamps.parse(value, zone: zone) ?? .null
    }

    public static let timestampFormat = FunctionDeclaration(
        name: "timestamp_format",
        summary: "Prints a time with a Go layout ('2006-01-02 15:04:05') or a layout name (RFC3339, ANSIC, Kitchen, …), in the zone named by the TZ variable (UTC by default).",
        arguments: [
            ArgumentSpec("time", .any, required: true, "A timestamp, epoch number or date string."),
            ArgumentSpec("format", .string, "The layout or its name (default RFC3339)."),
        ],
        returns: .string,
        examples: ["SELECT timestamp_format(time=0, format='Mon Jan 2 15:04:05 2006') AS T FROM scope()"]
    ) { ctx in
        guard case .timestamp(let t)? = Timestamps.parse(ctx.value("time") ?? .null, zone: Timestamps.parseZone(ctx.env)) else {
            return .null
        }
        let zone = Timestamps.zone(named: ctx.env.lookup("TZ")?.reduced().stringValue) ?? utc
        return .string(GoTime.format(t, layout: ctx.string("format") ?? "RFC3339", zone: zone))
    }

    static let utc = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? TimeZone.current
}

/// Turning numbers and strings into times.
public enum Timestamps {
    /// The zone `PARSE_TZ` names in this scope (UTC when unset or unknown).
    static func parseZone(_ env: Env) -> TimeZone {
        zone(named: env.lookup("PARSE_TZ")?.reduced().stringValue) ?? TimeFunctions.utc
    }

    /// A zone by IANA name, "local" for this machine's, "UTC"; nil for an unknown or empty name.
    static func zone(named name: String?) -> TimeZone? {
        guard let name, !name.isEmpty else { return nil }
        if name.lowercased() == "local" { return TimeZone.current }
        if name.uppercased() == "UTC" { return TimeFunctions.utc }
        return TimeZone(identifier: name)
    }

    /// A time from a value: timestamps pass, numbers are epochs, strings are guessed (in UTC).
    public static func parse(_ value: Value) -> Value? {
        parse(value, zone: TimeFunctions.utc)
    }

    public static func parse(_ value: Value, zone: TimeZone) -> Value? {
        switch value.reduced() {
        case .timestamp: return value.reduced()
        case .int(let i): return .timestamp(fromEpoch(Double(i), exact: i))
        case .double(let d): return .timestamp(fromEpoch(d, exact: nil))
        case .string, .bytes:
            let trimmed = (value.reduced().stringValue ?? "").trimmingCharacters(in: .whitespaces)
            if let i = Int64(trimmed) { return .timestamp(fromEpoch(Double(i), exact: i)) }
            if let d = Double(trimmed), d.isFinite { return .timestamp(fromEpoch(d, exact: nil)) }
            if let t = FuzzyTime.parse(trimmed, zone: zone) { return .timestamp(t) }
            return parseYearless(trimmed, zone: zone).map { .timestamp($0) }
        case .object(let o) where o.scalar != nil: return parse(o.scalar ?? .null, zone: zone)
        default: return nil
        }
    }

    static func fromEpoch(_ d: Double, exact: Int64?) -> Timestamp {
        let magnitude = abs(d)
        if let exact {
            if magnitude > 1e17 { return Timestamp(nanoseconds: exact) }
            if magnitude > 1e14 { return Timestamp(nanoseconds: exact &* 1000) }
            if magnitude > 1e11 { return Timestamp(nanoseconds: exact &* 1_000_000) }
            return Timestamp(nanoseconds: exact &* 1_000_000_000)
        }
        if magnitude > 1e17 { return Timestamp(seconds: d / 1e9) }
        if magnitude > 1e14 { return Timestamp(seconds: d / 1e6) }
        if magnitude > 1e11 { return Timestamp(seconds: d / 1e3) }
        return Timestamp(seconds: d)
    }

    /// Syslog's "Jan  2 15:04:05" has no year (a year-0 time cannot be held): this year is assumed.
    static func parseYearless(_ s: String, zone: TimeZone) -> Timestamp? {
        let year = GoTime.wallClock(Timestamp(seconds: Date().timeIntervalSince1970), offset: 0).0.year
        for layout in ["Jan _2 15:04:05", "Jan _2 15:04:05.000000", "Jan _2 15:04"] {
            if let t = try? GoTime.parse("\(year) " + s, layout: "2006 " + layout, zone: zone) { return t }
        }
        return nil
    }

    /// A member of a timestamp as Velociraptor exposes Go's time methods (in UTC).
    static func member(_ t: Timestamp, _ name: String) -> Value {
        switch name {
        case "Unix": return .int(floorDiv(t.nanoseconds, 1_000_000_000))
        case "UnixNano": return .int(t.nanoseconds)
        case "UnixMilli": return .int(floorDiv(t.nanoseconds, 1_000_000))
        case "UnixMicro": return .int(floorDiv(t.nanoseconds, 1000))
        case "String": return .string(GoTime.format(t, layout: "2006-01-02T15:04:05Z07:00", zone: TimeFunctions.utc))
        case "UTC": return .timestamp(t)
        case "IsZero": return .bool(t.nanoseconds == 0)
        case "IsDST": return .bool(false)
        case "Zone", "Location": return .string("UTC")
        default: break
        }
        let (c, weekday, yearDay) = GoTime.wallClock(t, offset: 0)
        switch name {
        case "Year": return .from(c.year)
        case "Month": return .from(c.month)
        case "Day": return .from(c.day)
        case "Hour": return .from(c.hour)
        case "Minute": return .from(c.minute)
        case "Second": return .from(c.second)
        case "Nanosecond": return .from(c.nanosecond)
        case "Weekday": return .from(weekday)
        case "YearDay": return .from(yearDay)
        case "ISOWeek": return .from(isoWeekYear(c, weekday: weekday, yearDay: yearDay))
        default: return .null
        }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// The ISO 8601 week-numbering year (Go's ISOWeek's first result).
    private static func isoWeekYear(_ c: GoTime.Civil, weekday: Int, yearDay: Int) -> Int {
        let isoDay = (weekday + 6) % 7  // Monday = 0
        let thursdayYearDay = yearDay - isoDay + 3
        if thursdayYearDay < 1 { return c.year - 1 }
        if thursdayYearDay > (GoTime.isLeap(c.year) ? 366 : 365) { return c.year + 1 }
        return c.year
    }
}
