import Foundation
import Synchronization

/// `alert()`: raises a named alert with details (every extra argument) into the query log, where
/// collectors and the fleet pick it up. The same alert (name and details) is raised once per
/// `dedup` seconds in a session, so a rule matching thousands of rows does not flood the log.
public enum AlertFunction {
    /// When each alert last fired in this session (key: name and details).
    final class Seen: Sendable {
        let times = Mutex<[String: Date]>([:])
    }

    static let seenKey = ServiceKey<Seen>("vql.alert.seen")
    /// Most distinct alerts a session remembers for `dedup`.
    static let maxRemembered = 10_000

    public static let function = FunctionDeclaration(
        name: "alert",
        summary: "Raises the alert `name` (extra arguments become its details) in the query log, at most once per `dedup` seconds for the same details; TRUE when raised, FALSE when suppressed.",
        arguments: [
            ArgumentSpec("name", .string, required: true, "The alert's name."),
            ArgumentSpec("dedup", .int, "Suppress the same alert for this many seconds (default 7200; 0 or less: never suppress)."),
            ArgumentSpec("condition", .any, "When given, the alert is raised only if this is true."),
        ],
        returns: .bool,
        examples: ["SELECT alert(name='Demo', Detail='something odd', dedup=-1) AS Raised FROM scope()"],
        strictArguments: false
    ) { ctx in
        guard let name = ctx.string("name"), !name.isEmpty else {
            ctx.log(.error, "alert(): name is required")
            return .bool(false)
        }
        if ctx.has("condition"), !(ctx.value("condition")?.isTruthy ?? false) { return .bool(false) }
        var details = Dict()
        for (key, value) in ctx.allArguments() where !["name", "dedup", "condition"].contains(key) {
            details[key] = value.materialized()
        }
        let detailText = JSONWriter.string(.dict(details))
        let dedup = Double(ctx.int("dedup") ?? 7200)
        if dedup > 0 {
            let seen = ctx.context.service(seenKey) { Seen() }
            let now = Date()
            let fresh = seen.times.withLock { times -> Bool in
                let key = name + "\u{0}" + detailText
                // A query that runs for months sees many distinct alerts: only the recent ones are kept.
                if times.count >= maxRemembered { times = times.filter { now.timeIntervalSince($0.value) < dedup } }
                if times.count >= maxRemembered { times.removeAll() }
                if let last = times[key], now.timeIntervalSince(last) < dedup { return false }
                times[key] = now
                return true
            }
            guard fresh else { return .bool(false) }
        }
        let record = Dict([
            ("name", .string(name)),
            ("event_time", .timestamp(Timestamp(seconds: Date().timeIntervalSince1970))),
            ("details", .dict(details)),
        ])
        ctx.log(.warning, "ALERT: " + JSONWriter.string(.dict(record)))
        return .bool(true)
    }
}
