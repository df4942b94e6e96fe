// quarry-agent-sim: many simulated agents in one process, for load tests (bench/, not tests).
//
// Each simulated agent is a real fleet client: its own P-256 key, its own certificate signed by the
// server at enrolment (the real enrolment protocol), its own mutual-TLS WebSocket. It answers every
// collection request with realistic process rows in numbered batches, keeps unacknowledged batches
// in memory and sends them again after a reconnect (moving to the next server URL), like the real
// agent's queue. Every second it prints one JSON line of counters.
//
// quarry-agent-sim --config client.yaml --count N --identities DIR [--rows 10] [--connect-rate 500]
//                  [--server-url https://… (repeatable; default: the config's)]
import Fleet
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

struct Options {
    var config = ""
    var count = 100
    var identities = ""
    var rows = 10
    var connectRate = 500.0
    var urls: [String] = []

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fatalError("missing value for \(arguments[i - 1])") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--config": options.config = value()
            case "--count": options.count = Int(value()) ?? 100
            case "--identities": options.identities = value()
            case "--rows": options.rows = Int(value()) ?? 10
            case "--connect-rate": options.connectRate = Double(value()) ?? 500
            case "--server-url": options.urls.append(value())
            default: fatalError("unknown argument \(arguments[i])")
            }
            i += 1
        }
        return options
    }
}

