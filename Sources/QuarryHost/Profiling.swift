import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Self-diagnosis of the running quarry process, the Linux/Swift counterpart of Velociraptor's Go
/// profiles: `profile()` (recent logs and queries, process metrics, threads, memory by mapping),
/// `profile_goroutines()` (threads with their kernel call stacks) and `profile_memory()` (resident
/// memory by mapping). Go-only profiles (block, mutex, CPU sampling) have no equivalent here and
/// are reported as such.
public enum Profiling {
    public static var plugins: [PluginDeclaration] { [profile, goroutines, memory] }

    public static let profile = PluginDeclaration(
        name: "profile",
        summary: "Diagnostics of this process as rows of {Type, Line}: logs (recent log lines), queries (recent queries, Duration in ns once done), metrics, goroutine (threads) and heap/allocs (memory by mapping).",
        arguments: [
            ArgumentSpec("logs", .bool, "Recent log lines of every session."),
            ArgumentSpec("queries", .bool, "Recent queries: Start, Duration (nanoseconds; NULL while running), Query."),
            ArgumentSpec("metrics", .bool, "Process metrics: memory, threads, open files, CPU time."),
            ArgumentSpec("goroutine", .bool, "The process's threads (what Go calls goroutines)."),
            ArgumentSpec("heap", .bool, "Resident memory by mapping."),
            ArgumentSpec("allocs", .bool, "Same as heap (the runtime keeps no allocation history)."),
            ArgumentSpec("block", .bool, "Go-only: reported as unavailable."),
            ArgumentSpec("mutex", .bool, "Go-only: reported as unavailable."),
            ArgumentSpec("profile", .bool, "Go-only CPU sampling: reported as unavailable."),
            ArgumentSpec("trace", .bool, "Go-only execution trace: reported as unavailable (see trace())."),
            ArgumentSpec("type", .string, "A regular expression choosing the types above by name ('.+': all)."),
            ArgumentSpec("debug", .int, "Accepted for compatibility."),
            ArgumentSpec("duration", .int, "Accepted for compatibility."),
        ],
        columns: [ColumnSpec("Type", .string, "logs, queries, metrics, goroutine or heap."), ColumnSpec("Line", .dict, "The entry.")],
        examples: ["SELECT * FROM profile(metrics=TRUE)"],
        permissions: [.machineState]
    ) { ctx in
        let pattern = ctx.string("type").flatMap { ctx.context.regex($0) }
        func wanted(_ name: String) -> Bool {
            if ctx.bool(name) == true { return true }
            return pattern?.matches(name) ?? false
        }
        for name in ["block", "mutex", "profile", "trace"] where ctx.bool(name) == true {
            ctx.context.logOnce(.warning, "profile(): \(name) is a Go runtime profile; quarry has no equivalent")
        }
        var rows: [Value] = []
        func add(_ type: String, _ line: Value) {
            rows.append(.dict(Dict([("Type", .string(type)), ("Line", line)])))
        }
        if wanted("logs") {
            for entry in Diagnostics.recentLogs {
                add("logs", .dict(Dict([("Time", .timestamp(stamp(entry.time))), ("Level", .string(entry.level.rawValue)), ("Message", .string(entry.message))])))
            }
        }
        if wanted("queries") {
            for entry in Diagnostics.recentQueries {
                let duration: Value = entry.duration.map { .int(Int64(($0 * 1e9).rounded())) } ?? .null
                add("queries", .dict(Dict([("Start", .timestamp(stamp(entry.start))), ("Duration", duration), ("Query", .string(entry.text))])))
            }
        }
        if wanted("metrics") { for (name, value) in metrics() { add("metrics", .dict(Dict([("Name", .string(name)), ("Value", value)]))) } }
        if wanted("goroutine") { for thread in threads() { add("goroutine", thread) } }
        if wanted("heap") || wanted("allocs") { for mapping in mappings() { add("heap", mapping) } }
        return ArrayCursor(rows)
    }

    public static let goroutines = PluginDeclaration(
        name: "profile_goroutines",
        summary: "The threads of this process: Id, Name, State and CallStack (kernel frames as {Name, File, Line}; readable by root only).",
        columns: [
            ColumnSpec("Id", .int, "Thread id."), ColumnSpec("Name", .string, "Thread name."),
            ColumnSpec("State", .string, "R, S, D, …"), ColumnSpec("CallStack", .list, "Kernel call stack."),
        ],
        examples: ["SELECT Id, Name, State FROM profile_goroutines()"],
        permissions: [.machineState]
    ) { _ in
        ArrayCursor(threads())
    }

