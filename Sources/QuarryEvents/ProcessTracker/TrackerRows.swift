import CLibBPF
import QuarryHost
import VQL

/// Conversions between the tracker's table and rows: /proc processes, hub event rows
/// (System/EventData) and Velociraptor's update rows (id, parent_id, update_type, …).
enum TrackerRows {
    static let dataSchema = Schema(["Name", "Pid", "Ppid", "Exe", "CommandLine", "Username", "Uid", "CreateTime"])

    static func data(name: Value, pid: Int32, ppid: Int32, exe: Value, commandLine: Value, uid: Int64?, created: Timestamp?) -> Dict {
        let username: Value = uid.flatMap { UInt32(exactly: $0) }.flatMap { ProcessRow.userName($0) }.map { .string($0) }
            ?? uid.map { .string(String($0)) } ?? .null
        return Dict(schema: dataSchema, values: [
            name, .int(Int64(pid)), .int(Int64(ppid)), exe, commandLine, username, uid.map { .int($0) } ?? .null,
            created.map { .timestamp($0) } ?? .null,
        ])
    }

    static func process(from row: ProcessRow) -> TrackedProcess {
        let commandLine = row.arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        return TrackedProcess(
            pid: row.processID, ppid: row.parentID, startTime: row.startTime,
            data: data(name: .string(bytes: row.commandName), pid: row.processID, ppid: row.parentID,
                       exe: .string(bytes: row.executable), commandLine: .string(commandLine), uid: row.userID, created: row.startTime))
    }

    static func int(_ value: Value?) -> Int64? {
        guard let value = value?.reduced() else { return nil }
        if let i = value.intValue { return i }
        return value.stringValue.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
    }

    static func timestamp(_ value: Value?) -> Timestamp? {
        guard let value = value?.reduced() else { return nil }
        if case .timestamp(let t) = value { return t }
        if let seconds = value.doubleValue, seconds > 0 { return Timestamp(seconds: seconds) }
        return nil
    }

    /// Applies one hub event row (exec, fork, exit) to the table.
    static func apply(event row: Value, to table: inout ProcessTable, now: Timestamp) -> [TrackerUpdate] {
        let system = row.member("System"), data = row.member("EventData")
        guard let name = system.member("EventName").stringValue,
              let pid = int(system.member("HostProcessID")).flatMap({ Int32(exactly: $0) }) else { return [] }
        let when = timestamp(system.member("Timestamp")) ?? now
        switch name {
        case "sched_process_exec":
            let ppid = int(system.member("HostParentProcessID")).flatMap { Int32(exactly: $0) } ?? 0
            let argv = (data.member("argv").listElements ?? []).compactMap(\.stringValue)
            let start = timestamp(system.member("ThreadStartTime"))
            let process = TrackedProcess(pid: pid, ppid: ppid, startTime: start, data: TrackerRows.data(
                name: system.member("ProcessName"), pid: pid, ppid: ppid, exe: data.member("pathname"),
                commandLine: .string(argv.joined(separator: " ")), uid: int(system.member("UserID")), created: start))
            return table.start(process, at: when)
        case "sched_process_fork":
            guard let child = int(data.member("child_pid")).flatMap({ Int32(exactly: $0) }) else { return [] }
            let start = timestamp(data.member("start_time"))
            var inherited = table.get(pid)?.data ?? Dict()
            inherited["Pid"] = .int(Int64(child))
            inherited["Ppid"] = .int(Int64(pid))
            inherited["CreateTime"] = start.map { .timestamp($0) } ?? .null
            if inherited["Name"] == nil { inherited["Name"] = system.member("ProcessName") }
            return table.start(TrackedProcess(pid: child, ppid: pid, startTime: start, data: inherited), at: when)
        case "sched_process_exit":
            let code = data.member("exit_code")
            return table.exit(pid: pid, at: when, data: Dict([("ExitCode", code)])).map { [$0] } ?? []
        default:
            return []
        }
    }

    /// A process from a sync row (id, parent_id, start_time, data).
    static func process(fromUpdate row: Value) -> TrackedProcess? {
        guard let pid = int(row.member("id")).flatMap({ Int32(exactly: $0) }) else { return nil }
        let ppid = int(row.member("parent_id")).flatMap { Int32(exactly: $0) } ?? 0
        var data = Dict()
        switch row.member("data").reduced() {
        case .dict(let d): data = d
        case .object(let o): data = o.materialized()
        default: break
        }
        return TrackedProcess(pid: pid, ppid: ppid, startTime: timestamp(row.member("start_time")),
                              endTime: timestamp(row.member("end_time")), data: data)
    }

    /// Applies one update row from a VQL update query.
    static func apply(update row: Value, to table: inout ProcessTable, now: Timestamp) -> [TrackerUpdate] {
        guard let process = process(fromUpdate: row) else { return [] }
        switch row.member("update_type").stringValue ?? "" {
        case "exit":
            return table.exit(pid: process.pid, at: process.endTime ?? now).map { [$0] } ?? []
        default:
            return table.start(process, at: process.startTime ?? now)
        }
    }
}
