import Foundation
import PrivateFiles
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// What isolation applied, kept in `<state>/isolation/state.json` (0600) so it can be reported,
/// lifted exactly, and watched by the dead man's switch.
struct IsolationRecord: Codable, Sendable {
    var id: String
    var namespace: String?
    var plan: IsolationPlan
    var deadmanSeconds: Int
    var watchdogPid: Int32?
    var appliedAt: Double
    var reason: String
}

/// `isolate()`, `unisolate()` and `isolation_status()`: cut the host off every network peer but
/// loopback, the Quarry server(s) and the DNS resolvers named, with nftables in a table of
/// Quarry's own, and lift it again by deleting exactly that table. A dead man's switch lifts it by
/// itself when the heartbeat file is not refreshed in time (the agent refreshes it on every
/// message from the server), so a mistake cannot strand the host.
public enum Isolation {
    static func folder(_ ctx: CallContext) -> String { ResponseSettings.stateRoot(ctx.context) + "/isolation" }

    /// Refreshes the dead man's switch: call whenever the server was reached.
    public static func heartbeat(stateRoot: String) {
        let path = stateRoot + "/isolation/heartbeat"
        guard FileManager.default.fileExists(atPath: stateRoot + "/isolation/state.json") else { return }
        if utimes(path, nil) != 0 { _ = try? PrivateFile.write(Data(), to: path) }
    }

    /// Whether isolation is in force: its record exists (applying writes it, lifting — by
    /// `unisolate` or by the dead man's switch — removes it). Told to the server at each connection.
    public static func isInForce(stateRoot: String) -> Bool {
        FileManager.default.fileExists(atPath: stateRoot + "/isolation/state.json")
    }

    static let statusSchema = Schema(["Isolated", "Id", "Namespace", "Servers", "Resolvers", "DeadmanSeconds", "AppliedAt", "Reason", "Table"], caseInsensitiveFallback: true)

    static func statusRow(_ record: IsolationRecord?, tableExists: Bool) -> Value {
        .dict(Dict(schema: statusSchema, values: [
            .bool(tableExists), .string(record?.id ?? ""), .string(record?.namespace ?? ""),
            .list((record?.plan.servers ?? []).map { .string($0.label) }),
            .list((record?.plan.resolvers ?? []).map { .string($0) }), .int(Int64(record?.deadmanSeconds ?? 0)),
            record.map { .timestamp(Timestamp(seconds: $0.appliedAt)) } ?? .null, .string(record?.reason ?? ""), .string("inet \(IsolationPlan.table)"),
        ]))
    }

    static func load(_ ctx: CallContext) -> IsolationRecord? {
        FileManager.default.contents(atPath: folder(ctx) + "/state.json").flatMap { try? JSONDecoder().decode(IsolationRecord.self, from: $0) }
    }

    public static let isolate = FunctionDeclaration(
        name: "isolate",
        summary: "Cuts the host off the network except loopback, the Quarry server(s) and the DNS resolvers given (nftables table inet quarry_isolation); returns the state, NULL on failure.",
        arguments: [
            ArgumentSpec("servers", .stringList, "Server URLs or host[:port] to keep reachable (default: the agent's configured server URLs)."),
            ArgumentSpec("dns", .stringList, "Numeric addresses of DNS resolvers to keep reachable."),
            ArgumentSpec("deadman", .int, "Seconds without a heartbeat from the server after which isolation lifts itself (default 600; 0 disables)."),
            ArgumentSpec("netns", .string, "Act in this network namespace (tests) instead of the agent's own."),
            ArgumentSpec("reason", .string, "Why: written to the audit journal."),
        ],
        returns: .dict,
        examples: ["SELECT isolate(servers=['https://quarry.example:8000/'], netns='no-such-namespace') AS State FROM scope()"],
        permissions: [.remediation]
    ) { ctx in
        guard ResponseAudit.allowed(ctx) else { return .null }
        do {
            return try apply(ctx)
        } catch {
            ResponseAudit.record(ctx, action: "isolate", ["failed": "\(error)"], level: .error)
            return .null
        }
    }

