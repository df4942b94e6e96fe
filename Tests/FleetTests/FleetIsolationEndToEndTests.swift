import Foundation
import Testing

/// Isolation as a responder uses it, end to end in network namespaces of the test's own: the
/// server and another listener in one namespace, the agent in another, joined by a veth pair. After
/// `quarry respond isolate` the other listener is unreachable from the agent while the server still
/// is (a collection still runs); killed -9, the server stops the heartbeats and the dead man's
/// switch lifts isolation by itself. The host's own nftables are never touched (checked).
extension FleetTests {
@Suite(.serialized, .enabled(if: FleetHarness.available && CLIRun.canIsolate && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs root, ip, nft and python3"))
struct FleetIsolationEndToEndTests {
    static let ip = "/usr/sbin/ip"

    @Test func isolatedAgentKeepsItsServerAndTheDeadmanLiftsIsolationWhenTheServerDies() async throws {
        let id = UInt16.random(in: 1000...9999)
        let (agentNS, peerNS) = ("qie\(id)a", "qie\(id)b")
        let subnet = Int(id % 200) + 20
        let (agentAddress, serverAddress, otherAddress) = ("10.217.\(subnet).1", "10.217.\(subnet).2", "10.217.\(subnet).3")
        let dir = NSTemporaryDirectory() + "quarry-isolation-e2e-\(id)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            for namespace in [agentNS, peerNS] { _ = try? CLIRun.run(Self.ip, ["netns", "del", namespace]) }
            try? FileManager.default.removeItem(atPath: dir)
        }
        for step in [
            ["netns", "add", agentNS], ["netns", "add", peerNS],
            ["link", "add", "qe\(id)a", "type", "veth", "peer", "name", "qe\(id)b"],
            ["link", "set", "qe\(id)a", "netns", agentNS], ["link", "set", "qe\(id)b", "netns", peerNS],
            ["-n", agentNS, "addr", "add", agentAddress + "/24", "dev", "qe\(id)a"],
            ["-n", peerNS, "addr", "add", serverAddress + "/24", "dev", "qe\(id)b"],
            ["-n", peerNS, "addr", "add", otherAddress + "/24", "dev", "qe\(id)b"],
            ["-n", agentNS, "link", "set", "qe\(id)a", "up"], ["-n", peerNS, "link", "set", "qe\(id)b", "up"],
            ["-n", agentNS, "link", "set", "lo", "up"], ["-n", peerNS, "link", "set", "lo", "up"],
        ] {
            #expect(try CLIRun.run(Self.ip, step) == 0, "ip \(step.joined(separator: " "))")
        }
        let hostRuleset = try Self.output(["/usr/sbin/nft", "list", "ruleset"])

        func spawn(_ namespace: String, _ arguments: [String], log: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.ip)
            process.arguments = ["netns", "exec", namespace] + arguments
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            processes.append(process)
            return process
        }
        func analyst(_ arguments: [String]) throws -> (status: Int32, stdout: String) {
            let out = try Self.run([Self.ip, "netns", "exec", peerNS, FleetHarness.binary] + arguments + ["--api-config", dir + "/srv/api.yaml"])
            return out
        }
        func reachable(_ address: String, _ port: Int) -> Bool {
            let script = "import socket,sys\ntry:\n  socket.create_connection(('\(address)', \(port)), timeout=1).close()\nexcept Exception:\n  sys.exit(1)"
            return (try? CLIRun.run(Self.ip, ["netns", "exec", agentNS, "/usr/bin/python3", "-c", script])) == 0
        }
        func waitFor(_ seconds: Double, _ what: String, _ condition: () throws -> Bool) throws {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if try condition() { return }
                Thread.sleep(forTimeInterval: 0.5)
            }
            throw HarnessError("timed out after \(seconds) s waiting for \(what)")
        }

        // The fleet: server in the peer namespace, agent in its own.
        let port = 8443
        #expect(try Self.run([FleetHarness.binary, "config", "generate", "--server-url", "https://\(serverAddress):\(port)", "--dir", dir + "/srv"]).status == 0)
        let client = try Self.run([FleetHarness.binary, "config", "client", "--server-config", dir + "/srv/server.yaml"])
        try client.stdout.write(toFile: dir + "/client.yaml", atomically: true, encoding: .utf8)
        let server = try spawn(peerNS, [FleetHarness.binary, "server", "--config", dir + "/srv/server.yaml"], log: dir + "/server.log")
        _ = try spawn(peerNS, ["/usr/bin/python3", "-c", "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('\(otherAddress)', 8000))\ns.listen(16)\nwhile True:\n  c,_=s.accept(); c.close()"], log: dir + "/other.log")
        try waitFor(30, "the server listening") { reachable(serverAddress, port) }
        _ = try spawn(agentNS, [FleetHarness.binary, "client", "--config", dir + "/client.yaml", "--state-dir", dir + "/agent"], log: dir + "/agent.log")
        try waitFor(60, "the agent enrolled") { FileManager.default.fileExists(atPath: dir + "/agent/client_id") }
        let clientId = try String(contentsOfFile: dir + "/agent/client_id", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try waitFor(30, "the agent connected") { try analyst(["clients", "list", "--format", "jsonl"]).stdout.contains("\"Connected\":true") }
        #expect(reachable(otherAddress, 8000) && reachable(serverAddress, port))

        // Isolate through the server, with a 12 s dead man's switch (the agent heartbeats every 5 s).
        let isolated = try analyst(["respond", "isolate", clientId, "--deadman", "12", "--reason", "end-to-end test", "--format", "jsonl"])
        #expect(isolated.status == 0, "\(isolated.stdout)\n\((try? String(contentsOfFile: dir + "/agent.log", encoding: .utf8)) ?? "")")
        #expect(!reachable(otherAddress, 8000), "the other host is still reachable")
        #expect(reachable(serverAddress, port), "the server is no longer reachable")
        let collected = try analyst(["collect", clientId, "Generic.Client.Info", "--wait", "--format", "jsonl"])
        #expect(collected.status == 0 && collected.stdout.contains(clientId), "a collection after isolation: \(collected.stdout.prefix(400))")
        let inside = try Self.output([Self.ip, "netns", "exec", agentNS, "/usr/sbin/nft", "list", "tables"])
        #expect(inside.trimmingCharacters(in: .whitespacesAndNewlines) == "table inet quarry_isolation", "\(inside)")
        #expect(try Self.output(["/usr/sbin/nft", "list", "ruleset"]) == hostRuleset)

        // The server dies: no more heartbeats, and the switch lifts isolation on its own.
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        let killed = Date()
        try waitFor(45, "the dead man's switch to lift isolation") { reachable(otherAddress, 8000) }
        let lifted = Date().timeIntervalSince(killed)
        print("dead man's switch (12 s) lifted isolation \(String(format: "%.1f", lifted)) s after the server was killed")
        #expect(lifted >= 5, "lifted too early: \(lifted) s")
        #expect(try Self.output([Self.ip, "netns", "exec", agentNS, "/usr/sbin/nft", "list", "tables"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(try Self.output(["/usr/sbin/nft", "list", "ruleset"]) == hostRuleset)
    }

    /// Runs a program to its end (killed after two minutes) and returns its status and standard
    /// output (standard error goes to a file beside, so it cannot mix into what is parsed).
    static func run(_ argv: [String]) throws -> (status: Int32, stdout: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        defer { watchdog.cancel() }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func output(_ argv: [String]) throws -> String { try run(argv).stdout }
}
}
