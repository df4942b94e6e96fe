import CLibBPF
import Foundation
import VQL

/// `watch_ebpf()` and `ebpf_events()`: kernel events as never-ending queries, from the
/// process's one shared event hub.
public enum WatchEBPF {
    public static var plugins: [PluginDeclaration] { [watch, events] }

    /// Where a session's hub comes from (tests inject their own); the process-wide one otherwise.
    public static let serviceKey = "events.hub"

    static func hub(_ context: QueryContext) -> EventHub {
        context.service(serviceKey, as: EventHub.self) ?? EventHub.shared
    }

    /// The pseudo event that reports kernel ring-buffer losses as rows.
    static let lostEvents = "lost_events"

    public static let watch = PluginDeclaration(
        name: "watch_ebpf",
        summary: "Kernel events as they happen (Tracee's event names and row shape: System, EventData). Never ends; "
            + "comm=, uid= and path_prefix= filter in the kernel. Without BPF, process and file events come from the "
            + "process connector and fanotify/inotify, and the log says which events cannot be provided.",
        arguments: [
            ArgumentSpec("events", .stringList, "Event names (see ebpf_events()); 'lost_events' adds a row whenever the kernel drops events."),
            ArgumentSpec("include_env", .bool, "Add the environment to sched_process_exec events."),
            ArgumentSpec("comm", .stringList, "Only these process names (the kernel's 15-character name), filtered in the kernel."),
            ArgumentSpec("uid", .any, "Only this uid or list of uids, filtered in the kernel."),
            ArgumentSpec("path_prefix", .stringList, "Only paths starting with one of these (file and exec events), filtered in the kernel."),
            ArgumentSpec("regex_prefilter", .string, "Only events whose row (as JSON) matches this regex."),
            ArgumentSpec("policy", .string, "A Tracee policy (not supported: use events, comm, uid and path_prefix)."),
        ],
        columns: [
            ColumnSpec("System", .dict, "Timestamp, ProcessID, ThreadID, ParentProcessID, HostProcessID, HostParentProcessID, UserID, ProcessName, EventName, ReturnValue, Source, …"),
            ColumnSpec("EventData", .dict, "The event's arguments under Tracee's names (e.g. sched_process_exec: cmdpath, pathname, argv, dev, inode)."),
        ],
        examples: [],
        permissions: [.machineState]
    ) { ctx in
        guard ctx.context.require(.machineState, for: "watch_ebpf") else { return ArrayCursor([]) }
        if ctx.has("policy") {
            ctx.log(.error, "watch_ebpf: policy= (Tracee policies) is not supported; use events=, comm=, uid= and path_prefix=")
            return ArrayCursor([])
        }
        let names = ctx.strings("events") ?? []
        var types: Set<UInt32> = []
        for name in names where name != lostEvents {
            guard let kind = EventCatalog.kind(named: name) else {
                var message = "watch_ebpf: unknown event '\(name)'"
                if let suggestion = NameSuggester.closest(to: name, in: EventCatalog.all.map(\.name)) { message += " (did you mean '\(suggestion)'?)" }
                ctx.log(.error, message + "; ebpf_events() lists the events")
                continue
            }
            types.insert(kind.type)
        }
        guard !types.isEmpty else {
            ctx.log(.error, "watch_ebpf: no event to watch (events=[...], see ebpf_events())")
            return ArrayCursor([])
        }
        var uids: [UInt32] = []
        for value in uidValues(ctx.value("uid")) {
            guard let uid = UInt32(exactly: value) else {
                ctx.log(.error, "watch_ebpf: uid=\(value) is not a uid")
                return ArrayCursor([])
            }
            uids.append(uid)
        }
        var comms = ctx.strings("comm") ?? []
        var prefixes = ctx.strings("path_prefix") ?? []
        // What the query's WHERE requires goes into the kernel filter too (arguments win).
        let hints = WhereFilter(ctx.constraints)
        var derived: [String] = []
        if let names = hints.eventNames {
            let wanted = types.filter { type in EventCatalog.kind(type: type).map { names.contains($0.name) } ?? true }
            if !wanted.isEmpty && wanted != types {
                types = wanted
                derived.append("events \(names.sorted().joined(separator: ", "))")
            }
        }
        // A DNS packet's process is found from its socket, not from the task the kernel sees.
        let processKnownInKernel = !types.contains(UInt32(QE_DNS.rawValue))
        if comms.isEmpty, processKnownInKernel, let names = hints.comms, !names.isEmpty {
            comms = names
            derived.append("process names \(names.joined(separator: ", "))")
        }
        if uids.isEmpty, processKnownInKernel, let ids = hints.uids, !ids.isEmpty {
            uids = ids
            derived.append("uids \(ids.map(String.init).joined(separator: ", "))")
        }
        if prefixes.isEmpty, let paths = hints.pathPrefixes, !paths.isEmpty {
            prefixes = paths
            derived.append("path prefixes \(paths.joined(separator: ", "))")
        }
        if !derived.isEmpty { ctx.log(.debug, "watch_ebpf: from WHERE, filtered in the kernel: " + derived.joined(separator: "; ")) }
        let filter = EventFilter(
            types: types, comms: comms, uids: uids, pathPrefixes: prefixes,
            includeEnvironment: ctx.bool("include_env") ?? false)
        var prefilter: CompiledRegex?
        if let pattern = ctx.string("regex_prefilter") {
            guard let compiled = ctx.context.regex(pattern, caseInsensitive: false) else { return ArrayCursor([]) }
            prefilter = compiled
        }
        let subscription = hub(ctx.context).subscribe(
            filter, name: "watch_ebpf", logger: ctx.context.logger, lossRows: names.contains(lostEvents))
        let cursor = SubscriptionCursor(subscription, cancellation: ctx.context.cancellation)
        guard let prefilter else { return cursor }
        return GeneratorCursor(onClose: { cursor.close() }) {
            while let row = try cursor.next() {
                if prefilter.matches(JSONWriter.string(row)) { return row }
            }
            return nil
        }
    }

    static func uidValues(_ value: Value?) -> [Int64] {
        guard let value else { return [] }
        if let list = value.listElements { return list.compactMap { $0.reduced().intValue } }
        return value.intValue.map { [$0] } ?? []
    }

    public static let events = PluginDeclaration(
        name: "ebpf_events",
        summary: "The events watch_ebpf() can report, and what provides each one now (ebpf, a fallback, or nothing and why).",
        columns: [
            ColumnSpec("Name", .string, "The event name for watch_ebpf(events=)."),
            ColumnSpec("Description", .string, "What the event reports."),
            ColumnSpec("Source", .string, "ebpf, proc_connector, fanotify, inotify, unavailable, or idle (nobody watches it)."),
            ColumnSpec("Reason", .string, "Why it is unavailable, when it is."),
            ColumnSpec("Fallback", .string, "What would provide it without BPF."),
        ],
        examples: ["SELECT Name FROM ebpf_events() WHERE Name =~ 'exec'"]
    ) { ctx in
        let hub = hub(ctx.context)
        let rows: [Value] = EventCatalog.all.map { kind in
            let state = hub.state(of: kind.type)
            var reason = ""
            if case .unavailable(let why) = state { reason = why }
            return .dict(Dict([
                ("Name", .string(kind.name)), ("Description", .string(kind.summary)),
                ("Source", .string(state?.name ?? "idle")), ("Reason", .string(reason)),
                ("Fallback", .string(kind.fallback?.rawValue ?? "")),
            ]))
        }
        return ArrayCursor(rows)
    }
}
