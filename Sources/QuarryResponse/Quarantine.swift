import Foundation
import VQL

/// `quarantine(path=)`, `quarantine_restore(id=)` and `quarantine_list()`: take a file out of reach
/// into the agent's root-only vault and put it back exactly (bytes, owner, mode, times, xattrs).
public enum Quarantine {
    static let columns: [ColumnSpec] = [
        ColumnSpec("Id", .string, "The quarantine id: Q. and 16 hex digits."),
        ColumnSpec("Path", .string, "Where the file was (and goes back to)."),
        ColumnSpec("SHA256", .string, "SHA-256 of the content."),
        ColumnSpec("Size", .int, "Bytes."),
        ColumnSpec("Uid", .int, "Owner."), ColumnSpec("Gid", .int, "Group."),
        ColumnSpec("Mode", .string, "Permission bits in octal."),
        ColumnSpec("Mtime", .timestamp, "Modification time kept."),
        ColumnSpec("Atime", .timestamp, "Access time kept."),
        ColumnSpec("Xattrs", .stringList, "Names of the extended attributes kept."),
        ColumnSpec("QuarantinedAt", .timestamp, "When it was taken."),
        ColumnSpec("Reason", .string, "Why, as given."),
    ]
    static let schema = Schema(columns.map(\.name), caseInsensitiveFallback: true)

    static func row(_ m: QuarantineManifest) -> Value {
        func time(_ seconds: Int64, _ nanos: Int64) -> Value { .timestamp(Timestamp(nanoseconds: seconds * 1_000_000_000 + nanos)) }
        return .dict(Dict(schema: schema, values: [
            .string(m.id), .string(m.path), .string(m.sha256), .int(m.stat.size), .int(Int64(m.stat.uid)), .int(Int64(m.stat.gid)),
            .string(String(m.stat.mode, radix: 8)), time(m.stat.mtime, m.stat.mtimeNanos), time(m.stat.atime, m.stat.atimeNanos),
            .list(m.xattrs.keys.sorted().map { .string($0) }), .timestamp(Timestamp(seconds: m.quarantinedAt)), .string(m.reason),
        ]))
    }

    static func vault(_ ctx: CallContext) -> Vault { Vault(root: ResponseSettings.stateRoot(ctx.context)) }

    public static let quarantine = FunctionDeclaration(
        name: "quarantine",
        summary: "Moves a file into the agent's root-only vault, keeping its hash, owner, mode, times and xattrs; returns the record (with its Id), NULL on failure.",
        arguments: [
            ArgumentSpec("path", .string, required: true, "The file (absolute path; regular files only)."),
            ArgumentSpec("reason", .string, "Why: kept in the record and the audit journal."),
        ],
        returns: .dict,
        examples: ["SELECT quarantine(path='/nonexistent/dropper') AS Held FROM scope()"],
        permissions: [.remediation]
    ) { ctx in
        guard ResponseAudit.allowed(ctx) else { return .null }
        let path = ctx.string("path") ?? ""
        let reason = ctx.string("reason") ?? ""
        ResponseAudit.record(ctx, action: "quarantine", ["path": path, "reason": reason, "step": "start"])
        do {
            let m = try vault(ctx).store(path, reason: reason)
            ResponseAudit.record(ctx, action: "quarantine", [
                "path": path, "id": m.id, "sha256": m.sha256, "size": String(m.stat.size), "step": "done",
                "owner": "\(m.stat.uid):\(m.stat.gid)", "mode": String(m.stat.mode, radix: 8),
            ])
            if m.stat.links > 1 { ctx.log(.warning, "quarantine: \(path) had \(m.stat.links) hard links; the others still reach the content") }
            return row(m)
        } catch {
            ResponseAudit.record(ctx, action: "quarantine", ["path": path, "failed": "\(error)"], level: .error)
            return .null
        }
    }

    public static let restore = FunctionDeclaration(
        name: "quarantine_restore",
        summary: "Puts a quarantined file back exactly (bytes, owner, mode, times, xattrs); refuses to replace an existing file unless overwrite=TRUE.",
        arguments: [
            ArgumentSpec("id", .string, required: true, "The quarantine id (Q. and 16 hex digits)."),
            ArgumentSpec("overwrite", .bool, "Replace a file now at the original path."),
            ArgumentSpec("reason", .string, "Why: written to the audit journal."),
        ],
        returns: .dict,
        examples: ["SELECT quarantine_restore(id='Q.0000000000000000') AS Restored FROM scope()"],
        permissions: [.remediation]
    ) { ctx in
        guard ResponseAudit.allowed(ctx) else { return .null }
        let id = ctx.string("id") ?? ""
        do {
            let (m, problems) = try vault(ctx).restore(id, overwrite: ctx.bool("overwrite") ?? false)
            ResponseAudit.record(ctx, action: "quarantine_restore", [
                "id": id, "path": m.path, "sha256": m.sha256, "reason": ctx.string("reason") ?? "",
                "xattr_failures": problems.joined(separator: "; "),
            ], level: problems.isEmpty ? .info : .warning)
            return row(m)
        } catch {
            ResponseAudit.record(ctx, action: "quarantine_restore", ["id": id, "failed": "\(error)"], level: .error)
            return .null
        }
    }

    public static let list = PluginDeclaration(
        name: "quarantine_list",
        summary: "The files held in the quarantine vault, oldest first.",
        columns: columns,
        examples: ["SELECT Id, Path, SHA256 FROM quarantine_list()"],
        permissions: [.remediation]
    ) { ctx in
        guard ResponseAudit.allowed(ctx) else { return ArrayCursor([]) }
        return ArrayCursor(vault(ctx).all().map(row))
    }
}
