import Fleet
import FleetCore
import Foundation
import NIOPosix

/// A real fleet for a test: `quarry config generate` in a temporary folder, a `quarry server`
/// process on a loopback port, and `quarry client` processes with their own state folders.
/// Everything is killed and removed when the harness goes away.
final class FleetHarness: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let binary = root + "/.build/debug/quarry"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    let dir: String
    let port: Int
    var server: Process?
    var agents: [String: Process] = [:]
    var apiConfig: String { dir + "/srv/api.yaml" }
    var serverConfig: String { dir + "/srv/server.yaml" }
    var clientConfig: String { dir + "/client.yaml" }
    var definitions: String { dir + "/definitions" }

    /// Ports of the frontends (several share one datastore when `datastore` is PostgreSQL).
    let ports: [Int]
    var servers: [Int: Process] = [:]

    /// The agents' limits unless a test sets its own: the watchdog runs in every test, with a ceiling
    /// and budget far above what the other tests' (debug-build) collections use, so they measure what
    /// they are about and the watchdog tests set tight limits themselves.
    static func roomyAgentLimits() -> AgentLimits {
        var limits = AgentLimits()
        limits.maxMemoryMB = 4000
        limits.maxCPUPercent = 1000
        return limits
    }

    init(
        grace: Double? = nil, datastore: String? = nil, frontends: Int = 1, limits: ((inout ServerLimits) -> Void)? = nil,
        agentLimits: AgentLimits = FleetHarness.roomyAgentLimits()
    ) throws {
        dir = NSTemporaryDirectory() + "quarry-fleet-" + UUID().uuidString.prefix(8)
        let first = Self.freePortBlock(count: frontends, spacing: 7)
        port = first
        ports = (0..<frontends).map { first + $0 * 7 }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try check(run(["config", "generate", "--server-url", "https://127.0.0.1:\(port)", "--dir", dir + "/srv"]))
        var config = try ConfigFile.load(ServerConfig.self, from: serverConfig)
        if let grace { config.flowGraceSeconds = grace }
        if let datastore { config.datastore = datastore }
        limits?(&config.limits)
        try ConfigFile.save(config, to: serverConfig)
        for (index, port) in ports.enumerated() {
            var frontend = config
            frontend.port = port
            try ConfigFile.save(frontend, to: dir + "/srv/server\(index).yaml")
        }
        let client = try run(["config", "client", "--server-config", serverConfig])
        try check(client)
        try client.stdout.write(toFile: clientConfig, atomically: true, encoding: .utf8)
        // One agent config per frontend: that frontend first, the others to fail over to.
        for index in ports.indices {
            var agent = try ConfigFile.load(ClientConfig.self, from: clientConfig)
            let urls = (ports[index...] + ports[..<index]).map { "https://127.0.0.1:\($0)" }
            agent.serverURL = urls[0]
            agent.extraServerURLs = Array(urls.dropFirst())
            agent.limits = agentLimits
            try ConfigFile.save(agent, to: dir + "/client\(index).yaml")
        }
        try FileManager.default.createDirectory(atPath: definitions, withIntermediateDirectories: true)
        for (index, text) in Self.testArtifacts.components(separatedBy: "---\n").enumerated() {
            try text.write(toFile: definitions + "/test\(index).yaml", atomically: true, encoding: .utf8)
        }
    }

    deinit {
        for process in agents.values where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in servers.values where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        if ProcessInfo.processInfo.environment["QUARRY_KEEP_FLEET"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Artifacts the tests collect: many rows after a pause, a long sleep, rows then a long sleep in one
    /// source, an upload, a CPU burner, a memory hog and a folder listing.
    static let testArtifacts = """
        name: Test.ClientConfig
        description: What a collection sees of its agent's configuration, and its frontend's server.pem fetched through the pinned CA.
        sources:
          - query: |
              SELECT config.server_urls AS Urls, config.Version.Name AS Name, config.Labels AS Labels,
                     config.enrollment_secret AS Secret, url(parse=config.server_urls[0]).Host AS Host,
                     { SELECT Response, Content FROM http_client(url=config.server_urls[0] + 'server.pem') } AS Fetched
              FROM scope()
        ---
        name: Test.Rows
        parameters:
          - name: Count
            type: int
            default: "1000"
          - name: Pause
            default: "0"
        sources:
          - query: |
              SELECT _value AS N, format(format='row-%d', args=_value) AS Text
              FROM foreach(row={ SELECT sleep(time=atoi(string=Pause)) FROM scope() }, query={ SELECT * FROM range(start=0, end=Count) })
        ---
        name: Test.Typed
        description: Parameters of several declared types, echoed back.
        parameters:
          - name: Mode
            type: choices
            default: fast
            choices: [fast, thorough]
          - name: Deep
            type: bool
          - name: Pattern
            type: regex
            default: "."
          - name: Ratio
            type: float
            default: "0.5"
        sources:
          - query: SELECT Mode, Deep, Pattern, Ratio FROM scope()
        ---
        name: Test.Sleep
        parameters:
          - name: Seconds
            default: "30"
        sources:
          - query: SELECT sleep(time=atoi(string=Seconds)) AS Slept FROM scope()
        ---
        name: Test.Exec
        required_permissions:
          - EXECVE
        sources:
          - query: SELECT * FROM execve(argv=["true"])
        ---
        name: Test.Upload
        parameters:
          - name: Path
        sources:
          - query: SELECT upload(file=Path) AS Upload FROM scope()
        ---
        name: Test.LocalStore
        description: Rows kept in an encrypted local storage file (to the fleet's key), then uploaded.
        parameters:
          - name: Path
          - name: Marker
        sources:
          - query: |
              LET Stored = SELECT * FROM write_crypto_file(filename=Path, query={ SELECT Marker AS Marker, _value AS N FROM range(end=3) })
              SELECT len(list=Stored) AS Stored, upload(file=Path) AS Upload FROM scope()
        ---
        name: Test.Stream
        parameters:
          - name: Count
            default: "5000"
          - name: Seconds
            default: "60"
        sources:
          - query: |
              SELECT * FROM chain(
                a={ SELECT _value AS N FROM range(end=atoi(string=Count)) },
                b={ SELECT sleep(time=atoi(string=Seconds)) AS N FROM scope() })
        ---
        name: Test.Burn
        parameters:
          - name: Count
            default: "1000000000"
        sources:
          - query: |
              SELECT _value AS N FROM range(end=atoi(string=Count))
              WHERE format(format='%x', args=_value * 7919) =~ '^fffffff$'
        ---
        name: Test.Hog
        parameters:
          - name: Count
            default: "50000"
        sources:
          - query: |
              LET Held = SELECT _value AS N, format(format='%020000d', args=_value) AS Text
                FROM range(end=atoi(string=Count))
              SELECT len(list=Held) AS Held FROM scope()
        ---
        name: Test.Alert
        parameters:
          - name: Marker
        sources:
          - query: |
              SELECT alert(name='Exec from /tmp', severity='high', Marker=Marker, dedup=-1) AS Raised FROM scope()
        ---
        name: Test.AlertEvent
        type: CLIENT_EVENT
        sources:
          - query: SELECT alert(name='Tick alert', severity='low', Tick=Unix, dedup=-1) AS Raised FROM clock(ms=500)
        ---
        name: Test.BurnEvents
        type: CLIENT_EVENT
        sources:
          - query: |
              SELECT _value AS N FROM range(end=1000000000)
              WHERE format(format='%x', args=_value * 7919) =~ '^fffffff$'
        ---
        name: Test.Clock
        type: CLIENT_EVENT
        parameters:
          - name: Millis
            default: "1000"
        sources:
          - query: SELECT Unix AS Tick FROM clock(ms=atoi(string=Millis))
        ---
        name: Test.ExecEvents
        type: CLIENT_EVENT
        parameters:
          - name: Exe
            default: /tmp/quarry-dropper
        sources:
          - query: |
              SELECT Unix AS Time, 4242 AS Pid, 1 AS Ppid, 'bash' AS ParentName, 'root' AS User, Exe,
                     Exe + ' --beacon' AS CommandLine, false AS Fileless
              FROM clock(ms=500)
        ---
        name: Test.ServerFail
        type: SERVER_EVENT
        sources:
          - query: SELECT * FROM no_such_rule_plugin()
        ---
        name: Test.AutoRespond
        type: SERVER_EVENT
        sources:
          - query: |
              SELECT ClientId, collect_client(client_id=ClientId, artifacts='Test.Rows', args=dict(Count='2')).flow_id AS FlowId
              FROM watch_monitoring(artifact='Test.Clock') LIMIT 1
        ---
        name: Test.Files
        parameters:
          - name: Dir
        sources:
          - query: SELECT Name FROM glob(globs=Dir + '/*') ORDER BY Name
        """

    // MARK: processes

    func startServer(_ index: Int = 0) async throws {
        let name = index == 0 ? "server" : "server\(index)"
        let before = log(name).components(separatedBy: "listening on").count
        let process = try spawn(["server", "--config", dir + "/srv/server\(index).yaml", "--definitions", definitions], log: dir + "/\(name).log")
        servers[index] = process
        if index == 0 { server = process }
        try await waitUntil(timeout: 60, "server \(index) listening") {
            if !process.isRunning {  // it will not listen any more: say why now rather than in a minute
                throw HarnessError("server \(index) exited (\(process.terminationStatus)) before listening:\n\(self.log(name).suffix(3000))")
            }
            return self.log(name).components(separatedBy: "listening on").count > before
        }
    }

    /// A first port for `count` frontends `spacing` apart, each free on 127.0.0.1 now: below the
    /// kernel's ephemeral range (32768–60999 here), so no outgoing connection of a parallel test
    /// can be holding it by the time the server binds.
    static func freePortBlock(count: Int, spacing: Int) -> Int {
        for _ in 0..<200 {
            let first = Int.random(in: 10_000...(32_000 - count * spacing))
            if (0..<count).allSatisfy({ portIsFree(first + $0 * spacing) }) { return first }
        }
        return Int.random(in: 10_000...(32_000 - count * spacing))
    }

    static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    func killServer(_ index: Int = 0) {
        guard let server = servers[index] else { return }
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        servers[index] = nil
        if index == 0 { self.server = nil }
    }

    @discardableResult
    func startAgent(_ name: String, frontend: Int = 0) throws -> Process {
        let process = try spawn(["client", "--config", dir + "/client\(frontend).yaml", "--state-dir", dir + "/agents/" + name], log: dir + "/agent-\(name).log")
        agents[name] = process
        return process
    }

    func killAgent(_ name: String) {
        guard let process = agents[name] else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        agents[name] = nil
    }

    func clientId(_ name: String) -> String? {
        (try? String(contentsOfFile: dir + "/agents/\(name)/client_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func identity(_ name: String) throws -> PEMIdentity {
        PEMIdentity(
            certificate: try String(contentsOfFile: dir + "/agents/\(name)/client.crt", encoding: .utf8),
            privateKey: try String(contentsOfFile: dir + "/agents/\(name)/client.key", encoding: .utf8))
    }

    /// Waits until every named agent is enrolled, connected and has reported Generic.Client.Info.
    /// With several frontends the API's "connected" covers only the frontend answering: `anyFrontend`
    /// waits for the host facts alone.
    func waitForAgents(_ names: [String], timeout: Double = 30, anyFrontend: Bool = false) async throws {
        try await waitUntil(timeout: timeout, "agents \(names) connected") {
            let ids = names.compactMap(self.clientId)
            guard ids.count == names.count, let views = try? await self.get("/clients", as: [ClientView].self) else { return false }
            return ids.allSatisfy { id in views.contains { $0.client.clientId == id && ($0.connected || anyFrontend) && !$0.client.os.isEmpty } }
        }
    }

    /// The server process's resident memory in KiB (VmRSS), 0 if it is gone.
    func serverRSS(_ index: Int = 0) -> Int {
        guard let pid = servers[index]?.processIdentifier,
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    func log(_ name: String) -> String { (try? String(contentsOfFile: dir + "/\(name).log", encoding: .utf8)) ?? "" }

    private func spawn(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    // MARK: CLI and API

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func run(_ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // No command may hang a test run: kill it after two minutes.
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        defer { watchdog.cancel() }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Runs an analyst command with the administrator's credentials.
    func cli(_ arguments: [String], apiConfig: String? = nil) throws -> Output {
        try run(arguments + ["--api-config", apiConfig ?? self.apiConfig])
    }

    func check(_ output: Output) throws {
        guard output.status == 0 else { throw HarnessError("quarry exited \(output.status): \(output.stderr)") }
    }

    func api() throws -> APIClient { try APIClient(config: ConfigFile.load(APIConfig.self, from: apiConfig)) }

    func get<T: Decodable & Sendable>(_ path: String, query: [String: String?] = [:], as type: T.Type) async throws -> T {
        try await api().get(path, query: query, as: type)
    }

    /// Every row of a results query (read page by page, as the CLI does).
    func results(_ query: [String: String?]) async throws -> [ResultRow] {
        try await api().allResults(query)
    }

    func post<T: Decodable & Sendable, B: Encodable & Sendable>(_ path: String, body: B, as type: T.Type) async throws -> T {
        try await api().post(path, body: body, as: type)
    }

    func waitUntil(timeout: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        // One last look: when every core is busy with other tests this task may not run again
        // until after the deadline, though the awaited thing happened long before.
        if try await condition() { return }
        let agentLogs = agents.keys.sorted().map { "agent \($0) log:\n" + log("agent-" + $0).suffix(1500) }.joined(separator: "\n")
        throw HarnessError("timed out after \(timeout) s waiting for \(what)\nserver log:\n\(log("server").suffix(3000))\n\(agentLogs)")
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