    public static let memory = PluginDeclaration(
        name: "profile_memory",
        summary: "Resident memory of this process by mapping (largest first): InUseBytes, InUseObjects (mappings) and CallStack naming the mapping.",
        columns: [
            ColumnSpec("InUseBytes", .int, "Resident bytes."), ColumnSpec("InUseObjects", .int, "Number of mappings."),
            ColumnSpec("CallStack", .list, "[{Name, File, Line}] naming the mapping ([heap], a library, …)."),
        ],
        examples: ["SELECT InUseBytes, CallStack FROM profile_memory() LIMIT 3"],
        permissions: [.machineState]
    ) { _ in
        ArrayCursor(mappings())
    }

    static func stamp(_ date: Date) -> Timestamp { Timestamp(seconds: date.timeIntervalSince1970) }

    /// Name → value pairs from /proc/self/status, the fd table and getrusage.
    static func metrics() -> [(String, Value)] {
        var out: [(String, Value)] = []
        let status = HostFS.readProc("/proc/self/status").map { String(decoding: $0, as: UTF8.self) } ?? ""
        for line in status.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, ["VmRSS", "VmHWM", "VmSize", "VmData", "Threads", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"].contains(String(parts[0])) else { continue }
            let words = parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let number = words.first.flatMap({ Int64($0) }) else { continue }
            out.append((String(parts[0]) + (words.count > 1 ? "Bytes" : ""), .int(words.count > 1 ? number * 1024 : number)))
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        out.append(("OpenFiles", .from(fds)))
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            out.append(("UserSeconds", .double(Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6)))
            out.append(("SystemSeconds", .double(Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6)))
        }
        out.append(("RecentQueries", .from(Diagnostics.recentQueries.count)))
        out.append(("RunningQueries", .from(Diagnostics.recentQueries.filter { $0.duration == nil }.count)))
        return out
    }

    /// One row per thread of this process, from /proc/self/task.
    static func threads() -> [Value] {
        let ids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []).compactMap { Int64($0) }.sorted()
        return ids.map { id -> Value in
            let base = "/proc/self/task/\(id)"
            let name = HostFS.readProc(base + "/comm").map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            // The state follows the parenthesised name in stat.
            let stat = HostFS.readProc(base + "/stat").map { String(decoding: $0, as: UTF8.self) } ?? ""
            let state = stat.range(of: ") ", options: .backwards).map { String(stat[$0.upperBound...].prefix(1)) } ?? ""
            let stack = HostFS.readProc(base + "/stack").map { String(decoding: $0, as: UTF8.self) } ?? ""
            let frames: [Value] = stack.split(separator: "\n").map { line in
                let symbol = line.split(separator: " ", maxSplits: 1).last.map { String($0.split(separator: "+").first ?? "") } ?? ""
                return .dict(Dict([("Name", .string(symbol)), ("File", .string("kernel")), ("Line", .int(0))]))
            }
            return .dict(Dict([("Id", .int(id)), ("Name", .string(name)), ("State", .string(state)), ("CallStack", .list(frames))]))
        }
    }

    /// Resident bytes per mapped object from /proc/self/smaps, largest first.
    static func mappings() -> [Value] {
        let text = HostFS.readProc("/proc/self/smaps", limit: 64 << 20).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var totals: [String: (bytes: Int64, count: Int64)] = [:]
        var current = "[anonymous]"
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Rss:") {
                let kb = line.split(separator: " ").dropFirst().first.flatMap { Int64($0) } ?? 0
                totals[current, default: (0, 0)].bytes += kb * 1024
            } else if let first = line.first, first.isHexDigit, line.contains("-") {
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                current = fields.count > 5 ? fields[5].trimmingCharacters(in: .whitespaces) : "[anonymous]"
                totals[current, default: (0, 0)].count += 1
            }
        }
        return totals.sorted { $0.value.bytes > $1.value.bytes }.map { name, total in
            .dict(Dict([
                ("InUseBytes", .int(total.bytes)), ("InUseObjects", .int(total.count)),
                ("CallStack", .list([.dict(Dict([("Name", .string(name)), ("File", .string(name)), ("Line", .int(0))]))])),
            ]))
        }
    }
}
