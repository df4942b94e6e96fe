import Foundation
import Testing
import VQL
@testable import QuarryEvents

/// Followers of growing files, the journal and the audit log, on real files and processes.
@Suite struct FileFollowerTests {
    static func append(_ path: String, _ text: String) {
        guard let handle = FileHandle(forWritingAtPath: path) else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            return
        }
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
        try? handle.close()
    }

    static func strings(_ lines: [[UInt8]]) -> [String] { lines.map { String(decoding: $0, as: UTF8.self) } }

    @Test func newLinesRotationTruncationAndLateFiles() throws {
        let dir = Events.scratch("follow")
        defer { Events.remove(dir) }
        let path = dir + "/app.log"
        Self.append(path, "old line\n")
        let follower = FileFollower(path: path, maxLine: 256)
        #expect(follower.poll().isEmpty)
        Self.append(path, "one\ntwo\nhalf")
        #expect(Self.strings(follower.poll()) == ["one", "two"])
        Self.append(path, " done\r\n")
        #expect(Self.strings(follower.poll()) == ["half done"])
        // Rotation: the old file is finished, the new one read from its start.
        Self.append(path, "last of old\n")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        Self.append(path, "first of new\n")
        #expect(Self.strings(follower.poll()) == ["last of old", "first of new"])
        // Truncation in place: reading restarts at 0.
        try Data().write(to: URL(fileURLWithPath: path))
        _ = follower.poll()
        Self.append(path, "after truncation\n")
        #expect(Self.strings(follower.poll()) == ["after truncation"])
        // Lines longer than the limit are cut, and the next line is intact.
        Self.append(path, String(repeating: "x", count: 1000) + "\nshort\n")
        let lines = follower.poll()
        #expect(lines.count == 2)
        #expect(lines.first?.count == 256)
        #expect(Self.strings(Array(lines.dropFirst())) == ["short"])
        // A file that does not exist yet is read from its start once it appears.
        let late = FileFollower(path: dir + "/late.log")
        #expect(late.poll().isEmpty)
        Self.append(dir + "/late.log", "born\n")
        #expect(Self.strings(late.poll()) == ["born"])
    }
}

@Suite(.serialized) struct WatchFilePluginTests {
    @Test func syslogJsonlAndCsvRowsAsTheyAreWritten() throws {
        let dir = Events.scratch("watch")
        defer { Events.remove(dir) }
        FileFollowerTests.append(dir + "/a.log", "before\n")
        FileFollowerTests.append(dir + "/b.jsonl", "{\"n\": 0}\n")
        FileFollowerTests.append(dir + "/c.csv", "Name,Size\nold,1\n")
        let syslog = Watch("SELECT OSPath, Line FROM watch_syslog(filename='\(dir)/a.log')")
        let jsonl = Watch("SELECT * FROM watch_jsonl(filename='\(dir)/b.jsonl')")
        let csv = Watch("SELECT * FROM watch_csv(filename='\(dir)/c.csv')")
        defer {
            syslog.stop()
            jsonl.stop()
            csv.stop()
        }
        Thread.sleep(forTimeInterval: 0.5)
        FileFollowerTests.append(dir + "/a.log", "hello\n")
        FileFollowerTests.append(dir + "/b.jsonl", "{\"n\": 1, \"s\": \"x\"}\nnot json\n{\"n\": 2}\n")
        FileFollowerTests.append(dir + "/c.csv", "new,\"2,5\"\n")
        let line = syslog.first { $0["Line"].stringValue == "hello" }
        #expect(line?["OSPath"].stringValue == dir + "/a.log")
        #expect(!syslog.all.contains { $0["Line"].stringValue == "before" })
        #expect(jsonl.first { $0["n"].intValue == 2 } != nil)
        #expect(jsonl.all.compactMap { $0["n"].intValue } == [1, 2])
        #expect(jsonl.logger.messages.contains { $0.contains("not JSON") })
        let row = csv.first { $0["Name"].stringValue == "new" }
        #expect(row?["Size"].stringValue == "2,5")
        #expect(csv.all.count == 1)
    }

    @Test func syslogQueryFindsNewFiles() throws {
        let dir = Events.scratch("discover")
        defer { Events.remove(dir) }
        let watch = Watch("SELECT OSPath, Line FROM watch_syslog(query={ SELECT OSPath FROM glob(globs='\(dir)/*.log') })")
        defer { watch.stop() }
        // The first discovery (files that exist then are followed from their end) must be over
        // before the file appears; the query's start-up takes a while on a loaded machine.
        Thread.sleep(forTimeInterval: 2.5)
        // Discovery runs every 10 s: a file created now is read from its start when found.
        FileFollowerTests.append(dir + "/new.log", "found me\n")
        #expect(watch.first(within: 25) { $0["Line"].stringValue == "found me" }?["OSPath"].stringValue == dir + "/new.log")
    }

    @Test func watchAuditdCoalescesAppendedEvents() throws {
        let dir = Events.scratch("auditlog")
        defer { Events.remove(dir) }
        let log = dir + "/audit.log"
        FileFollowerTests.append(log, "")
        let watch = Watch("SELECT * FROM watch_auditd(filename='\(log)')")
        defer { watch.stop() }
        Thread.sleep(forTimeInterval: 0.5)
        FileFollowerTests.append(log, AuditParsingTests.execLines.joined(separator: "\n") + "\n")
        let event = watch.first { $0["Sequence"].intValue == 4242 }
        #expect(event?["Process.Exe"].stringValue == "/usr/bin/ls")
        #expect(event?["Tags"].listElements?.first?.stringValue == "procmon")
    }
}

/// A systemd-journald of the test's own (private mount namespace; its journal and sockets in
/// a scratch folder), so the host's journal is never written.
final class PrivateJournal {
    let directory: String
    let socket: String
    private let daemon: Process