    static func apply(_ ctx: CallContext) throws -> Value {
        let nft = try Nft(namespace: ctx.string("netns"))
        let given = (ctx.strings("servers") ?? []).filter { !$0.isEmpty }
        let entries = given.isEmpty ? ResponseSettings.servers(ctx.context) : given
        guard !entries.isEmpty else { throw ResponseError("no server address: isolating would cut the host off Quarry too") }
        let resolvers = (ctx.strings("dns") ?? []).filter { !$0.isEmpty }
        for r in resolvers where !IsolationPlan.isNumeric(r) { throw ResponseError("DNS resolver '\(r)' must be a numeric address") }
        let plan = IsolationPlan(servers: try entries.flatMap { try IsolationPlan.peers($0) }, resolvers: resolvers)
        let deadman = Int(clamping: max(0, ctx.int("deadman") ?? 600))
        let dir = folder(ctx)
        try ResponseSettings.privateFolder(dir)
        var record = IsolationRecord(id: "I." + String(format: "%016llx", UInt64.random(in: 0...UInt64.max)), namespace: nft.namespace,
                                     plan: plan, deadmanSeconds: deadman, watchdogPid: nil, appliedAt: Date().timeIntervalSince1970,
                                     reason: ctx.string("reason") ?? "")
        ResponseAudit.record(ctx, action: "isolate", [
            "id": record.id, "netns": nft.namespace ?? "", "servers": plan.servers.map(\.label).joined(separator: ","),
            "dns": resolvers.joined(separator: ","),
            "deadman": String(deadman), "reason": record.reason, "step": "start",
        ])
        // The heartbeat and the record exist before the table does: the switch is armed first.
        try PrivateFile.write(Data(), to: dir + "/heartbeat")
        try PrivateFile.write(try JSONEncoder().encode(record), to: dir + "/state.json")
        do {
            try nft.run(["-f", "-"], input: plan.script)
            if deadman > 0 {
                record.watchdogPid = try nft.startDeadman(id: record.id, seconds: deadman, statePath: dir + "/state.json",
                                                          heartbeat: dir + "/heartbeat", audit: ResponseSettings.stateRoot(ctx.context) + "/audit.jsonl")
                try PrivateFile.write(try JSONEncoder().encode(record), to: dir + "/state.json")
            }
        } catch {
            _ = try? nft.run(["delete", "table", "inet", IsolationPlan.table])
            unlink(dir + "/state.json")
            throw error
        }
        ResponseAudit.record(ctx, action: "isolate", ["id": record.id, "step": "done", "watchdog_pid": record.watchdogPid.map { String($0) } ?? ""])
        return statusRow(record, tableExists: true)
    }

    public static let unisolate = FunctionDeclaration(
        name: "unisolate",
        summary: "Lifts isolation: deletes Quarry's nftables table (nothing else) and the isolation record; returns the state, NULL on failure.",
        arguments: [
            ArgumentSpec("netns", .string, "Act in this network namespace (tests) instead of the agent's own."),
            ArgumentSpec("reason", .string, "Why: written to the audit journal."),
        ],
        returns: .dict,
        examples: ["SELECT unisolate(netns='no-such-namespace') AS State FROM scope()"],
        permissions: [.remediation]
    ) { ctx in
        guard ResponseAudit.allowed(ctx) else { return .null }
        do {
            let record = load(ctx)
            let nft = try Nft(namespace: ctx.string("netns") ?? record?.namespace)
            let existed = try nft.tableExists()
            ResponseAudit.record(ctx, action: "unisolate", [
                "id": record?.id ?? "", "netns": nft.namespace ?? "", "table_present": String(existed), "reason": ctx.string("reason") ?? "",
            ])
            if existed { try nft.run(["delete", "table", "inet", IsolationPlan.table]) }
            unlink(folder(ctx) + "/state.json")
            unlink(folder(ctx) + "/heartbeat")
            return statusRow(record, tableExists: false)
        } catch {
            ResponseAudit.record(ctx, action: "unisolate", ["failed": "\(error)"], level: .error)
            return .null
        }
    }

    public static let status = PluginDeclaration(
        name: "isolation_status",
        summary: "Whether the host is isolated (Quarry's nftables table is present) and what isolation allows.",
        arguments: [ArgumentSpec("netns", .string, "Look in this network namespace instead of the agent's own.")],
        columns: [
            ColumnSpec("Isolated", .bool, "Quarry's table is present."), ColumnSpec("Id", .string, "The isolation id (I. and hex)."),
            ColumnSpec("Namespace", .string, "Network namespace acted in (empty: the host's)."),
            ColumnSpec("Servers", .stringList, "Server addresses kept reachable."), ColumnSpec("Resolvers", .stringList, "DNS resolvers kept reachable."),
            ColumnSpec("DeadmanSeconds", .int, "Heartbeat timeout after which isolation lifts itself (0: none)."),
            ColumnSpec("AppliedAt", .timestamp, "When it was applied."), ColumnSpec("Reason", .string, "Why, as given."),
            ColumnSpec("Table", .string, "The nftables table used."),
        ],
        examples: ["SELECT Isolated, Servers FROM isolation_status(netns='no-such-namespace')"],
        permissions: [.remediation]
    ) { ctx in
        guard ResponseAudit.allowed(ctx) else { return ArrayCursor([]) }
        let record = load(ctx)
        do {
            let nft = try Nft(namespace: ctx.string("netns") ?? record?.namespace)
            return ArrayCursor([statusRow(record, tableExists: try nft.tableExists())])
        } catch {
            ctx.log(.error, "isolation_status: \(error)")
            return ArrayCursor([statusRow(record, tableExists: false)])
        }
    }
}
