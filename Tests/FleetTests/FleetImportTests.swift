import Crypto
import Fleet
import FleetCore
import Foundation
import NIOPosix
import Testing

/// Offline collections into the fleet: a container collected on a host with no agent, encrypted
/// to the investigator's certificate, carried by hand and imported with `quarry collection import`
/// becomes a finished flow of a client (new and labelled `offline`, then matched by host name),
/// its rows readable through the results API and its uploaded file filed in the blob store under
/// its SHA-256. Readers may not import; a file that is not a container is refused.
extension FleetTests {
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetImportTests {
    @Test func encryptedOfflineCollectionBecomesAFlowOfAClient() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        let work = fleet.dir + "/offline"
        try FileManager.default.createDirectory(atPath: work + "/defs", withIntermediateDirectories: true)
        let evidence = work + "/evidence.bin"
        let content = Data("dropped payload \(UUID().uuidString)\n".utf8)
        try content.write(to: URL(fileURLWithPath: evidence))
        try """
            name: Custom.Offline.Upload
            parameters:
              - name: Path
            sources:
              - query: SELECT upload(file=Path) AS Upload, 'offline-marker' AS Marker FROM scope()
            """.write(toFile: work + "/defs/upload.yaml", atomically: true, encoding: .utf8)
        try fleet.check(fleet.run([
            "artifacts", "collect", "Custom.Offline.Upload", "Linux.Sys.Users", "--definitions", work + "/defs", "--args", "Path=\(evidence)",
            "--output", work + "/clear.zip",
        ]))
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", work + "/inv.key", "-out", work + "/inv.pem", "-days", "2", "-subj", "/CN=inv"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try fleet.check(fleet.run(["collection", "encrypt", work + "/clear.zip", "--to", work + "/inv.pem", "--output", work + "/sealed.zip"]))

        // Without the key the import cannot go ahead; with it, the flow appears.
        #expect(try fleet.cli(["collection", "import", work + "/sealed.zip", "--hostname", "evidence-host"]).status != 0)
        let imported = try fleet.cli(["collection", "import", work + "/sealed.zip", "--key", work + "/inv.key", "--hostname", "evidence-host"])
        try fleet.check(imported)
        #expect(imported.stdout.contains("a new offline client"))
        let clients = try await fleet.get("/clients", as: [ClientView].self).map(\.client)
        let client = try #require(clients.first { $0.hostname == "evidence-host" })
        #expect(client.labels == ["offline"])
        let flows = try await fleet.get("/flows", query: ["client_id": client.clientId], as: [FlowRecord].self)
        let flow = try #require(flows.first)
        #expect(flow.state == .finished)
        #expect(Set(flow.request.artifacts) == ["Custom.Offline.Upload", "Linux.Sys.Users"])

        let rows = try await fleet.results(["flow_id": flow.flowId])
        #expect(rows.contains { $0.artifact == "Linux.Sys.Users" && $0.json.contains("\"root\"") })
        #expect(rows.contains { $0.artifact == "Custom.Offline.Upload" && $0.json.contains("offline-marker") })
        let view = try await fleet.get("/flows/\(flow.flowId)", as: FlowView.self)
        let digest = SHA256.hash(data: content).map { String(format: "%02x", $0) }.joined()
        let upload = try #require(view.uploads.first)
        #expect(upload.sha256 == digest && upload.size == Int64(content.count) && upload.name.hasSuffix("evidence.bin"))
        let data = try ConfigFile.load(ServerConfig.self, from: fleet.dir + "/srv/server0.yaml").dataDir
        #expect(try Data(contentsOf: URL(fileURLWithPath: data + "/uploads/" + digest.prefix(2) + "/" + digest)) == content)

        // The same host again: the same client, a second flow.
        let again = try fleet.cli(["collection", "import", work + "/clear.zip", "--hostname", "EVIDENCE-HOST"])
        try fleet.check(again)
        #expect(!again.stdout.contains("new offline client"))
        #expect(try await fleet.get("/flows", query: ["client_id": client.clientId], as: [FlowRecord].self).count == 2)

        // Not a container: refused with a reason. A reader: refused.
        try Data("not a zip".utf8).write(to: URL(fileURLWithPath: work + "/junk.zip"))
        let junk = try fleet.cli(["collection", "import", work + "/junk.zip", "--hostname", "x"])
        #expect(junk.status != 0 && junk.stderr.contains("not a zip file"))
        // The server makes its own check of what it is sent.
        await #expect(throws: APIError.self) { _ = try await fleet.api().importCollection(path: work + "/junk.zip", hostname: "x", clientId: nil) }
        do {
            _ = try await fleet.api().importCollection(path: work + "/junk.zip", hostname: "x", clientId: nil)
        } catch let error as APIError {
            #expect(error.status == 422 && error.message.contains("not a collection container"))
        }
        let reader = work + "/reader.yaml"
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", reader]))
        let refused = try fleet.cli(["collection", "import", work + "/clear.zip", "--hostname", "x"], apiConfig: reader)
        #expect(refused.status != 0)
        #expect(try await fleet.get("/clients", as: [ClientView].self).allSatisfy { $0.client.hostname != "x" })
    }