    static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd-journald")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
    }

    init() throws {
        let root = Events.scratch("journal")
        directory = root + "/log"
        let sockets = root + "/sock"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: sockets, withIntermediateDirectories: true)
        socket = sockets + "/socket"
        daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        daemon.arguments = ["-m", "sh", "-c", """
            mount --make-rprivate / && mkdir -p /run/log/journal /run/systemd/journal && \
            mount --bind \(directory) /run/log/journal && mount --bind \(sockets) /run/systemd/journal && \
            exec /lib/systemd/systemd-journald
            """]
        daemon.standardOutput = FileHandle.nullDevice
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        guard Events.wait(5, { FileManager.default.fileExists(atPath: socket) }) else {
            throw JournalError(message: "journald did not start")
        }
    }

    struct JournalError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Sends one entry with the native protocol.
    func send(_ fields: [String: String]) throws {
        let text = fields.map { "\($0.key)=\($0.value)\n" }.joined()
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in socket.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Array(text.utf8).withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, pointer, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        guard sent > 0 else { throw JournalError(message: "cannot send to journald: \(String(cString: strerror(errno)))") }
    }

    deinit {
        kill(daemon.processIdentifier, SIGKILL)
        daemon.waitUntilExit()
        Events.remove((directory as NSString).deletingLastPathComponent)
    }
}

@Suite(.serialized, .enabled(if: PrivateJournal.available, "needs root and systemd-journald for a private journal"))
struct JournaldTests {
    @Test func newEntriesWithTheirFields() throws {
        let journal = try PrivateJournal()
        try journal.send(["MESSAGE": "before the watch", "SYSLOG_IDENTIFIER": "quarrytest"])
        Thread.sleep(forTimeInterval: 0.5)
        let watch = Watch("SELECT * FROM watch_journald(filename='\(journal.directory)')")
        defer { watch.stop() }
        Thread.sleep(forTimeInterval: 0.5)
        let marker = Events.marker("journal")
        try journal.send(["MESSAGE": marker, "SYSLOG_IDENTIFIER": "quarrytest", "PRIORITY": "4"])
        let entry = watch.first(within: 8) { $0["EventData.MESSAGE"].stringValue == marker }
        #expect(entry?["EventData.SYSLOG_IDENTIFIER"].stringValue == "quarrytest")
        #expect(entry?["EventData.PRIORITY"].stringValue == "4")
        #expect(entry?["EventData._PID"].stringValue == String(getpid()))
        #expect(entry?["System.Cursor"].stringValue?.isEmpty == false)
        if case .timestamp(let time) = entry?["System.Timestamp"] ?? .null {
            #expect(abs(time.seconds - Date().timeIntervalSince1970) < 30)
        } else {
            Issue.record("no timestamp")
        }
        #expect(!watch.all.contains { $0["EventData.MESSAGE"].stringValue == "before the watch" })
    }
}

@Suite(.serialized, .enabled(if: Events.isRoot && FileManager.default.isExecutableFile(atPath: "/usr/sbin/auditctl"),
                             "needs root and auditctl (Debian's auditd package)"))
struct AuditNetlinkTests {
    @Test func execRuleEventsArriveWithTheirKey() throws {
        guard !WatchAudit.auditdRunning() else {
            Issue.record("auditd is running: audit() follows its log instead; stop it to test the netlink path")
            return
        }
        let key = Events.marker("rule").replacingOccurrences(of: "-", with: "_")
        let wasEnabled = (try? Events.run("/usr/sbin/auditctl", ["-s"]).output.contains("enabled 1")) ?? false
        // Only this process's children: a rule on every execve of the machine, with no daemon
        // draining it, overflows the kernel's 64-record backlog while the rest of the suite runs,
        // and then drops records (ours among them) and stalls every exec on the machine.
        let rule = "exit,always -F arch=b64 -S execve -F ppid=\(getpid()) -k \(key)"
        let added = Events.sh("auditctl -e 1 && auditctl -a \(rule)")
        #expect(added == 0, "auditctl could not enable auditing or add the rule")
        defer {
            Events.sh("auditctl -d \(rule)")
            if !wasEnabled { Events.sh("auditctl -e 0") }
        }
        let watch = Watch("SELECT * FROM audit() WHERE '\(key)' in Tags")
        defer { watch.stop() }
        // The watch joins the multicast group on its own thread: wait until it says so, then run
        // marked programs until one is seen. On a busy machine the first may come too early, or its
        // row late: a row for any of the marked programs counts (each is checked against its own).
        #expect(Events.wait(20) { watch.logger.messages.contains { $0.contains("audit netlink group") } }, "\(watch.logger.messages)")
        var markers: [String: String] = [:] // pid -> marker
        var event: Value?
        for _ in 0..<6 where event == nil {
            let marker = Events.marker("audited")
            markers[String(try Events.run("/bin/echo", [marker]).pid)] = marker
            event = watch.first(within: 5) { markers[$0["Process.PID"].stringValue ?? ""] != nil }
        }
        let marker = markers[event?["Process.PID"].stringValue ?? ""] ?? "none"
        #expect(event != nil, "no audit row for \(markers.count) marked execs; log: \(watch.logger.messages.suffix(5))")
        #expect(event?["Process.Exe"].stringValue == "/usr/bin/echo")
        #expect(event?["Process.Args"].listElements?.compactMap(\.stringValue) == ["/bin/echo", marker])
        #expect(event?["Process.PPID"].stringValue == String(getpid()))
        #expect(event?["Result"].stringValue == "success")
        #expect(event?["Summary.Action"].stringValue == "executed")
        #expect(watch.logger.messages.contains { $0.contains("audit netlink group") })
    }
}
