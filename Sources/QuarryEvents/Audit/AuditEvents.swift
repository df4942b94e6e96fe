import Foundation
import QuarryHost
import VQL

/// Gathers the records of one audit event (they share a serial: SYSCALL, EXECVE, CWD, PATH,
/// PROCTITLE, … then EOE) and turns each event into the row go-libaudit's coalescer produces
/// (Velociraptor's audit() and watch_auditd() rows): Timestamp, Sequence, Category,
/// RecordType, Result, Session, Tags, Summary, User, Process, Data, Paths. Pending events are
/// bounded (the oldest is emitted incomplete) and time out when no EOE comes.
final class AuditCoalescer {
    private var pending: [UInt64: (records: [AuditRecord], since: Date)] = [:]
    private let maxPending = 1024
    private let timeout: Double

    init(timeout: Double = 2) { self.timeout = timeout }

    /// Adds a record; returns the events it completes.
    func add(_ record: AuditRecord) -> [Value] {
        var done: [Value] = []
        if record.type == "EOE" {
            if let entry = pending.removeValue(forKey: record.serial) { done.append(AuditEventRow.make(entry.records)) }
            return done
        }
        pending[record.serial, default: ([], Date())].records.append(record)
        // User-space messages are whole by themselves.
        if AuditEventRow.standalone(record.type), let entry = pending.removeValue(forKey: record.serial) {
            done.append(AuditEventRow.make(entry.records))
        }
        if pending.count > maxPending, let oldest = pending.min(by: { $0.value.since < $1.value.since }) {
            pending.removeValue(forKey: oldest.key)
            done.append(AuditEventRow.make(oldest.value.records))
        }
        return done
    }

    /// Events that waited longer than the timeout for their EOE.
    func expired(now: Date = Date()) -> [Value] {
        let stale = pending.filter { now.timeIntervalSince($0.value.since) >= timeout }.sorted { $0.key < $1.key }
        for (serial, _) in stale { pending.removeValue(forKey: serial) }
        return stale.map { AuditEventRow.make($0.value.records) }
    }
}

/// The coalesced event row.
enum AuditEventRow {
    static func standalone(_ type: String) -> Bool {
        guard let number = AuditRecord.typeNames.first(where: { $0.value == type })?.key else { return false }
        return (1100...1299).contains(number) || (2100...2999).contains(number)
    }

    static let actions: [String: String] = [
        "59": "executed", "322": "executed", "2": "opened-file", "257": "opened-file", "85": "opened-file",
        "42": "connected-to", "43": "accepted-connection-from", "288": "accepted-connection-from", "49": "bound-socket",
        "87": "deleted", "263": "deleted", "82": "renamed", "316": "renamed", "90": "changed-file-permissions-of",
        "92": "changed-file-ownership-of", "101": "traced", "105": "changed-identity-of", "175": "loaded-kernel-module",
        "313": "loaded-kernel-module", "165": "mounted", "166": "unmounted",
    ]

    static func name(forID id: String?) -> String {
        guard let id, let number = UInt32(id) else { return "" }
        if number == UInt32.max { return "unset" }
        return ProcessRow.userName(number) ?? id
    }

