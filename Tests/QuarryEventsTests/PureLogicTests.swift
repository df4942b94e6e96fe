import Foundation
import Testing
import VQL
@testable import QuarryEvents

/// The parts without I/O: the tracker's table, the DNS and audit parsers, CSV records.
@Suite struct ProcessTableTests {
    static func process(_ pid: Int32, parent: Int32, start: Double, name: String = "p") -> TrackedProcess {
        TrackedProcess(pid: pid, ppid: parent, startTime: Timestamp(seconds: start), data: Dict([("Name", .string(name))]))
    }

    @Test func exitedProcessesStayUntilTheLRUForgetsThem() {
        var table = ProcessTable(maxExited: 3)
        for pid in Int32(10)..<16 { table.start(Self.process(pid, parent: 1, start: 100), at: Timestamp(seconds: 100)) }
        for pid in Int32(10)..<16 { table.exit(pid: pid, at: Timestamp(seconds: 200 + Double(pid))) }
        #expect(table.exitedCount == 3)
        #expect(table.get(10) == nil)
        #expect(table.get(13)?.endTime == Timestamp(seconds: 213))
        #expect(table.all.map(\.pid) == [13, 14, 15])
    }

    @Test func aReusedPidEndsThePreviousProcess() {
        var table = ProcessTable()
        table.start(Self.process(50, parent: 1, start: 100, name: "old"), at: Timestamp(seconds: 100))
        // An exec of the same process updates it; a start 60 s later is another process.
        table.start(Self.process(50, parent: 1, start: 100.5, name: "exec'd"), at: Timestamp(seconds: 101))
        #expect(table.get(50)?.data["Name"]?.stringValue == "exec'd")
        let updates = table.start(Self.process(50, parent: 2, start: 160, name: "new"), at: Timestamp(seconds: 160))
        #expect(updates.map(\.kind) == [.exit, .start])
        #expect(table.get(50)?.data["Name"]?.stringValue == "new")
        #expect(table.exitedCount == 1)
    }

    @Test func syncEndsMissingProcessesButNotNewerOnes() {
        var table = ProcessTable()
        table.start(Self.process(20, parent: 1, start: 100), at: Timestamp(seconds: 100))
        table.start(Self.process(21, parent: 1, start: 300), at: Timestamp(seconds: 300))
        // The listing was read at 200: 21 started after it, 20 is gone, 22 is new.
        let updates = table.sync([Self.process(22, parent: 1, start: 150)], listedAt: Timestamp(seconds: 200), at: Timestamp(seconds: 301))
        #expect(table.get(20)?.endTime != nil)
        #expect(table.get(21)?.endTime == nil)
        #expect(table.get(22) != nil)
        #expect(updates.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.exit, .start])
    }

    @Test func callchainAndChildren() {
        var table = ProcessTable()
        table.start(Self.process(1, parent: 0, start: 1, name: "init"), at: Timestamp(seconds: 1))
        table.start(Self.process(100, parent: 1, start: 10, name: "sshd"), at: Timestamp(seconds: 10))
        table.start(Self.process(200, parent: 100, start: 20, name: "bash"), at: Timestamp(seconds: 20))
        table.start(Self.process(300, parent: 200, start: 30, name: "curl"), at: Timestamp(seconds: 30))
        table.exit(pid: 200, at: Timestamp(seconds: 40))
        #expect(table.callchain(300, limit: 10).map(\.pid) == [300, 200, 100, 1])
        #expect(table.callchain(300, limit: 2).map(\.pid) == [300, 200])
        #expect(table.children(of: 100).map(\.pid) == [200])
        // A cycle (corrupt parents) ends the walk.
        table.start(Self.process(7, parent: 8, start: 5), at: Timestamp(seconds: 5))
        table.start(Self.process(8, parent: 7, start: 5), at: Timestamp(seconds: 5))
        #expect(table.callchain(7, limit: 100).count == 2)
    }
}

@Suite struct DNSMessageTests {
    /// A response for quarry.test: A 10.9.8.7 and a CNAME, names compressed.
    static let response: [UInt8] = [
        0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
        6, 0x71, 0x75, 0x61, 0x72, 0x72, 0x79, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1,
        0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, 0x77, 0x77, 0x77, 0xC0, 12,
        0xC0, 12, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 10, 9, 8, 7,
    ]

    @Test func questionsAndAnswers() {
        let message = DNSMessage.parse(Self.response)
        #expect(message["ID"].intValue == 0x1234)
        #expect(message["QR"].intValue == 1)
        #expect(message["responseCode"].stringValue == "No Error")
        let question = message["questions"].listElements?.first ?? .null
        #expect(question["name"].stringValue == "quarry.test")
        #expect(question["type"].stringValue == "A")
        let answers = message["answers"].listElements ?? []
        #expect(answers.count == 2)
        #expect(answers.first?["CNAME"].stringValue == "www.quarry.test")
        #expect(answers.last?["IP"].stringValue == "10.9.8.7")
        #expect(answers.last?["TTL"].intValue == 3600)
    }

