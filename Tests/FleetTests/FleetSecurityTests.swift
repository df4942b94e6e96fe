import Crypto
import Fleet
import FleetCore
import Foundation
import NIOPosix
import Testing

/// Who may talk to the server, and what each may do.
extension FleetTests {
    static func serverCA(_ fleet: FleetHarness) throws -> String {
        try ConfigFile.load(ServerConfig.self, from: fleet.serverConfig).ca.certificate
    }

    static func url(_ fleet: FleetHarness) -> String { "https://127.0.0.1:\(fleet.port)" }

    /// The next message from the server, if one arrives within a few seconds.
    static func nextMessage(_ socket: AgentSocket) async -> ServerMessage? {
        await withTaskGroup(of: ServerMessage?.self) { group in
            group.addTask {
                guard let data = await socket.receive(max: 1)?.first else { return nil }
                return try? Wire.decode(ServerMessage.self, from: data)
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(10))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            // A receive still waiting (the timeout came first) ends only when the socket closes;
            // after a message the socket stays open for the next (the monitoring table comes first).
            if first == nil { socket.close() }
            return first
        }
    }

    @Test func certificatesFromAnotherCAAndWrongSecretsAreRefused() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        fleet.killAgent("a")
        let id = try #require(fleet.clientId("a"))
        let ca = try Self.serverCA(fleet)
        let group = MultiThreadedEventLoopGroup.singleton
        // The agent's own certificate opens a channel (the control).
        let genuine = try await Connector.openAgentChannel(url: Self.url(fleet), tls: TLSSetup.clientContext(caCertificate: ca, identity: fleet.identity("a")), group: group)
        genuine.close()
        // The same client ID signed by another CA fails the TLS handshake.
        let forged = try CertificateAuthority.create().issueClientCertificate(commonName: id)
        await #expect(throws: (any Error).self) {
            let socket = try await Connector.openAgentChannel(url: Self.url(fleet), tls: TLSSetup.clientContext(caCertificate: ca, identity: forged), group: group)
            // A channel that opened must still be unusable: the server closes it.
            _ = try await socket.send(AgentMessage.hello(version: Wire.version, queuedBatches: 0, droppedBatches: 0)).get()
            if await socket.receive() == nil { throw HarnessError("closed") }
        }
        // A client that pins another CA refuses the server.
        let otherCA = try CertificateAuthority.create().identity.certificate
        await #expect(throws: (any Error).self) {
            _ = try await Connector.openAgentChannel(url: Self.url(fleet), tls: TLSSetup.clientContext(caCertificate: otherCA, identity: nil), group: group)
        }
        // Enrolment with a wrong secret is refused; with the right one it succeeds.
        let (_, csr) = try CertificateTools.makeKeyAndRequest(commonName: "test")
        let anonymous = try TLSSetup.clientContext(caCertificate: ca, identity: nil)
        let wrong = try await Connector.openAgentChannel(url: Self.url(fleet), tls: anonymous, group: group)
        wrong.send(AgentMessage.enroll(secret: "not-the-secret", csr: csr, hostname: "intruder", labels: []))
        guard case .refused(let reason)? = await Self.nextMessage(wrong) else {
            Issue.record("wrong secret was not refused")
            return
        }
        #expect(reason.contains("secret"))
        let secret = try ConfigFile.load(ServerConfig.self, from: fleet.serverConfig).enrollmentSecret
        let right = try await Connector.openAgentChannel(url: Self.url(fleet), tls: anonymous, group: group)
        right.send(AgentMessage.enroll(secret: secret, csr: csr, hostname: "newcomer", labels: ["lab"]))
        guard case .enrolled(let newId, let certificate)? = await Self.nextMessage(right) else {
            Issue.record("enrolment failed")
            return
        }
        #expect(try CertificateTools.commonName(pem: certificate) == newId)
        // A connection without a certificate may do nothing but enrol.
        let sneaky = try await Connector.openAgentChannel(url: Self.url(fleet), tls: anonymous, group: group)
        sneaky.send(AgentMessage.hello(version: Wire.version, queuedBatches: 0, droppedBatches: 0))
        guard case .refused? = await Self.nextMessage(sneaky) else {
            Issue.record("an anonymous hello was not refused")
            return
        }
    }

    @Test func revokedClientIsRefused() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["clients", "label", id, "--add", "web"]))
        _ = try await fleet.post("/clients/\(id)/revoke", body: [String: String](), as: [String: String].self)
        fleet.killAgent("a")
        let tls = try TLSSetup.clientContext(caCertificate: Self.serverCA(fleet), identity: fleet.identity("a"))
        let socket = try await Connector.openAgentChannel(url: Self.url(fleet), tls: tls, group: MultiThreadedEventLoopGroup.singleton)
        guard case .refused(let reason)? = await Self.nextMessage(socket) else {
            Issue.record("a revoked client was not refused")
            return
        }
        #expect(reason.contains("revoked"))
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "revoke-client" && $0.target == id && $0.user == "admin" })
        #expect(audit.contains { $0.action == "label-client" && $0.target == id })
    }

    @Test func clientCannotSubmitIntoAnotherClientsFlow() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        for name in ["a", "b"] { try fleet.startAgent(name) }
        try await fleet.waitForAgents(["a", "b"])
        let b = try #require(fleet.clientId("b"))
        let flowOfB = try #require(try await fleet.get("/flows", query: ["client_id": b], as: [FlowRecord].self).first)
        let before = try await fleet.results(["flow_id": flowOfB.flowId])
        fleet.killAgent("a")
        let tls = try TLSSetup.clientContext(caCertificate: Self.serverCA(fleet), identity: fleet.identity("a"))
        let socket = try await Connector.openAgentChannel(url: Self.url(fleet), tls: tls, group: MultiThreadedEventLoopGroup.singleton)
        let forged = WireBatch(flowId: flowOfB.flowId, seq: 999, payload: .rows(artifact: "Generic.Client.Info", source: "BasicInformation", rows: [#"{"Hostname":"evil"}"#]))
        socket.send(AgentMessage.hello(version: Wire.version, queuedBatches: 1, droppedBatches: 0))
        socket.send(AgentMessage.batch(forged))
        var answer: ServerMessage?
        while let message = await Self.nextMessage(socket) {
            if case .ack = message { answer = message; break }
        }
        guard case .ack(let flow, let seq, let rejected)? = answer else {
            Issue.record("no answer to the forged batch")
            return
        }
        #expect(flow == flowOfB.flowId && seq == 999)
        #expect(rejected != nil)
        let after = try await fleet.results(["flow_id": flowOfB.flowId])
        #expect(after == before)
        #expect(!after.contains { $0.json.contains("evil") })
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "batch-rejected" && $0.target == flowOfB.flowId && $0.user == (fleet.clientId("a") ?? "") })
    }

    @Test func rolesLimitWhatAnalystsMayDo() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let reader = fleet.dir + "/reader.yaml", investigator = fleet.dir + "/investigator.yaml"
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", reader]))
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--output", investigator]))
        // A reader reads but cannot start a hunt or collect.
        let refused = try fleet.cli(["hunt", "create", "Linux.Sys.Pslist"], apiConfig: reader)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("403") && refused.stderr.contains("START_HUNT"))
        try fleet.check(fleet.cli(["hunt", "list"], apiConfig: reader))
        let id = try #require(fleet.clientId("a"))
        #expect(try fleet.cli(["collect", id, "Linux.Sys.Pslist"], apiConfig: reader).status != 0)
        // An investigator hunts, but not with an artifact that needs EXECVE; an administrator may.
        try fleet.check(fleet.cli(["hunt", "create", "Linux.Sys.Pslist"], apiConfig: investigator))
        let exec = try fleet.cli(["hunt", "create", "Test.Exec"], apiConfig: investigator)
        #expect(exec.status != 0 && exec.stderr.contains("EXECVE"))
        try fleet.check(fleet.cli(["hunt", "create", "Test.Exec"]))
        // Unknown artifacts get a suggestion.
        let typo = try fleet.cli(["hunt", "create", "Linux.Sys.Pslits"], apiConfig: investigator)
        #expect(typo.stderr.contains("did you mean Linux.Sys.Pslist"))
        // A reader cannot add users; the audit log names who did what.
        #expect(try fleet.cli(["user", "add", "mallory", "--role", "administrator"], apiConfig: reader).status != 0)
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.user == "admin" && $0.action == "add-user" && $0.target == "rita" })
        #expect(audit.contains { $0.user == "ivan" && $0.action == "create-hunt" && $0.remote.contains("127.0.0.1") })
        #expect(!audit.contains { $0.target == "mallory" })
    }

    @Test func uploadsArriveWholeAndRunningCollectionsCanBeCancelled() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        // 5 MB travels in several parts and is filed under its SHA-256.
        let path = fleet.dir + "/evidence.bin"
        let bytes = Data((0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) })
        try bytes.write(to: URL(fileURLWithPath: path))
        let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        let collect = try fleet.cli(["collect", id, "Test.Upload", "--args", "Path=\(path)", "--wait", "--format", "json"])
        try fleet.check(collect)
        let flows = try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self)
        let flow = try #require(flows.first { $0.request.artifacts == ["Test.Upload"] })
        let view = try await fleet.get("/flows/\(flow.flowId)", as: FlowView.self)
        #expect(view.uploads.count == 1)
        #expect(view.uploads.first?.sha256 == sha)
        #expect(view.uploads.first?.size == Int64(bytes.count))
        let stored = fleet.dir + "/srv/data/uploads/" + String(sha.prefix(2)) + "/" + sha
        #expect(FileManager.default.contents(atPath: stored) == bytes)
        // A running collection stops when cancelled.
        let sleeper = try fleet.cli(["collect", id, "Test.Sleep", "--args", "Seconds=120"])
        try fleet.check(sleeper)
        let sleeping = sleeper.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 20, "flow running") { try await fleet.get("/flows/\(sleeping)", as: FlowView.self).flow.state == .running }
        _ = try await fleet.post("/flows/\(sleeping)/cancel", body: [String: String](), as: FlowRecord.self)
        try await fleet.waitUntil(timeout: 20, "flow cancelled") { try await fleet.get("/flows/\(sleeping)", as: FlowView.self).flow.state == .cancelled }
    }
}