/// Counters printed every second.
final class Stats: Sendable {
    struct Values: Codable {
        var connected = 0
        var enrolled = 0
        var requests = 0
        /// Requests other than the enrolment's Generic.Client.Info (i.e. hunts and collections).
        var huntRequests = 0
        var firstRequestAt: Double?
        var lastRequestAt: Double?
        var rowsSent = 0
        var batchesSent = 0
        var acked = 0
        var rejected = 0
        var reconnects = 0
        var pending = 0
    }
    let values = NIOLockedValueBox(Values())
    func update(_ body: (inout Values) -> Void) { values.withLockedValue(body) }
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let config: ClientConfig
do { config = try ConfigFile.load(ClientConfig.self, from: options.config) } catch { fatalError("\(error)") }
let urls = options.urls.isEmpty ? [config.serverURL] : options.urls
let stats = Stats()
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
try? FileManager.default.createDirectory(atPath: options.identities, withIntermediateDirectories: true)

/// One simulated endpoint.
actor SimulatedAgent {
    let index: Int
    var identity: PEMIdentity?
    var clientId = ""
    var pending: [String: WireBatch] = [:]
    var seen: Set<String> = []
    var urlIndex: Int

    init(index: Int) {
        self.index = index
        urlIndex = index % urls.count
    }

    func load() throws -> Bool {
        let base = options.identities + "/\(index)"
        guard let certificate = try? String(contentsOfFile: base + ".crt", encoding: .utf8),
            let key = try? String(contentsOfFile: base + ".key", encoding: .utf8),
            let id = try? String(contentsOfFile: base + ".id", encoding: .utf8)
        else { return false }
        identity = PEMIdentity(certificate: certificate, privateKey: key)
        clientId = id
        return true
    }

    func enrol() async throws {
        let (key, csr) = try CertificateTools.makeKeyAndRequest(commonName: "sim-\(index)")
        let socket = try await Connector.openAgentChannel(url: urls[urlIndex], tls: TLSSetup.clientContext(caCertificate: config.caCertificate, identity: nil), group: group)
        defer { socket.close() }
        socket.send(AgentMessage.enroll(secret: config.enrollmentSecret, csr: csr, hostname: "sim-\(index)", labels: []))
        guard let data = await socket.receive(max: 1)?.first, case .enrolled(let id, let certificate) = try Wire.decode(ServerMessage.self, from: data) else {
            throw TransportError("enrolment of sim-\(index) failed")
        }
        let base = options.identities + "/\(index)"
        // The simulated agents' keys are keys too: private from the first byte.
        try ConfigFile.writeSecret(Data(certificate.utf8), to: base + ".crt")
        try ConfigFile.writeSecret(Data(key.utf8), to: base + ".key")
        try ConfigFile.writeSecret(Data(id.utf8), to: base + ".id")
        identity = PEMIdentity(certificate: certificate, privateKey: key)
        clientId = id
        stats.update { $0.enrolled += 1 }
    }

    func run() async {
        var failures = 0
        while true {
            do {
                if identity == nil, try !load() { try await enrol() }
                let tls = try TLSSetup.clientContext(caCertificate: config.caCertificate, identity: identity)
                let socket = try await Connector.openAgentChannel(url: urls[urlIndex], tls: tls, group: group)
                failures = 0
                stats.update { $0.connected += 1 }
                socket.send(AgentMessage.hello(version: Wire.version, queuedBatches: pending.count, droppedBatches: 0))
                for batch in pending.values.sorted(by: { ($0.flowId, $0.seq) < ($1.flowId, $1.seq) }) { send(batch, on: socket) }
                while let messages = await socket.receive() {
                    for data in messages {
                        guard let message = try? Wire.decode(ServerMessage.self, from: data) else { continue }
                        handle(message, socket: socket)
                    }
                }
                stats.update { $0.connected -= 1; $0.reconnects += 1 }
            } catch {
                failures += 1
            }
            // Move to the next frontend, with backoff and jitter.
            urlIndex = (urlIndex + 1) % urls.count
            let ceiling = min(10.0, 0.25 * pow(2.0, Double(min(failures, 6))))
            try? await Task.sleep(for: .milliseconds(Int(Double.random(in: ceiling / 2...ceiling) * 1000)))
        }
    }

    func send(_ batch: WireBatch, on socket: AgentSocket) {
        socket.send(AgentMessage.batch(batch))
        stats.update { $0.batchesSent += 1 }
    }

    func handle(_ message: ServerMessage, socket: AgentSocket) {
        switch message {
        case .collect(let flowId, let request, _):
            guard seen.insert(flowId).inserted else { return }
            let now = Date().timeIntervalSince1970
            let artifact = request.artifacts.first ?? "Linux.Sys.Pslist"
            let isHunt = artifact != "Generic.Client.Info"
            stats.update {
                $0.requests += 1
                if isHunt {
                    $0.huntRequests += 1
                    if $0.firstRequestAt == nil { $0.firstRequestAt = now }
                    $0.lastRequestAt = now
                }
            }
            // A `Count` parameter asks for that many rows (ingestion tests); else --rows.
            let count = request.parameters["Count"].flatMap(Int.init) ?? options.rows
            let rows: [String]
            if artifact == "Generic.Client.Info" {
                rows = [#"{"Hostname":"sim-\#(index)","Fqdn":"sim-\#(index).example","OS":"linux","KernelVersion":"6.1.0-sim","IPs":["10.\#(index / 65536 % 256).\#(index / 256 % 256).\#(index % 256)"]}"#]
            } else {
                rows = (0..<count).map { n in
                    #"{"Pid":\#(1000 + n),"Ppid":1,"Name":"proc-\#(n)","Username":"root","CommandLine":"/usr/bin/proc-\#(n) --serve --port \#(8000 + n)","Exe":"/usr/bin/proc-\#(n)","CreateTime":"2026-11-29T00:00:00Z","RSS":\#(1 << 20 + n * 4096),"Status":"sleep"}"#
                }
            }
            var batches = [WireBatch(flowId: flowId, seq: 1, payload: .status(FlowStatus(state: .running, time: now)))]
            for start in stride(from: 0, to: rows.count, by: 1000) {
                batches.append(WireBatch(flowId: flowId, seq: batches.count + 1, payload: .rows(artifact: artifact, source: "", rows: Array(rows[start..<min(rows.count, start + 1000)]))))
            }
            batches.append(WireBatch(flowId: flowId, seq: batches.count + 1, payload: .status(FlowStatus(state: .finished, rows: rows.count, batches: batches.count, time: now))))
            stats.update { $0.rowsSent += rows.count }
            for batch in batches {
                pending["\(flowId)#\(batch.seq)"] = batch
                send(batch, on: socket)
            }
            stats.update { $0.pending += batches.count }
        case .ack(let flowId, let seq, let rejected):
            if pending.removeValue(forKey: "\(flowId)#\(seq)") != nil { stats.update { $0.pending -= 1 } }
            stats.update {
                $0.acked += 1
                if rejected != nil { $0.rejected += 1 }
            }
        default:
            break
        }
    }
}

signal(SIGPIPE, SIG_IGN)
let agents = (0..<options.count).map { SimulatedAgent(index: $0) }
Task {
    let spacing = 1.0 / max(1, options.connectRate)
    for agent in agents {
        Task { await agent.run() }
        try? await Task.sleep(for: .milliseconds(Int(spacing * 1000)))
    }
}
let encoder = JSONEncoder()
encoder.outputFormatting = [.sortedKeys]
let timer = DispatchSource.makeTimerSource(queue: .global())
timer.schedule(deadline: .now() + 1, repeating: 1)
timer.setEventHandler {
    var values = stats.values.withLockedValue { $0 }
    values.pending = max(0, values.pending)
    if let data = try? encoder.encode(values) {
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
timer.resume()
dispatchMain()
