import Foundation
import Testing
import VQL
@testable import Artifacts

/// The Linux artifacts added to match Velociraptor's set (names, parameters, columns):
/// collected here against the real /proc and /sys, or against files the test writes.
@Suite struct LinuxArtifactSetTests {
    static func run(_ text: String, _ dir: String = "") throws -> (rows: [Value], log: [String]) {
        try BuiltinArtifactTests.host(text) { $0.root.set("D", .string(dir)) }
    }

    @Test func arpTableHasTheProcColumns() throws {
        let (rows, log) = try Self.run("SELECT * FROM Artifact.Linux.Proc.Arp()")
        let lines = (try? String(contentsOfFile: "/proc/net/arp", encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(rows.count == max(0, lines.count - 1), "\(log)")
        if let first = rows.first, let line = lines.dropFirst().first {
            #expect(first.member("IP address").stringValue == line.split(separator: " ").first.map(String.init))
            #expect(first.member("HW address").stringValue?.count == 17)
        }
    }

    @Test func cpuTimeHasOneRowPerProcessor() throws {
        let rows = try Self.run("SELECT * FROM Artifact.Linux.Sys.CPUTime()").rows
        let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
        let cores = stat.split(separator: "\n").filter { $0.hasPrefix("cpu") && !$0.hasPrefix("cpu ") }
        #expect(rows.count == cores.count)
        #expect(rows.first?.member("Core").stringValue == "cpu0")
        #expect((rows.first?.member("Idle").intValue ?? -1) >= 0)
        #expect(rows.first.map(rowColumns) == ["Core", "User", "Nice", "System", "Idle", "IOWait", "IRQ", "SoftIRQ", "Steal", "Guest", "GuestNice"])
    }

    @Test func acpiTablesAreHashed() throws {
        let dir = try BuiltinArtifactTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "table bytes".write(toFile: dir + "/DSDT", atomically: true, encoding: .utf8)
        let rows = try Self.run("SELECT * FROM Artifact.Linux.Sys.ACPITables(kLinuxACPIPath=D)", dir).rows
        #expect(rows.count == 1)
        #expect(rows.first?.member("Name").stringValue == "DSDT")
        #expect(rows.first?.member("Size").intValue == 11)
        #expect(rows.first?.member("Hash.MD5").stringValue == "d7b628f546baa147d7aac8938c1fdba1")
        #expect(rows.first?.member("Hash.SHA256").stringValue?.count == 64)
    }

    @Test func interactiveUsersSkipNologinShells() throws {
        let dir = try BuiltinArtifactTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nsync:x:4:65534:sync:/bin:/bin/sync\nalice:x:1000:1000:Alice:/home/alice:/bin/zsh\nsvc:x:999:999::/nonexistent:/bin/false\n"
            .write(toFile: dir + "/passwd", atomically: true, encoding: .utf8)
        let rows = try Self.run("SELECT User FROM Artifact.Linux.Users.InteractiveUsers(PasswordFile=D + '/passwd')", dir).rows
        #expect(rows.map { $0.member("User").stringValue ?? "" } == ["root", "alice"])
    }

    @Test func knownHostsPerUser() throws {
        let dir = try BuiltinArtifactTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/alice/.ssh", withIntermediateDirectories: true)
        try "alice:x:1000:1000:Alice:\(dir)/alice:/bin/bash\nbob:x:1001:1001:Bob:\(dir)/bob:/bin/bash\n".write(toFile: dir + "/passwd", atomically: true, encoding: .utf8)
        try "# comment\ngit.example.com,192.0.2.7 ssh-ed25519 AAAAC3Nza\n|1|abc=|def= ecdsa-sha2-nistp256 AAAAE2Vj\n"
            .write(toFile: dir + "/alice/.ssh/known_hosts", atomically: true, encoding: .utf8)
        let (rows, log) = try Self.run("SELECT * FROM Artifact.Linux.Ssh.KnownHosts(PasswordFile=D + '/passwd')", dir)
        #expect(rows.count == 2, "\(log)")
        #expect(rows.first?.member("User").stringValue == "alice")
        #expect(rows.first?.member("Hostname").stringValue == "git.example.com,192.0.2.7")
        #expect(rows.first?.member("Type").stringValue == "ssh-ed25519")
        #expect(rows.last?.member("PublicKey").stringValue == "AAAAE2Vj")
        #expect(rows.first.map(rowColumns) == ["Uid", "User", "OSPath", "Hostname", "Type", "PublicKey"])
    }

    @Test func recentlyUsedBookmarks() throws {
        let dir = try BuiltinArtifactTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let xbel = """
            <?xml version="1.0" encoding="UTF-8"?>
            <xbel version="1.0" xmlns:bookmark="http://www.freedesktop.org/standards/desktop-bookmarks" xmlns:mime="http://www.freedesktop.org/standards/shared-mime-info">
              <bookmark href="file:///home/alice/secret%20plans.pdf" added="2024-03-01T10:00:00.000000Z" modified="2024-03-02T11:00:00.000000Z" visited="2024-03-03T12:00:00.000000Z">
                <info><metadata owner="http://freedesktop.org">
                  <mime:mime-type type="application/pdf"/>
                  <bookmark:applications><bookmark:application name="Document Viewer" exec="evince %u" modified="2024-03-02T11:00:00Z" count="2"/></bookmark:applications>
                </metadata></info>
              </bookmark>
              <bookmark href="file:///tmp/notes.txt" added="2024-04-01T10:00:00Z" modified="2024-04-01T10:00:00Z" visited="2024-04-01T10:00:00Z"/>
            </xbel>
            """
        try xbel.write(toFile: dir + "/recently-used.xbel", atomically: true, encoding: .utf8)
        let (rows, log) = try Self.run("SELECT * FROM Artifact.Linux.Forensics.RecentlyUsed(RecentlyUsedGlob=D + '/recently-used.xbel')", dir)
        #expect(rows.count == 2, "\(log)")
        #expect(rows.first?.member("Path").stringValue == "/home/alice/secret plans.pdf")
        #expect(rows.first?.member("URL").stringValue == "file:///home/alice/secret%20plans.pdf")
        #expect(rows.first?.member("MimeType").stringValue == "application/pdf")
        #expect(rows.first.map { JSONWriter.string($0.member("Added")) } == #""2024-03-01T10:00:00Z""#)
        #expect(rows.first.map { JSONWriter.string($0.member("Applications")) }?.contains("Document Viewer") == true)
        let filtered = try Self.run("SELECT * FROM Artifact.Linux.Forensics.RecentlyUsed(RecentlyUsedGlob=D + '/recently-used.xbel', PathRegex='notes')", dir).rows
        #expect(filtered.count == 1)
    }

    @Test func rhelPackagesNeedRpm() throws {
        let (rows, log) = try Self.run("SELECT * FROM Artifact.Linux.RHEL.Packages()")
        let hasRpm = ["/usr/bin/rpm", "/bin/rpm"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        if hasRpm {
            #expect(rows.allSatisfy { $0.member("Name").stringValue?.isEmpty == false })
        } else {
            #expect(rows.isEmpty)
            #expect(log.contains { $0.contains("rpm") }, "\(log)")
        }
    }

    func rowColumns(_ row: Value) -> [String] {
        if case .dict(let d) = row { return d.keys }
        return []
    }
}
