import Foundation
import QuarryHost
import Testing
import VQL
@testable import QuarryEvents

/// The process tracker service on real processes: fed by events (eBPF or the process
/// connector) or by polling /proc, it remembers processes after they exit.
extension KernelSuite {
@Suite struct ProcessTrackerTests {
    /// A sleeper whose argument is its marker ("30.NNNNNN": sleep accepts it).
    static func sleeper(_ marker: String) throws -> Process {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = [marker]
        child.standardInput = FileHandle.nullDevice
        try child.run()
        return child
    }

    /// Start, exit, and what stays known afterwards, through the VQL functions.
    static func checkLifecycle(_ tracker: ProcessTracker, feed: ProcessTracker.FeedKind) throws {
        let marker = "30.\(UInt32.random(in: 100_000...999_999))"
        let (session, logger) = Events.session(tracker: tracker)
        _ = try session.run("SELECT * FROM process_tracker_pslist(pid=1)")
        #expect(Events.wait { tracker.feedKind == feed })
        let child = try sleeper(marker)
        let pid = child.processIdentifier
        #expect(Events.wait(8) { tracker.read { $0.get(pid)?.data["CommandLine"]?.stringValue?.contains(marker) == true } },
                "\(feed): the tracker never saw the exec of \(pid): \(logger.messages)")
        let live = try session.run("SELECT Name, Ppid, Exe, EndTime, Status FROM process_tracker_pslist(pid=\(pid))").last ?? nil
        #expect(live?.first?["Name"].stringValue == "sleep")
        #expect(live?.first?["Ppid"].intValue == Int64(getpid()))
        #expect(live?.first?["Exe"].stringValue?.hasSuffix("sleep") == true)
        #expect(live?.first?["EndTime"].isNull == true)
        kill(pid, SIGKILL)
        child.waitUntilExit()
        #expect(Events.wait(8) { tracker.read { $0.get(pid)?.endTime != nil } }, "\(feed): the exit of \(pid) was not seen")
        let rows = try session.run("""
            SELECT process_tracker_get(id=\(pid)).Name AS Name,
                   process_tracker_get(id=\(pid)).Data.CommandLine AS CommandLine,
                   process_tracker_get(id=\(pid)).EndTime AS EndTime,
                   process_tracker_get(id=\(pid)).Status AS Status,
                   process_tracker_callchain(id=\(pid)).Pid AS Chain,
                   process_tracker_children(id=\(getpid()), max_items=100000).Pid AS Children
            FROM scope()
            """).last ?? nil
        let row = rows?.first ?? .null
        #expect(row["Name"].stringValue == "sleep")
        #expect(row["CommandLine"].stringValue?.contains(marker) == true)
        #expect(!row["EndTime"].isNull)
        #expect(row["Status"].stringValue == "exited")
        let chain = row["Chain"].listElements?.compactMap(\.intValue) ?? []
        #expect(chain.last == Int64(pid))
        #expect(chain.dropLast().last == Int64(getpid()))
        #expect(row["Children"].listElements?.compactMap(\.intValue).contains(Int64(pid)) == true)
    }

    @Test(.enabled(if: Events.bpfAvailable, Events.skipMessage))
    func fedByEBPF() throws {
        let hub = Events.hub()
        let tracker = ProcessTracker(hub: hub)
        defer { tracker.stop() }
        // The sleeper may start while BPF is still loading: the tracker lists /proc once events
        // flow, so it is known either way.
        try Self.checkLifecycle(tracker, feed: .events)
        #expect(hub.isBPFLoaded, "\(hub.subscriberCount) subscribers; refusal: \(hub.bpfRefusal ?? "none"); \(tracker.feedKind)")
    }

    @Test(.enabled(if: Events.isRoot, "the process connector needs root"))
    func fedByTheProcessConnector() throws {
        let tracker = ProcessTracker(hub: Events.hub(allowBPF: false))
        defer { tracker.stop() }
        try Self.checkLifecycle(tracker, feed: .events)
    }

    @Test func fedByPollingProc() throws {
        let tracker = ProcessTracker(hub: nil)
        tracker.pollPeriod = 0.3
        defer { tracker.stop() }
        try Self.checkLifecycle(tracker, feed: .polling)
    }

    @Test func updatesStreamStartsExitsAndStats() throws {
        let tracker = ProcessTracker(hub: nil)
        tracker.pollPeriod = 0.3
        defer { tracker.stop() }
        let watch = Watch("SELECT * FROM process_tracker_updates()", tracker: tracker)
        defer { watch.stop() }
        // The first stats row follows the first full listing: a process started after it is new.
        #expect(watch.first(within: 10) { $0["update_type"].stringValue == "stats" } != nil)
        let child = try Self.sleeper("30.\(UInt32.random(in: 100_000...999_999))")
        let pid = Int64(child.processIdentifier)
        #expect(watch.first(within: 5) { $0["update_type"].stringValue == "start" && $0["id"].intValue == pid } != nil)
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        let exit = watch.first(within: 5) { $0["update_type"].stringValue == "exit" && $0["id"].intValue == pid }
        #expect(exit?["end_time"].isNull == false)
    }
}
}
