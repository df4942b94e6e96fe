import Foundation
import QuarryHost
import VQL

/// The `process_tracker*` names, answered from the process tracker service.
public enum TrackerFunctions {
    public static var plugins: [PluginDeclaration] { [pslist, updates] }
    public static var functions: [FunctionDeclaration] { [get, callchain, children, tree, all, install] }

    static func tracker(_ ctx: CallContext) -> ProcessTracker {
        let tracker = ProcessTracker.tracker(ctx.context)
        tracker.ensureStarted(logger: ctx.context.logger)
        return tracker
    }

    static func pid(_ ctx: CallContext, _ name: String = "id") -> Int32? {
        TrackerRows.int(ctx.value(name)).flatMap { Int32(exactly: $0) }
    }

    static func object(_ process: TrackedProcess) -> Value { .object(TrackedProcessObject(process)) }

    public static let pslist = PluginDeclaration(
        name: "process_tracker_pslist",
        summary: "Processes from the process tracker: those running and those that exited (kept in an LRU), with pslist's columns.",
        arguments: [ArgumentSpec("pid", .int, "Only this process.")],
        columns: TrackedProcessObject.columns.map { ColumnSpec($0, .any) },
        examples: ["SELECT Pid, Name FROM process_tracker_pslist() WHERE Pid = 1"],
        permissions: [.machineState]
    ) { ctx in
        let tracker = tracker(ctx)
        if let pid = ctx.int("pid") {
            guard let pid = Int32(exactly: pid), let process = tracker.read({ $0.get(pid) }) else { return ArrayCursor([]) }
            return ArrayCursor([object(process)])
        }
        return ArrayCursor(tracker.read { $0.all }.map(object))
    }

    public static let get = FunctionDeclaration(
        name: "process_tracker_get",
        summary: "One process from the tracker (alive, or exited and still remembered): pslist's columns and Id, ParentId, StartTime, EndTime, Data.",
        arguments: [
            ArgumentSpec("id", .any, required: true, "The process id."),
            ArgumentSpec("max_items", .int, "Accepted for compatibility."),
        ],
        returns: .object,
        examples: ["SELECT process_tracker_get(id=1).Pid AS Pid FROM scope()"]
    ) { ctx in
        guard let pid = pid(ctx), let process = tracker(ctx).read({ $0.get(pid) }) else { return .null }
        return object(process)
    }

    public static let callchain = FunctionDeclaration(
        name: "process_tracker_callchain",
        summary: "The process's ancestry from the tracker, oldest ancestor first and the process last (exited ancestors included).",
        arguments: [
            ArgumentSpec("id", .any, required: true, "The process id."),
            ArgumentSpec("max_items", .int, "At most this many entries (default 10)."),
        ],
        returns: .list,
        examples: ["SELECT process_tracker_callchain(id=1).Pid AS Chain FROM scope()"]
    ) { ctx in
        guard let pid = pid(ctx) else { return .list([]) }
        let limit = max(1, Int(clamping: ctx.int("max_items") ?? 10))
        return .list(tracker(ctx).read { $0.callchain(pid, limit: limit) }.reversed().map(object))
    }

    public static let children = FunctionDeclaration(
        name: "process_tracker_children",
        summary: "The children of a process, from the tracker (alive and exited).",
        arguments: [
            ArgumentSpec("id", .any, required: true, "The process id."),
            ArgumentSpec("max_items", .int, "At most this many entries (default 10)."),
        ],
        returns: .list,
        examples: ["SELECT len(list=process_tracker_children(id=1)) > 0 AS HasChildren FROM scope()"]
    ) { ctx in
        guard let pid = pid(ctx) else { return .list([]) }
        let limit = max(1, Int(clamping: ctx.int("max_items") ?? 10))
        return .list(tracker(ctx).read { $0.children(of: pid) }.prefix(limit).map(object))
    }

    public static let all = FunctionDeclaration(
        name: "process_tracker_all",
        summary: "Every process the tracker holds, alive and exited.",
        returns: .list,
        examples: ["SELECT len(list=process_tracker_all()) > 0 AS Tracked FROM scope()"]
    ) { ctx in
        .list(tracker(ctx).read { $0.all }.map(object))
    }