    /// `quarry collection import` streams: a container of 160 MiB reaches the server in pieces
    /// while the CLI's peak memory stays far below the container's size, and `--client-id` (bound
    /// into the upload token by the server, not chosen by the uploader) decides the client.
    @Test func largeContainerStreamsWithBoundedMemoryToTheNamedClient() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        let work = fleet.dir + "/large"
        try FileManager.default.createDirectory(atPath: work + "/defs", withIntermediateDirectories: true)
        try """
            name: Custom.Large.Upload
            parameters:
              - name: Path
            sources:
              - query: SELECT upload(file=Path) AS Upload FROM scope()
            """.write(toFile: work + "/defs/upload.yaml", atomically: true, encoding: .utf8)
        let evidence = work + "/image.bin"
        let size = 160 << 20
        var random = SystemRandomNumberGenerator()
        let handle = try #require(FileHandle(forWritingAtPath: { _ = FileManager.default.createFile(atPath: evidence, contents: nil); return evidence }()))
        for _ in 0..<(size >> 20) {
            try handle.write(contentsOf: Data((0..<(1 << 17)).flatMap { _ in withUnsafeBytes(of: random.next()) { Array($0) } }))
        }
        try handle.close()
        try fleet.check(fleet.run(["artifacts", "collect", "Custom.Large.Upload", "--definitions", work + "/defs", "--args", "Path=\(evidence)",
                                   "--output", work + "/large.zip"]))
        try fleet.check(fleet.cli(["collection", "import", work + "/large.zip", "--hostname", "disk-host"]))
        let client = try #require(try await fleet.get("/clients", as: [ClientView].self).map(\.client).first { $0.hostname == "disk-host" })

