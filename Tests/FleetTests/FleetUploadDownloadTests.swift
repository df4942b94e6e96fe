import Crypto
@testable import Fleet
import FleetCore
import Foundation
import Testing

/// Evidence back out of a real fleet: an agent uploads a file and `quarry flows download` brings
/// it back whole (in several slices, checked by SHA-256, 0600); server VQL reads it through the
/// `fs` accessor by the vfs_path uploads() gives; and an encrypted local storage file written on
/// the agent to the fleet's key is decrypted by the server with Velociraptor's own query
/// (Generic.Client.LocalLogsRetrieve's notebook), though the agent's copy shows nothing.
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetUploadDownloadTests {
    @Test func uploadsComeBackByCLIByFsAccessorAndDecrypted() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        // 9 MB: more than one 8 MiB slice of the CLI, more than two 4 MiB slices of the accessor.
        let path = fleet.dir + "/evidence.bin"
        let bytes = Data((0..<(9 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 11) })
        try bytes.write(to: URL(fileURLWithPath: path))
        let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        try fleet.check(try fleet.cli(["collect", id, "Test.Upload", "--args", "Path=\(path)", "--wait", "--format", "json"]))
        let flows = try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self)
        let flow = try #require(flows.first { $0.request.artifacts == ["Test.Upload"] })

        // The CLI: a private folder, the file whole and private.
        let out = fleet.dir + "/downloaded"
        let download = try fleet.cli(["flows", "download", flow.flowId, "--output", out])
        try fleet.check(download)
        let listed = download.stdout.split(separator: "\n").first?.split(separator: "\t").first.map(String.init) ?? "?"
        #expect(listed.hasSuffix("_evidence.bin") && !listed.contains("/"), "\(download.stdout)")
        let local = out + "/" + listed
        #expect(FileManager.default.contents(atPath: local) == bytes, "\(download.stdout) \(download.stderr)")
        var info = stat()
        #expect(stat(local, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(out, &info) == 0 && info.st_mode & 0o777 == 0o700)
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "download-upload" && $0.target == flow.flowId })
        // Reading a slice audits the reader too, whatever offset it starts at (once per user and file).
        try fleet.check(try fleet.cli(["user", "add", "rita", "--role", "reader", "--output", fleet.dir + "/rita.yaml"]))
        let rita = try APIClient(config: ConfigFile.load(APIConfig.self, from: fleet.dir + "/rita.yaml"))
        let middle = try await rita.uploadSlice(flowId: flow.flowId, sha256: sha, offset: 100, length: 16)
        #expect(middle == bytes[100..<116])
        _ = try await rita.uploadSlice(flowId: flow.flowId, sha256: sha, offset: 200, length: 16)
        let entries = try await fleet.get("/audit", as: [AuditEntry].self).filter { $0.action == "download-upload" && $0.user == "rita" }
        #expect(entries.count == 1, "\(entries)")
        // Only this flow's uploads, by their SHA-256.
        await #expect(throws: APIError.self) {
            _ = try await fleet.api().uploadSlice(flowId: flow.flowId, sha256: String(repeating: "0", count: 64), offset: 0, length: 10)
        }

        // Server VQL: the fs accessor reads what uploads() names.
        let hashed = try FleetServerVQLTests.vql(fleet, """
            SELECT Name, vfs_path, hash(path=vfs_path, accessor='fs').SHA256 AS SHA256, encode(string=read_file(filename=vfs_path, accessor='fs', offset=4194300, length=8), type='hex') AS Across
            FROM uploads(client_id='\(id)', flow_id='\(flow.flowId)')
            """)
        #expect(hashed.status == 0, "\(hashed.stderr)")
        #expect(hashed.rows.first?["SHA256"] as? String == sha, "\(hashed.rows) \(hashed.stderr)")
        #expect((hashed.rows.first?["Name"] as? String)?.hasSuffix(path) == true)
        // Eight bytes across the accessor's first slice boundary, read from two slices.
        let across = bytes[4_194_300..<4_194_308].map { String(format: "%02x", $0) }.joined()
        #expect(hashed.rows.first?["Across"] as? String == across)
        #expect((hashed.rows.first?["vfs_path"] as? String)?.hasPrefix("/clients/\(id)/collections/\(flow.flowId)/uploads/") == true)

        // Encrypted local storage: unreadable on the agent, rows on the server.
        let store = fleet.dir + "/local.crypt"
        try fleet.check(try fleet.cli(["collect", id, "Test.LocalStore", "--args", "Path=\(store)", "--args", "Marker=quarry-local-marker",
                                       "--wait", "--format", "json"]))
        let stored = try #require(FileManager.default.contents(atPath: store))
        #expect(stored.range(of: Data("quarry-local-marker".utf8)) == nil)
        let storeFlow = try #require(try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self)
            .first { $0.request.artifacts == ["Test.LocalStore"] })
        let rows = try FleetServerVQLTests.vql(fleet, """
            SELECT * FROM foreach(row={
               SELECT * FROM uploads(client_id='\(id)', flow_id='\(storeFlow.flowId)')
            }, query={
               SELECT * FROM read_crypto_file(filename=vfs_path, accessor="fs")
            })
            """)
        #expect(rows.status == 0, "\(rows.stderr)")
        #expect(rows.rows.compactMap { $0["Marker"] as? String } == Array(repeating: "quarry-local-marker", count: 3), "\(rows.rows) \(rows.stderr)")
        #expect(rows.rows.compactMap { $0["N"] as? Int } == [0, 1, 2])
    }

    /// RecentOnce (the download audit's memory): once per key in the window, bounded.
    @Test func recentOnceSaysFirstOncePerWindowAndStaysBounded() {
        let once = RecentOnce(window: 600, capacity: 3)
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect(once.first("a", now: start))
        #expect(!once.first("a", now: start.addingTimeInterval(599)))
        #expect(once.first("a", now: start.addingTimeInterval(601)))
        for (i, key) in ["b", "c", "d", "e"].enumerated() { #expect(once.first(key, now: start.addingTimeInterval(602 + Double(i)))) }
        // Full: the oldest ("a" at 601) went first, so it is new again; "e" is still remembered.
        #expect(once.first("a", now: start.addingTimeInterval(700)))
        #expect(!once.first("e", now: start.addingTimeInterval(700)))
    }

    /// `quarry hunt download`: one folder per client, each client's own file.
    @Test func aHuntsUploadsComeBackOneFolderPerClient() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try fleet.startAgent("b")
        try await fleet.waitForAgents(["a", "b"])
        let path = fleet.dir + "/shared-evidence.txt"
        try Data("the same file on both\n".utf8).write(to: URL(fileURLWithPath: path))
        let created = try fleet.cli(["hunt", "create", "Test.Upload", "--args", "Path=\(path)"])
        try fleet.check(created)
        let hunt = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try fleet.check(try fleet.cli(["hunt", "wait", hunt, "--clients", "2", "--timeout", "90"]))
        let out = fleet.dir + "/hunt-files"
        let download = try fleet.cli(["hunt", "download", hunt, "--output", out])
        try fleet.check(download)
        for name in ["a", "b"] {
            let id = try #require(fleet.clientId(name))
            let files = try FileManager.default.contentsOfDirectory(atPath: out + "/" + id)
            #expect(files.count == 1 && files.first?.hasSuffix("shared-evidence.txt") == true, "\(files)")
            #expect(FileManager.default.contents(atPath: out + "/" + id + "/" + (files.first ?? "")) == Data("the same file on both\n".utf8))
        }
        #expect(download.stderr.contains("2 of 2 files"), "\(download.stderr)")
    }
}