    @Test func hostilePacketsNeverLoopOrReadOutOfBounds() {
        // A name pointing at itself, counts far beyond the data, truncation at every length.
        var loop: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0xFF, 0xFF, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        _ = DNSMessage.parse(loop)
        loop[12] = 0xC0
        loop[13] = 13
        _ = DNSMessage.parse(loop)
        for length in 0..<Self.response.count { _ = DNSMessage.parse(Array(Self.response.prefix(length))) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var packet = Self.response
            for _ in 0..<4 { packet[Int.random(in: 0..<packet.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            _ = DNSMessage.parse(packet)
        }
        #expect(DNSMessage.parse([1, 2, 3]).listElements == nil)
    }
}

@Suite struct AuditParsingTests {
    static let execLines = [
        #"type=SYSCALL msg=audit(1700000000.123:4242): arch=c000003e syscall=59 success=yes exit=0 a0=55d a1=55e a2=55f a3=0 items=2 ppid=100 pid=200 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="ls" exe="/usr/bin/ls" subj=unconfined key="procmon""#,
        #"type=EXECVE msg=audit(1700000000.123:4242): argc=3 a0="ls" a1="-la" a2=2F746D702F6120622063"#,
        #"type=CWD msg=audit(1700000000.123:4242): cwd="/root""#,
        #"type=PATH msg=audit(1700000000.123:4242): item=0 name="/usr/bin/ls" inode=12 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL"#,
        #"type=PROCTITLE msg=audit(1700000000.123:4242): proctitle=6C73002D6C61"#,
        #"type=EOE msg=audit(1700000000.123:4242): "#,
    ]

    @Test func coalescesAnExecIntoOneEvent() {
        let coalescer = AuditCoalescer()
        var events: [Value] = []
        for line in Self.execLines {
            guard let record = AuditRecord.parse(line: line) else {
                Issue.record("unparsed: \(line)")
                continue
            }
            events += coalescer.add(record)
        }
        #expect(events.count == 1)
        let event = events.first ?? .null
        #expect(event["Sequence"].intValue == 4242)
        #expect(event["Category"].stringValue == "audit-rule")
        #expect(event["Result"].stringValue == "success")
        #expect(event["Tags"].listElements?.compactMap(\.stringValue) == ["procmon"])
        #expect(event["Process.PID"].stringValue == "200")
        #expect(event["Process.PPID"].stringValue == "100")
        #expect(event["Process.Exe"].stringValue == "/usr/bin/ls")
        #expect(event["Process.CWD"].stringValue == "/root")
        #expect(event["Process.Title"].stringValue == "ls -la")
        #expect(event["Process.Args"].listElements?.compactMap(\.stringValue) == ["ls", "-la", "/tmp/a b c"])
        #expect(event["Summary.Actor.Primary"].stringValue == "unset")
        #expect(event["Summary.Action"].stringValue == "executed")
        #expect(event["Summary.Object.Primary"].stringValue == "/usr/bin/ls")
        #expect(event["Paths"].listElements?.count == 1)
    }

    @Test func userMessagesStandAloneAndSilentEventsTimeOut() {
        let coalescer = AuditCoalescer(timeout: 0)
        let login = #"type=USER_LOGIN msg=audit(1700000001.000:9): pid=7 uid=0 auid=1000 ses=3 msg='op=login acct="alice" exe="/usr/sbin/sshd" hostname=? addr=10.1.2.3 terminal=ssh res=failed'"#
        let events = AuditRecord.parse(line: login).map { coalescer.add($0) } ?? []
        #expect(events.count == 1)
        #expect(events.first?["Result"].stringValue == "fail")
        #expect(events.first?["Category"].stringValue == "user-login")
        #expect(events.first?["Data.acct"].stringValue == "alice")
        let lone = AuditRecord.parse(line: #"type=SYSCALL msg=audit(1700000002.000:10): syscall=42 success=no pid=9 key=(null)"#)
        #expect(lone.map { coalescer.add($0) }?.isEmpty == true)
        let expired = coalescer.expired(now: Date().addingTimeInterval(1))
        #expect(expired.count == 1)
        #expect(expired.first?["Tags"].listElements?.isEmpty == true)
        #expect(AuditRecord.parse(line: "not an audit line") == nil)
        #expect(AuditRecord.parse(line: "type=SYSCALL msg=audit(bogus): x=1") == nil)
    }
}

@Suite struct CSVRecordTests {
    @Test func quotedFieldsSpanLines() {
        let records = CSVRecords(separator: UInt8(ascii: ","), comment: UInt8(ascii: "#"), header: ["A", "B"])
        #expect(records.feed(Array("1,\"two, and".utf8)).isEmpty)
        let rows = records.feed(Array(" more\"\"\"".utf8))
        #expect(rows.first?["B"].stringValue == "two, and\n more\"")
        #expect(records.feed(Array("# comment".utf8)).isEmpty)
        #expect(records.feed(Array("x,y,z".utf8)).first?["Col2"].stringValue == "z")
    }
}