        // The same container again, named for that client although its file says otherwise.
        let measure = Process()
        measure.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        measure.arguments = ["-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                             + "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)",
                             FleetHarness.binary, "collection", "import", work + "/large.zip", "--hostname", "another-name",
                             "--client-id", client.clientId, "--api-config", fleet.apiConfig]
        let err = Pipe()
        measure.standardError = err
        measure.standardOutput = FileHandle.nullDevice
        try measure.run()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        measure.waitUntilExit()
        #expect(measure.terminationStatus == 0, "\(log)")
        let kilobytes = try #require(log.split(separator: "\n").last { $0.hasPrefix("MAXRSS") }?.split(separator: " ").last.flatMap { Int($0) })
        #expect(kilobytes < 96 << 10, "the CLI peaked at \(kilobytes) KiB for a \(size >> 20) MiB container")
        let flows = try await fleet.get("/flows", query: ["client_id": client.clientId], as: [FlowRecord].self)
        #expect(flows.count == 2 && flows.allSatisfy { $0.state == .finished })
        #expect(try await fleet.get("/clients", as: [ClientView].self).allSatisfy { $0.client.hostname != "another-name" })
        let view = try await fleet.get("/flows/\(flows[0].flowId)", as: FlowView.self)
        #expect(view.uploads.first?.size == Int64(size))
        // A token cannot be bound to a client that does not exist.
        await #expect(throws: APIError.self) {
            struct TokenRequest: Encodable, Sendable { var hours: Double; var client_id: String? }
            _ = try await fleet.api().post("/collections/upload-tokens", body: TokenRequest(hours: 1, client_id: "C.0000000000000000"), as: UploadTokenGrant.self)
        }
    }

    /// Imports match a client by host name and machine ID: the same machine again finds its client,
    /// another machine with the same host name becomes a client of its own.
    @Test func sameHostNameOnTwoMachinesStaysTwoClients() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        let work = fleet.dir + "/machines"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try fleet.check(fleet.run(["artifacts", "collect", "Linux.Sys.Users", "--output", work + "/a.zip"]))
        // The same container as if from another machine: client_info.json's HostID changed.
        let rewrite = Process()
        rewrite.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        rewrite.arguments = ["-c", """
            import json, sys, zipfile
            src, dst = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED)
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename == 'client_info.json':
                    info = json.loads(data); info['HostID'] = 'another-machine-0000'; data = json.dumps(info).encode()
                dst.writestr(item.filename, data)
            dst.close()
            """, work + "/a.zip", work + "/b.zip"]
        try rewrite.run()
        rewrite.waitUntilExit()
        #expect(rewrite.terminationStatus == 0)
        func importAs(_ file: String) throws -> String {
            let output = try fleet.cli(["collection", "import", work + "/" + file, "--hostname", "twin"])
            try fleet.check(output)
            return try #require(output.stdout.split(separator: " ").first { $0.hasPrefix("C.") }.map { String($0) })
        }
        let first = try importAs("a.zip")
        #expect(try importAs("a.zip") == first, "the same machine finds its client")
        let other = try importAs("b.zip")
        #expect(other != first, "another machine with the same name is another client")
        #expect(try importAs("b.zip") == other)
        let twins = try await fleet.get("/clients", as: [ClientView].self).filter { $0.client.hostname == "twin" }
        #expect(twins.count == 2)
        let note = try await fleet.get("/clients/\(other)/metadata", as: [String: String].self)
        #expect(note["host_id"] == "another-machine-0000")
    }

    @Test func collectorUploadsWithAOneTimeTokenAndResumes() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        let work = fleet.dir + "/upload"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try fleet.check(fleet.cli(["collector", "build", "--no-bundle", "--artifact", "Linux.Sys.Users", "--upload-to-server", "--output", work + "/collector"]))
        func runCollector(_ out: String) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: work + "/collector")
            process.arguments = ["--output-dir", out]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let (status, text) = try runCollector(work + "/out1")
        #expect(status == 0, "\(text)")
        let flowId = try #require(text.split(separator: " ").first { $0.hasPrefix("F.") }.map { String($0.prefix(18)) })
        let rows = try await fleet.results(["flow_id": flowId])
        #expect(rows.contains { $0.artifact == "Linux.Sys.Users" && $0.json.contains("\"root\"") })
        // The token is spent: a second run keeps its file and says the upload failed.
        let (again, againText) = try runCollector(work + "/out2")
        #expect(again != 0 && againText.contains("spent"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: work + "/out2").contains { $0.hasPrefix("Collection-") })

        // Resume: the first piece arrives, a piece at the wrong offset is refused, the uploader
        // asks where to go on and finishes; every row is stored once.
        try fleet.check(fleet.run(["artifacts", "collect", "Linux.Sys.Users", "--output", work + "/c.zip"]))
        let api = try fleet.api()
        let grant = try await api.post("/collections/upload-tokens", body: ["hours": 1.0], as: UploadTokenGrant.self)
        let config = try ConfigFile.load(APIConfig.self, from: fleet.apiConfig)
        let tls = try TLSSetup.clientContext(caCertificate: config.caCertificate, identity: nil)
        let container = try Data(contentsOf: URL(fileURLWithPath: work + "/c.zip"))
        func put(_ offset: Int, _ piece: Data, token: String = grant.token) async throws -> Int {
            try await Connector.request(
                url: config.serverURL, tls: tls, group: MultiThreadedEventLoopGroup.singleton, method: .PUT,
                path: "/upload/collection?offset=\(offset)&total=\(container.count)&hostname=resumed-host", headers: [("X-Quarry-Upload-Token", token)],
                body: piece).status
        }
        #expect(try await put(0, container.prefix(1000)) == 200)
        #expect(try await put(0, container.prefix(1000)) == 409)
        #expect(try await put(0, container.prefix(10), token: "QU.forged") == 401)
        var uploader = try CollectionUploader(serverURL: config.serverURL, caCertificate: config.caCertificate, token: grant.token)
        uploader.pieceBytes = 4096
        #expect(try await uploader.status() == 1000)
        let outcome = try await uploader.upload(path: work + "/c.zip", hostname: "resumed-host")
        #expect(outcome.hostname == "resumed-host" && outcome.rows > 0)
        #expect(try await fleet.results(["flow_id": outcome.flowId]).count == outcome.rows)
        // No token, no answer.
        let anonymous = try await Connector.request(
            url: config.serverURL, tls: tls, group: MultiThreadedEventLoopGroup.singleton, method: .GET, path: "/upload/collection", headers: [], body: nil)
        #expect(anonymous.status == 401)
    }

    /// A zip bomb (a small deflated member that inflates to rows far past the budget) is refused
    /// with a reason, and nothing of it is kept.
    @Test func inflatingContainerIsRefused() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        let work = fleet.dir + "/bomb"
        try FileManager.default.createDirectory(atPath: work + "/results", withIntermediateDirectories: true)
        // 300 MiB of short rows, deflated by zip to well under 1 MiB.
        let script = "python3 -c \"import sys\nrow=b'{\\\"A\\\":1}\\n'\nf=open(sys.argv[1],'wb')\nfor i in range(300): f.write(row*(1048576//len(row)))\" results/Bomb.Rows.json && zip -q -9 bomb.zip results/Bomb.Rows.json && rm results/Bomb.Rows.json"
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script]
        shell.currentDirectoryURL = URL(fileURLWithPath: work)
        try shell.run()
        shell.waitUntilExit()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: work + "/bomb.zip")[.size] as? Int)
        #expect(size < 2 << 20)
        let refused = try fleet.cli(["collection", "import", work + "/bomb.zip", "--hostname", "bomb-host"])
        #expect(refused.status != 0 && refused.stderr.contains("inflates past"), "\(refused.stderr)")
    }
}
}
