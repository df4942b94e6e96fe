import Foundation
import VQL

/// `trace()`: stores a snapshot of this process's state (threads with kernel stacks, metrics,
/// recent queries and log lines) as a JSON file among the collection's uploads, so a stuck or
/// slow client can be inspected from the server (Generic.Client.Trace calls it periodically).
public enum TraceFunction {
    public static let functions: [FunctionDeclaration] = [trace]

    public static let trace = FunctionDeclaration(
        name: "trace",
        summary: "Uploads a JSON snapshot of this process (threads, metrics, recent queries and logs) and returns the upload (Path, Size, Sha256, Md5); NULL with a warning when there is no upload destination.",
        returns: .dict,
        examples: ["SELECT trace() AS Trace FROM scope()"],
        permissions: [.machineState]
    ) { ctx in
        guard let destination = ctx.context.service(UploadService.key, as: (any UploadDestination).self) else {
            ctx.context.logOnce(.warning, "trace(): no upload destination (use quarry query --upload-dir DIR, or a collection)")
            return .null
        }
        let now = Date()
        let snapshot = Dict([
            ("Time", .timestamp(Profiling.stamp(now))),
            ("Pid", .from(Int(ProcessInfo.processInfo.processIdentifier))),
            ("Metrics", .dict(Dict(Profiling.metrics()))),
            ("Threads", .list(Profiling.threads())),
            ("Queries", .list(Diagnostics.recentQueries.map { entry in
                .dict(Dict([("Start", .timestamp(Profiling.stamp(entry.start))),
                            ("Duration", entry.duration.map { .int(Int64(($0 * 1e9).rounded())) } ?? .null),
                            ("Query", .string(entry.text))]))
            })),
            ("Logs", .list(Diagnostics.recentLogs.suffix(100).map { entry in
                .dict(Dict([("Time", .timestamp(Profiling.stamp(entry.time))), ("Level", .string(entry.level.rawValue)), ("Message", .string(entry.message))]))
            })),
        ])
        var bytes = Array(JSONWriter.string(.dict(snapshot)).utf8)
        let name = "trace/trace-\(Int64(now.timeIntervalSince1970 * 1000)).json"
        do {
            let stored = try destination.store(name: name) { buffer in
                let n = min(buffer.count, bytes.count)
                buffer.replaceSubrange(0..<n, with: bytes[0..<n])
                bytes.removeFirst(n)
                return n
            }
            return .dict(Dict([("Path", .string(stored.path)), ("Size", .int(stored.size)), ("Sha256", .string(stored.sha256)), ("Md5", .string(stored.md5))]))
        } catch {
            ctx.log(.error, "trace(): \(error)")
            return .null
        }
    }
}
