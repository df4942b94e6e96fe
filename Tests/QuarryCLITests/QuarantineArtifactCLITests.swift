import Foundation
import Testing

/// Velociraptor's own Linux.Remediation.Quarantine, unchanged, run by `quarry artifacts collect
/// --client-config` inside a network namespace of the test's own (it runs `nft` itself, so it must
/// never run in the host's namespace). What the run needs from Quarry: `config.server_urls` from
/// the client configuration, `url().Host` with the port (Go's), `host()`, `execve` of tuples,
/// `http_client` reaching the frontend's `server.pem`, `if`/`chain`/`foreach` over stored queries.
@Suite(.serialized, .enabled(if: QuarantineLab.available, "needs root, ip, nft, python3 and ../shared's Velociraptor artifacts"))
struct QuarantineArtifactCLITests {
    @Test func runsUnchangedWithTheFrontendFromTheClientConfig() throws {
        let lab = try QuarantineLab()
        defer { lab.destroy() }
        let hostRuleset = try CLI.run(["list", "ruleset"], executable: QuarantineLab.nft)
        let folder = NSTemporaryDirectory() + "quarry-quarantine-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = folder + "/client.yaml"
        try "server_url: http://\(lab.server):8000\nca_certificate: \"\"\nenrollment_secret: unused\n".write(toFile: config, atomically: true, encoding: .utf8)

        func collect(_ extra: [String]) throws -> CLI.Result {
            try CLI.run(["netns", "exec", lab.agent, CLI.binary, "artifacts", "collect", "Linux.Remediation.Quarantine",
                         "--definitions", QuarantineLab.definitions, "--client-config", config,
                         "--args", "ForbiddenTestURL=http://\(lab.other):8000/", "--output", folder + "/q.zip", "--format", "jsonl"] + extra,
                        executable: QuarantineLab.ip)
        }
        let applied = try collect([])
        #expect(applied.status == 0, "\(applied.stderr)")
        let results = applied.stdout.split(separator: "\n").compactMap { line -> String? in
            guard let row = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return row["Result"] as? String
        }
        // The table was made, the frontend of the client configuration (address and port, from
        // url().Host as Go splits it) went into its rules, and the frontend answered for server.pem.
        #expect(results.contains { $0.contains("\"add\",\"table\",\"inet\",\"vrr_quarantine_table\"") && $0.contains("Returned 0") })
        #expect(results.contains { $0.contains("\"saddr\",\"\(lab.server)\",\"tcp\",\"sport\",\"{\",\"8000\",\"}\"") }, "\(results)")
        #expect(results.contains { $0.contains("\"daddr\",\"\(lab.server)\",\"tcp\",\"dport\",\"{\",\"8000\",\"}\"") })
        #expect(results.contains { $0 == "vrr_quarantine_table connection test successful." }, "\(results)")
        #expect(lab.served.count >= 1)

        let removed = try collect(["--args", "RemovePolicy=Y"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(removed.stdout.contains("vrr_quarantine_table table removed."))
        let inside = try CLI.run(["netns", "exec", lab.agent, QuarantineLab.nft, "list", "ruleset"], executable: QuarantineLab.ip)
        #expect(!inside.stdout.contains("vrr_quarantine_table"))
        #expect(lab.canConnect(lab.other))
        // The host's own rules were never touched.
        #expect(try CLI.run(["list", "ruleset"], executable: QuarantineLab.nft).stdout == hostRuleset.stdout)
    }
}

/// Two namespaces joined by a veth pair: the agent's, and a peer with two addresses each serving
/// HTTP on port 8000 (the "frontend", which has `server.pem`, and another host).
final class QuarantineLab {
    static let ip = "/usr/sbin/ip"
    static let nft = "/usr/sbin/nft"
    static let definitions = CLI.root + "/../shared/conformance/velociraptor-artifacts"
    static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: ip) && FileManager.default.isExecutableFile(atPath: nft)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
            && FileManager.default.fileExists(atPath: definitions + "/Linux/Remediation/Quarantine.yaml")
            && FileManager.default.isExecutableFile(atPath: CLI.binary)
    }

    let agent: String, peer: String, server: String, other: String
    private let root: String
    private var servers: [Process] = []

    init() throws {
        let id = UInt16.random(in: 1000...9999)
        agent = "qvq\(id)a"
        peer = "qvq\(id)b"
        let subnet = Int(id % 200) + 20
        server = "10.216.\(subnet).2"
        other = "10.216.\(subnet).3"
        root = NSTemporaryDirectory() + "quarry-frontend-\(id)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".write(toFile: root + "/server.pem", atomically: true, encoding: .utf8)
        for step in [
            ["netns", "add", agent], ["netns", "add", peer],
            ["link", "add", "qv\(id)a", "type", "veth", "peer", "name", "qv\(id)b"],
            ["link", "set", "qv\(id)a", "netns", agent], ["link", "set", "qv\(id)b", "netns", peer],
            ["-n", agent, "addr", "add", "10.216.\(subnet).1/24", "dev", "qv\(id)a"],
            ["-n", peer, "addr", "add", server + "/24", "dev", "qv\(id)b"],
            ["-n", peer, "addr", "add", other + "/24", "dev", "qv\(id)b"],
            ["-n", agent, "link", "set", "qv\(id)a", "up"], ["-n", peer, "link", "set", "qv\(id)b", "up"],
            ["-n", agent, "link", "set", "lo", "up"], ["-n", peer, "link", "set", "lo", "up"],
        ] {
            let r = try CLI.run(step, executable: QuarantineLab.ip)
            guard r.status == 0 else {
                destroy()
                throw QuarantineLabError(message: "ip \(step.joined(separator: " ")): \(r.stderr)")
            }
        }
        for address in [server, other] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: QuarantineLab.ip)
            process.arguments = ["netns", "exec", peer, "/usr/bin/python3", "-m", "http.server", "8000", "--bind", address, "--directory", root]
            process.standardOutput = FileHandle.nullDevice
            _ = FileManager.default.createFile(atPath: root + "/log-\(address)", contents: nil)
            process.standardError = FileHandle(forWritingAtPath: root + "/log-\(address)")
            process.standardInput = FileHandle.nullDevice
            try process.run()
            servers.append(process)
        }
        for address in [server, other] {
            for _ in 0..<50 where !canConnect(address) { usleep(100_000) }
        }
    }

    /// The requests the frontend logged for server.pem.
    var served: [String] {
        ((try? String(contentsOfFile: root + "/log-\(server)", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            .filter { $0.contains("GET /server.pem") }
    }

    /// Whether a TCP connection from the agent's namespace to address:8000 succeeds within a second.
    func canConnect(_ address: String) -> Bool {
        let script = "import socket,sys\ntry:\n  socket.create_connection(('\(address)', 8000), timeout=1).close()\nexcept Exception:\n  sys.exit(1)"
        return (try? CLI.run(["netns", "exec", agent, "/usr/bin/python3", "-c", script], executable: QuarantineLab.ip).status) == 0
    }

    func destroy() {
        // SIGKILL: a child spawned from a thread that blocks SIGTERM inherits the block and would
        // outlive a terminate().
        for process in servers where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        servers = []
        for namespace in [agent, peer] { _ = try? CLI.run(["netns", "del", namespace], executable: QuarantineLab.ip) }
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit { destroy() }
}

struct QuarantineLabError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
