import Crypto
import Fleet
import FleetCore
import Foundation
import NIOPosix
import Testing

/// Results reach the server while a collection runs, uploads go with bounded agent memory, and the
/// server trusts nothing in an upload part.
extension FleetTests {
    /// Rows then a minute's sleep in one source: the rows are on the server while the flow still
    /// runs, and a kill -9 of the agent loses none of them (nor duplicates any).
    @Test func rowsReachTheServerWhileTheCollectionRunsAndSurviveAnAgentKill() async throws {
        let fleet = try FleetHarness(grace: 2)
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let collect = try fleet.cli(["collect", id, "Test.Stream", "--args", "Count=5000", "--args", "Seconds=60", "--timeout", "120"])
        try fleet.check(collect)
        let flow = collect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 30, "5000 rows stored while the flow runs") {
            let rows = try await fleet.results(["flow_id": flow])
            let state = try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state
            return rows.count == 5000 && state == .running
        }
        fleet.killAgent("a")
        try fleet.startAgent("a")
        try await fleet.waitUntil(timeout: 30, "the flow ends") { try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state.isFinal }
        let ended = try await fleet.get("/flows/\(flow)", as: FlowView.self).flow
        #expect(ended.state == .error && ended.errors.contains { $0.contains("restarted") })
        let rows = try await fleet.results(["flow_id": flow])
        let numbers = Set(rows.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.json.utf8)) as? [String: Any])?["N"] as? Int })
        #expect(rows.count == 5000 && numbers == Set(0..<5000))
    }

    /// Peak resident memory of a process so far, in KiB.
    static func peakRSS(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// A 512 MiB (sparse) file is uploaded in parts read from disk: the agent's peak memory stays
    /// below the file's size (it could not hold the file), and the server files it under the
    /// SHA-256 it computed. (1 GiB took 4–5 minutes in a debug build: the size is the test's cost.)
    @Test func aLargeUploadGoesWithBoundedAgentMemory() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        let agent = try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let image = fleet.dir + "/disk.img"
        let size: Int64 = 512 << 20
        let fd = open(image, O_CREAT | O_WRONLY, 0o600)
        #expect(ftruncate(fd, off_t(size)) == 0)
        _ = pwrite(fd, "image start", 11, 0)
        _ = pwrite(fd, "image end", 9, off_t(size - 9))
        close(fd)
        let before = Self.peakRSS(agent.processIdentifier)
        let started = Date()
        let collect = try fleet.cli(["collect", id, "Test.Upload", "--args", "Path=\(image)", "--timeout", "900"])
        try fleet.check(collect)
        let flow = collect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 900, "the upload's flow ends") { try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state.isFinal }
        let peak = Self.peakRSS(agent.processIdentifier)
        let view = try await fleet.get("/flows/\(flow)", as: FlowView.self)
        #expect(view.flow.state == .finished, "\(view.flow.errors)")
        let sum = Process()
        sum.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sum.arguments = [image]
        let out = Pipe()
        sum.standardOutput = out
        try sum.run()
        let expected = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
        sum.waitUntilExit()
        #expect(view.uploads.count == 1)
        #expect(view.uploads.first?.size == size)
        #expect(view.uploads.first.map { $0.sha256 == expected } == true)
        let stored = fleet.dir + "/srv/data/uploads/" + String(expected.prefix(2)) + "/" + expected
        #expect((try? FileManager.default.attributesOfItem(atPath: stored)[.size] as? Int64) == size)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fleet.dir + "/srv/data/uploads/staging").isEmpty)
        print("512 MiB upload: \(Int(Date().timeIntervalSince(started))) s, agent peak RSS \(before / 1024) MiB before, \(peak / 1024) MiB after")
        #expect(peak < 400 * 1024, "agent peak RSS \(peak / 1024) MiB")
    }

    /// Sends batches on a raw agent channel and returns each (flow, seq)'s acknowledgement:
    /// nil for stored, the reason for rejected.
    static func send(_ batches: [WireBatch], on socket: AgentSocket) async -> [Int: String?] {
        for batch in batches { socket.send(AgentMessage.batch(batch)) }
        var acks: [Int: String?] = [:]
        let deadline = Date().addingTimeInterval(15)
        while acks.count < batches.count, Date() < deadline {
            let messages = await withTaskGroup(of: [Data]?.self) { group -> [Data]? in
                group.addTask { await socket.receive() }
                group.addTask {
                    try? await Task.sleep(for: .seconds(15))
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard let messages else { break }
            for data in messages {
                if case .ack(_, let seq, let rejected)? = try? Wire.decode(ServerMessage.self, from: data) { acks[seq] = rejected }
            }
        }
        return acks
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    static func part(_ flow: String, _ seq: Int, index: Int = 0, offset: Int64 = 0, data: Data, last: Bool = true, size: Int64? = nil, sha256: String? = nil, md5: String? = nil) -> WireBatch {
        WireBatch(flowId: flow, seq: seq, payload: .uploadPart(
            index: index, name: "evidence-\(index)", offset: offset, data: data, last: last, size: size ?? Int64(data.count),
            sha256: sha256 ?? hex(SHA256.hash(data: data)), md5: md5 ?? hex(Insecure.MD5.hash(data: data))))
    }

    /// A client may send event rows only for artifacts of the monitoring table: others are refused
    /// (and not stored); once an artifact is listed its rows are taken.
    @Test func eventStreamsOutsideTheMonitoringTableAreRefused() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        fleet.killAgent("a")
        let tls = try TLSSetup.clientContext(caCertificate: Self.serverCA(fleet), identity: fleet.identity("a"))
        let socket = try await Connector.openAgentChannel(url: Self.url(fleet), tls: tls, group: MultiThreadedEventLoopGroup.singleton)
        func events(_ artifact: String, _ seq: Int) -> WireBatch {
            WireBatch(flowId: EventStream.id(artifact: artifact), seq: seq, payload: .rows(artifact: artifact, source: "", rows: [#"{"Planted":1}"#]))
        }
        var acks = await Self.send([events("Made.Up.Name", 1)], on: socket)
        #expect(acks[1]??.contains("not in the monitoring table") == true, "\(acks)")
        try fleet.check(fleet.cli(["monitoring", "add", "Test.Clock"]))
        acks = await Self.send([events("Test.Clock", 2)], on: socket)
        #expect(acks[2] == .some(nil), "\(acks)")
        let made = try await fleet.api().eventsPage(["artifact": "Made.Up.Name"], after: nil)
        #expect(made.isEmpty)
    }

    /// The issue's attacks on the upload path, each refused before anything is written.
    @Test func uploadPartsAreCheckedBeforeAnythingIsWritten() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        fleet.killAgent("a")
        let id = try #require(fleet.clientId("a"))
        let staging = fleet.dir + "/srv/data/uploads/staging"
        func flow(_ extra: [String] = []) throws -> String {
            let collect = try fleet.cli(["collect", id, "Test.Sleep"] + extra)
            try fleet.check(collect)
            return collect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let tls = try TLSSetup.clientContext(caCertificate: Self.serverCA(fleet), identity: fleet.identity("a"))
        let socket = try await Connector.openAgentChannel(url: Self.url(fleet), tls: tls, group: MultiThreadedEventLoopGroup.singleton)
        defer { socket.close() }
        socket.send(AgentMessage.hello(version: Wire.version, queuedBatches: 0, droppedBatches: 0))
        let f = try flow()
        let x = Data("the real evidence".utf8)

        // Parts at a far offset (sparse terabyte files before): refused, nothing staged.
        var acks = await Self.send([
            Self.part(f, 1, offset: 1 << 40, data: Data([1]), last: false, size: (1 << 40) + 2),
            Self.part(f, 2, offset: (1 << 40) + 1, data: Data([2]), size: (1 << 40) + 2),
        ], on: socket)
        #expect(acks[1]??.contains("in order") == true && acks[2]??.contains("in order") == true, "\(acks)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging).isEmpty)
        // A "sha256" that is a path: refused.
        acks = await Self.send([Self.part(f, 3, index: 1, data: x, sha256: "../../etc/passwd")], on: socket)
        #expect(acks[3]??.contains("64 lower-case hex") == true, "\(acks)")
        // A real upload is filed under the digest the server computed.
        acks = await Self.send([Self.part(f, 4, index: 2, data: x)], on: socket)
        #expect(acks[4] == .some(nil))
        let sha = Self.hex(SHA256.hash(data: x))
        let blob = fleet.dir + "/srv/data/uploads/" + String(sha.prefix(2)) + "/" + sha
        #expect(FileManager.default.contents(atPath: blob) == x)
        // Other bytes claiming that digest: not deduplicated into it, not recorded, the blob intact.
        let forged = Data("planted bytes".utf8)
        acks = await Self.send([Self.part(f, 5, index: 3, data: forged, sha256: sha, md5: Self.hex(Insecure.MD5.hash(data: x)))], on: socket)
        #expect(acks[5] == .some(nil))
        #expect(FileManager.default.contents(atPath: blob) == x)
        let view = try await fleet.get("/flows/\(f)", as: FlowView.self)
        #expect(view.uploads.map(\.name) == ["evidence-2"])
        #expect(view.logs.contains { $0.contains("evidence-3") && $0.contains("not stored") })
        // Parts past the flow's upload limit: refused.
        let capped = try flow(["--max-upload-bytes", "100"])
        acks = await Self.send([Self.part(capped, 1, data: Data(repeating: 7, count: 150))], on: socket)
        #expect(acks[1]??.contains("limit") == true, "\(acks)")
        // An upload in progress is staged; its flow's end removes it; later parts are refused unwritten.
        acks = await Self.send([Self.part(f, 6, index: 4, data: Data(repeating: 1, count: 10), last: false, size: 20)], on: socket)
        #expect(acks[6] == .some(nil))
        #expect(FileManager.default.fileExists(atPath: staging + "/\(f)-4"))
        acks = await Self.send([WireBatch(flowId: f, seq: 7, payload: .status(FlowStatus(state: .finished, time: Date().timeIntervalSince1970)))], on: socket)
        #expect(acks[7] == .some(nil))
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging).isEmpty)
        acks = await Self.send([Self.part(f, 8, index: 5, data: Data(repeating: 2, count: 10))], on: socket)
        #expect(acks[8]??.contains("finished") == true, "\(acks)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging).isEmpty)
        // Another client's flow: refused.
        try fleet.startAgent("b")
        try await fleet.waitForAgents(["b"], timeout: 30, anyFrontend: true)
        let other = try #require(try await fleet.get("/flows", query: ["client_id": fleet.clientId("b")], as: [FlowRecord].self).first)
        acks = await Self.send([Self.part(other.flowId, 900, data: x)], on: socket)
        #expect(acks[900]??.contains("does not belong") == true, "\(acks)")

        // At start-up the server removes staged parts of flows that are over or unknown, and keeps
        // those of running flows.
        let live = try flow()
        try Data([1]).write(to: URL(fileURLWithPath: staging + "/\(live)-0"))
        try Data([1]).write(to: URL(fileURLWithPath: staging + "/\(f)-9"))
        try Data([1]).write(to: URL(fileURLWithPath: staging + "/F.0000000000000000-0"))
        fleet.killServer()
        try await fleet.startServer()
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging) == ["\(live)-0"])
    }

    /// A batch file torn in the agent's queue (as a power loss can leave it) is not silently lost:
    /// the flow's final status says a batch was lost, and the rest arrives.
    @Test func aBatchTornInTheAgentsQueueIsReportedAsLost() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let collect = try fleet.cli(["collect", id, "Test.Rows", "--args", "Count=3000", "--args", "Pause=4"])
        try fleet.check(collect)
        let flow = collect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 20, "flow running") { try await fleet.get("/flows/\(flow)", as: FlowView.self).flow.state == .running }
        // The server goes away; the agent finishes the collection into its queue.
        fleet.killServer()
        let queue = fleet.dir + "/agents/a/queue"
        try await fleet.waitUntil(timeout: 30, "the collection queued") {
            fleet.log("agent-a").contains("flow \(flow): finished")
        }
        fleet.killAgent("a")
        var rowFiles: [(name: String, rows: Int)] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: queue).sorted() where name.hasSuffix(".batch") {
            let batch = try Wire.decode(WireBatch.self, from: Data(contentsOf: URL(fileURLWithPath: queue + "/" + name)))
            if batch.flowId == flow, case .rows(_, _, let rows) = batch.payload { rowFiles.append((name, rows.count)) }
        }
        #expect(rowFiles.reduce(0) { $0 + $1.rows } == 3000)
        let torn = try #require(rowFiles.first)
        let data = try Data(contentsOf: URL(fileURLWithPath: queue + "/" + torn.name))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: queue + "/" + torn.name))
        try fleet.startAgent("a")
        try await fleet.startServer()
        try await fleet.waitUntil(timeout: 30, "the loss reported") {
            let view = try await fleet.get("/flows/\(flow)", as: FlowView.self).flow
            return view.state == .finished && view.errors.contains { $0.contains("1 batch was lost") }
        }
        let rows = try await fleet.results(["flow_id": flow])
        #expect(rows.count == 3000 - torn.rows)
        #expect(fleet.log("agent-a").contains("damaged batch files found at start"))
        #expect(fleet.log("server").contains("1 lost before acknowledgement"))
    }
}
