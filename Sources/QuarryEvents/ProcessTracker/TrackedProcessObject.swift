import QuarryHost
import VQL

/// A tracked process as a row: pslist's columns (what the tracker captured, else the live
/// /proc values while the process runs) and Velociraptor's process-entry members (Id,
/// ParentId, StartTime, EndTime, Data). An exited process keeps its captured facts; its live
/// columns (MemoryInfo, Threads, …) are null and its Status is "exited".
final class TrackedProcessObject: HostObject, @unchecked Sendable {
    let process: TrackedProcess
    private lazy var liveRow: ProcessRow? = {
        guard process.endTime == nil, let row = ProcessRow.live(pid: process.pid),
              ProcessTable.sameStart(row.startTime, process.startTime) else { return nil }
        return row
    }()

    static let columns = ["Pid", "Ppid", "Name", "Exe", "CommandLine", "Cwd", "Username", "Uid", "Gid", "CreateTime",
                          "Status", "Threads", "MemoryInfo", "Times"]

    init(_ process: TrackedProcess) { self.process = process }

    var typeName: String { "ProcessEntry" }
    var memberNames: [String] { Self.columns + ["StartTime", "EndTime"] }

    private func captured(_ key: String) -> Value? {
        guard let value = process.data[key], !value.isNull else { return nil }
        return value
    }

    func member(_ name: String) -> Value? {
        switch name {
        case "Pid": return .int(Int64(process.pid))
        case "Ppid": return .int(Int64(process.ppid))
        case "Name", "Exe", "CommandLine", "Username", "Uid":
            return captured(name) ?? liveRow?.member(name) ?? .null
        case "CreateTime", "StartTime":
            return process.startTime.map { .timestamp($0) } ?? captured("CreateTime") ?? .null
        case "EndTime": return process.endTime.map { .timestamp($0) } ?? .null
        case "Status": return process.endTime == nil ? (liveRow?.member("Status") ?? .string("unknown")) : .string("exited")
        case "Cwd", "Gid", "Threads", "MemoryInfo", "Times": return liveRow?.member(name) ?? .null
        case "Id": return .string(String(process.pid))
        case "ParentId": return .string(String(process.ppid))
        case "Data": return .dict(process.data)
        default:
            let lowered = name.lowercased()
            if let match = (memberNames + ["Id", "ParentId", "Data"]).first(where: { $0.lowercased() == lowered }) { return member(match) }
            return process.data[name]
        }
    }
}