    static func make(_ records: [AuditRecord]) -> Value {
        guard let first = records.first else { return .null }
        let primary = records.first { $0.type == "SYSCALL" } ?? first
        func value(_ name: String) -> String? {
            for record in [primary] + records where record.field(name) != nil { return record.field(name) }
            return nil
        }
        let syscall = primary.type == "SYSCALL"
        let result: String
        switch (value("success") ?? value("res") ?? "").lowercased() {
        case "yes", "success", "1": result = "success"
        case "no", "failed", "0": result = "fail"
        default: result = "unknown"
        }
        var tags: [Value] = []
        if let key = value("key"), key != "(null)" {
            tags = key.split(whereSeparator: { $0 == "\u{1}" || $0 == " " }).map { .string(String($0)) }
        }
        let args: [Value] = records.first { $0.type == "EXECVE" }.map { execve in
            let count = Int(execve.field("argc") ?? "") ?? execve.fields.count
            return (0..<count).compactMap { execve.field("a\($0)").map { .string($0) } }
        } ?? []
        let paths: [Value] = records.filter { $0.type == "PATH" }.map { record in
            .dict(Dict(record.fields.map { ($0.0, Value.string($0.1)) }))
        }
        let exe = value("exe") ?? ""
        let objectPath = records.filter { $0.type == "PATH" }.first { $0.field("nametype") != "PARENT" }?.field("name")
        let idNames = ["auid", "uid", "euid", "suid", "fsuid", "ouid"]
        let groupNames = ["gid", "egid", "sgid", "fsgid", "ogid"]
        var ids: [(String, Value)] = []
        var names: [(String, Value)] = []
        for key in idNames + groupNames {
            guard let id = primary.field(key) else { continue }
            ids.append((key, .string(id)))
            if idNames.contains(key) { names.append((key, .string(name(forID: id)))) }
        }
        let placed: Set<String> = Set(idNames + groupNames + ["pid", "ppid", "comm", "exe", "ses", "key", "success", "res", "cwd", "proctitle"])
        let data = Dict(primary.fields.filter { !placed.contains($0.0) }.map { ($0.0, Value.string($0.1)) })
        let summary = Dict([
            ("Actor", .dict(Dict([("Primary", .string(name(forID: value("auid")))), ("Secondary", .string(name(forID: value("uid"))))]))),
            ("Action", .string(syscall ? actions[value("syscall") ?? ""] ?? "triggered-audit-rule" : primary.type.lowercased().replacingOccurrences(of: "_", with: "-"))),
            ("Object", .dict(Dict([("Type", .string(objectPath != nil ? "file" : "")), ("Primary", .string(objectPath ?? exe))]))),
            ("How", .string(exe)),
        ])
        let process = Dict([
            ("PID", .string(value("pid") ?? "")), ("PPID", .string(value("ppid") ?? "")),
            ("Title", .string(value("proctitle") ?? "")), ("Name", .string(value("comm") ?? "")),
            ("Exe", .string(exe)), ("CWD", .string(records.first { $0.type == "CWD" }?.field("cwd") ?? "")),
            ("Args", .list(args)),
        ])
        return .dict(Dict([
            ("Timestamp", .timestamp(Timestamp(seconds: first.seconds))), ("Sequence", .int(Int64(clamping: first.serial))),
            ("Category", .string(category(primary.type, syscall: syscall))), ("RecordType", .string(primary.type.lowercased())),
            ("Result", .string(result)), ("Session", .string(value("ses") ?? "")), ("Tags", .list(tags)),
            ("Summary", .dict(summary)),
            ("User", .dict(Dict([("IDs", .dict(Dict(ids))), ("Names", .dict(Dict(names)))]))),
            ("Process", .dict(process)), ("Data", .dict(data)), ("Paths", .list(paths)),
            ("Records", .from(records.count)),
        ]))
    }

    static func category(_ type: String, syscall: Bool) -> String {
        if syscall { return "audit-rule" }
        switch type {
        case "USER_LOGIN", "USER_LOGOUT", "LOGIN": return "user-login"
        case "USER_AUTH", "USER_ACCT", "USER_CHAUTHTOK": return "user-auth"
        case "CRED_ACQ", "CRED_DISP", "CRED_REFR", "USER_START", "USER_END": return "user-session"
        case "CONFIG_CHANGE", "USYS_CONFIG", "DAEMON_CONFIG": return "configuration"
        case "ADD_USER", "DEL_USER", "ADD_GROUP", "DEL_GROUP", "USER_MGMT": return "user-management"
        case "SERVICE_START", "SERVICE_STOP": return "system-services"
        case "AVC", "USER_AVC", "SELINUX_ERR": return "mac-decision"
        case "ANOM_PROMISCUOUS", "ANOM_ABEND", "ANOM_LINK": return "anomaly"
        default: return "kernel"
        }
    }
}
