import Foundation
import PrivateFiles
#if canImport(Glibc)
import Glibc
#endif

extension Isolation {
    /// Re-applies isolation recorded in the state folder (the agent calls this at start): after a
    /// reboot or a flushed ruleset the table is added again, and a dead man's switch that is no
    /// longer running is started again. Returns what was done, nil when the host is not isolated.
    public static func reapply(stateRoot: String) throws -> String? {
        let dir = stateRoot + "/isolation"
        guard let data = FileManager.default.contents(atPath: dir + "/state.json") else { return nil }
        var record = try JSONDecoder().decode(IsolationRecord.self, from: data)
        let nft = try Nft(namespace: record.namespace)
        var done: [String] = []
        if try !nft.tableExists() {
            try nft.run(["-f", "-"], input: record.plan.script)
            done.append("table re-added")
        }
        if record.deadmanSeconds > 0 && !watchdogRunning(record.watchdogPid) {
            heartbeat(stateRoot: stateRoot)
            record.watchdogPid = try nft.startDeadman(id: record.id, seconds: record.deadmanSeconds, statePath: dir + "/state.json",
                                                      heartbeat: dir + "/heartbeat", audit: stateRoot + "/audit.jsonl")
            try PrivateFile.write(try JSONEncoder().encode(record), to: dir + "/state.json")
            done.append("dead man's switch restarted")
        }
        return "isolation \(record.id): " + (done.isEmpty ? "in place" : done.joined(separator: ", "))
    }

    /// Whether `pid` is a running dead man's switch (its command line names it).
    static func watchdogRunning(_ pid: Int32?) -> Bool {
        guard let pid, pid > 0, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "quarry-deadman" }
    }
}