    public static let tree = FunctionDeclaration(
        name: "process_tracker_tree",
        summary: "The process tree under a process: nodes {id, name, data, start_time, end_time, children}.",
        arguments: [
            ArgumentSpec("id", .any, "The process id (default 1)."),
            ArgumentSpec("data_callback", .lambda, "A lambda turning a process entry into the node's data (default: its Data)."),
            ArgumentSpec("max_items", .int, "At most this many nodes (default 1000)."),
        ],
        returns: .dict,
        examples: ["SELECT process_tracker_tree(id=1).id AS Root FROM scope()"]
    ) { ctx in
        let root = pid(ctx) ?? 1
        let limit = max(1, Int(clamping: ctx.int("max_items") ?? 1000))
        let callback = ctx.lambda("data_callback")
        let table = tracker(ctx).read { $0 }
        guard let process = table.get(root) else { return .null }
        var budget = limit
        var seen: Set<Int32> = []
        func node(_ process: TrackedProcess, depth: Int) -> Value {
            budget -= 1
            seen.insert(process.pid)
            let data = callback.map { $0.call([object(process)], in: ctx.env) } ?? .dict(process.data)
            var kids: [Value] = []
            if depth < 64 {
                for child in table.children(of: process.pid) where budget > 0 && !seen.contains(child.pid) {
                    kids.append(node(child, depth: depth + 1))
                }
            }
            return .dict(Dict([
                ("id", .int(Int64(process.pid))), ("name", process.data["Name"] ?? .null), ("data", data),
                ("start_time", process.startTime.map { .timestamp($0) } ?? .null),
                ("end_time", process.endTime.map { .timestamp($0) } ?? .null), ("children", .list(kids)),
            ]))
        }
        return node(process, depth: 0)
    }

    public static let updates = PluginDeclaration(
        name: "process_tracker_updates",
        summary: "Changes to the process tracker as they happen: update_type start, exit, or stats (after each full sync). Never ends.",
        columns: [
            ColumnSpec("id", .int, "The process id (0 for stats)."), ColumnSpec("parent_id", .int, "Its parent."),
            ColumnSpec("update_type", .string, "start, exit or stats."), ColumnSpec("start_time", .timestamp, ""),
            ColumnSpec("end_time", .timestamp, ""), ColumnSpec("data", .dict, "The process's facts (stats: table sizes)."),
        ],
        permissions: [.machineState]
    ) { ctx in
        let tracker = tracker(ctx)
        let (id, queue) = tracker.listen()
        queue.offer(tracker.statsUpdate().row)
        let cancellation = ctx.context.cancellation
        var closed = false
        return GeneratorCursor(onClose: {
            closed = true
            tracker.stopListening(id)
        }) {
            while !closed {
                if cancellation.isCancelled {
                    tracker.stopListening(id)
                    throw QueryCancelled()
                }
                if let row = queue.take(timeout: 0.25) { return row }
                if queue.isFinished { return nil }
            }
            return nil
        }
    }

    public static let install = FunctionDeclaration(
        name: "process_tracker",
        summary: "Feeds the process tracker from VQL: sync_query (full listings, every sync_period ms) and update_query "
            + "(a never-ending stream of start/exit updates) replace the built-in feed while this query runs.",
        arguments: [
            ArgumentSpec("sync_query", .query, "Rows id, parent_id, start_time, data: a full listing (usually from pslist())."),
            ArgumentSpec("sync_period", .int, "Milliseconds between syncs (default 5000)."),
            ArgumentSpec("update_query", .query, "Rows id, parent_id, update_type (start/exit), start_time, end_time, data."),
            ArgumentSpec("max_size", .int, "Exited processes remembered (default 10000)."),
            ArgumentSpec("max_expiry", .int, "Accepted for compatibility."),
            ArgumentSpec("enrichments", .stringList, "Accepted for compatibility."),
            ArgumentSpec("cache", .string, "Accepted for compatibility (the tracker lives in memory)."),
        ],
        returns: .dict,
        permissions: [.machineState]
    ) { ctx in
        let tracker = ProcessTracker.tracker(ctx.context)
        var sync: StoredQuery?, update: StoredQuery?
        if case .query(let q) = ctx.value("sync_query") ?? .null { sync = q }
        if case .query(let q) = ctx.value("update_query") ?? .null { update = q }
        let period = max(0.5, Double(ctx.int("sync_period") ?? 5000) / 1000)
        let maxSize = ctx.int("max_size").map { Int(clamping: $0) }
        tracker.installVQL(sync: sync, update: update, syncPeriod: period, maxSize: maxSize,
                           cancellation: ctx.context.cancellation, logger: ctx.context.logger)
        return .dict(Dict([("sync_period", .double(period)), ("max_size", .from(maxSize ?? tracker.read { $0.maxExited }))]))
    }
}
