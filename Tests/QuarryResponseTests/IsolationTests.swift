import Foundation
import Testing
import VQL
@testable import QuarryResponse
#if canImport(Glibc)
import Glibc
#endif

/// Two network namespaces of the test's own joined by a veth pair: the "agent" side, and a
/// "peer" side with the Quarry server's address and another address, each with a TCP listener.
/// The host's own network and nftables are never touched.
final class IsolationLab {
    let agent: String
    let peer: String
    let serverAddress: String
    let otherAddress: String
    private var listeners: [pid_t] = []

    static let ip = Nft.ipPath
    static var available: Bool { getuid() == 0 && ip != nil && Nft.nftPath != nil }

    init() throws {
        let id = UInt16.random(in: 1000...9999)
        agent = "qiso\(id)a"
        peer = "qiso\(id)b"
        let subnet = Int(id % 200) + 20
        serverAddress = "10.214.\(subnet).2"
        otherAddress = "10.214.\(subnet).3"
        let ip = IsolationLab.ip ?? "ip"
        for step in [
            ["netns", "add", agent], ["netns", "add", peer],
            ["link", "add", "qi\(id)a", "type", "veth", "peer", "name", "qi\(id)b"],
            ["link", "set", "qi\(id)a", "netns", agent], ["link", "set", "qi\(id)b", "netns", peer],
            ["-n", agent, "addr", "add", "10.214.\(subnet).1/24", "dev", "qi\(id)a"],
            ["-n", peer, "addr", "add", serverAddress + "/24", "dev", "qi\(id)b"],
            ["-n", peer, "addr", "add", otherAddress + "/24", "dev", "qi\(id)b"],
            ["-n", agent, "link", "set", "qi\(id)a", "up"], ["-n", peer, "link", "set", "qi\(id)b", "up"],
            ["-n", agent, "link", "set", "lo", "up"], ["-n", peer, "link", "set", "lo", "up"],
        ] {
            let (status, _) = try Response.run([ip] + step)
            guard status == 0 else {
                destroy()
                throw ResponseError("ip \(step.joined(separator: " ")) failed")
            }
        }
        for address in [serverAddress, otherAddress] { try listen(address, 8000) }
    }

    /// A TCP listener in the peer namespace that accepts and closes every connection (spawned
    /// detached, holding none of the test's descriptors).
    func listen(_ address: String, _ port: Int) throws {
        let script = "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            + "s.bind(('\(address)', \(port)))\ns.listen(16)\nwhile True:\n  c,_=s.accept(); c.close()"
        let pid = Nft.spawnDetached([IsolationLab.ip ?? "ip", "netns", "exec", peer, "/usr/bin/python3", "-c", script], environment: ["PATH=/usr/bin:/bin"])
        guard pid > 0 else { throw ResponseError("cannot start a listener") }
        listeners.append(pid)
        for _ in 0..<50 where !canConnect(address, port, from: peer) { usleep(100_000) }
    }

    /// Whether a TCP connection from `namespace` to address:port succeeds within a second.
    func canConnect(_ address: String, _ port: Int, from namespace: String? = nil) -> Bool {
        let argv = [IsolationLab.ip ?? "ip", "netns", "exec", namespace ?? agent, "/usr/bin/python3", "-c",
                    "import socket,sys\ntry:\n  socket.create_connection(('\(address)', \(port)), timeout=1).close()\nexcept Exception:\n  sys.exit(1)"]
        return (try? Response.run(argv).0) == 0
    }

    func ruleset(_ namespace: String? = nil) throws -> String {
        try Response.run((namespace.map { [IsolationLab.ip ?? "ip", "netns", "exec", $0] } ?? []) + [Nft.nftPath ?? "nft", "list", "ruleset"]).1
    }

    func destroy() {
        for pid in listeners {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        listeners = []
        for ns in [agent, peer] { _ = try? Response.run([IsolationLab.ip ?? "ip", "netns", "del", ns]) }
    }

    deinit { destroy() }
}

@Suite(.serialized) struct IsolationTests {
    @Test func planParsesServersAndWritesOnlyItsOwnTable() throws {
        let resolve: (String) -> [String] = { $0 == "quarry.example" ? ["192.0.2.7", "2001:db8::7"] : [$0] }
        #expect(try IsolationPlan.peers("https://quarry.example:8443/", resolve: resolve)
            == [AllowedPeer(address: "192.0.2.7", port: 8443), AllowedPeer(address: "2001:db8::7", port: 8443)])
        #expect(try IsolationPlan.peers("http://10.0.0.1/", resolve: resolve) == [AllowedPeer(address: "10.0.0.1", port: 80)])
        #expect(try IsolationPlan.peers("10.0.0.1:8000", resolve: resolve) == [AllowedPeer(address: "10.0.0.1", port: 8000)])
        #expect(try IsolationPlan.peers("[2001:db8::1]:443", resolve: resolve) == [AllowedPeer(address: "2001:db8::1", port: 443)])
        #expect(try IsolationPlan.peers("2001:db8::1", resolve: resolve) == [AllowedPeer(address: "2001:db8::1", port: nil)])
        #expect(throws: ResponseError.self) { try IsolationPlan.peers("10.0.0.1:99999", resolve: resolve) }
        #expect(throws: ResponseError.self) { try IsolationPlan.peers("nowhere.invalid", resolve: { _ in [] }) }
        let plan = IsolationPlan(servers: [AllowedPeer(address: "192.0.2.7", port: 8443), AllowedPeer(address: "2001:db8::7", port: nil)], resolvers: ["192.0.2.53"])
        let script = plan.script
        #expect(script.contains("ip daddr 192.0.2.7 tcp dport 8443 accept"))
        #expect(script.contains("ip6 saddr 2001:db8::7 accept"))
        #expect(script.contains("ip daddr 192.0.2.53 udp dport 53 accept"))
        #expect(script.components(separatedBy: "policy drop;").count == 4)
        let tables = Set(script.matches(of: /table inet (\w+)/).map { String($0.1) })
        #expect(tables == ["quarry_isolation"])
    }

    @Test(.enabled(if: IsolationLab.available)) func isolateAllowsOnlyTheServerAndUnisolateRestores() throws {
        let lab = try IsolationLab()
        defer { lab.destroy() }
        let root = try Response.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hostRuleset = try lab.ruleset()
        #expect(lab.canConnect(lab.serverAddress, 8000) && lab.canConnect(lab.otherAddress, 8000))

        let (session, logger) = Response.session(stateRoot: root)
        let state = try Response.first(session, "SELECT isolate(servers=['https://\(lab.serverAddress):8000/'], netns='\(lab.agent)', deadman=0, reason='test') AS S FROM scope()", "S")
        #expect(state.flatMap { Response.bool($0, "Isolated") } == true, "\(logger.messages)")
        #expect(lab.canConnect(lab.serverAddress, 8000))
        #expect(!lab.canConnect(lab.otherAddress, 8000))
        let inside = try lab.ruleset(lab.agent)
        #expect(Set(inside.matches(of: /table (\w+) (\w+)/).map { "\($0.1) \($0.2)" }) == ["inet quarry_isolation"])
        #expect(try lab.ruleset() == hostRuleset)
        let status = try Response.rows(session, "SELECT Isolated, Servers FROM isolation_status()")
        #expect(status.first.flatMap { Response.bool($0, "Isolated") } == true)

        // A restart after the ruleset was lost (a reboot) puts the same table back from the record.
        #expect(try Response.run([IsolationLab.ip ?? "ip", "netns", "exec", lab.agent, Nft.nftPath ?? "nft", "delete", "table", "inet", "quarry_isolation"]).0 == 0)
        #expect(lab.canConnect(lab.otherAddress, 8000))
        let note = try Isolation.reapply(stateRoot: root)
        #expect(note?.contains("table re-added") == true)
        #expect(!lab.canConnect(lab.otherAddress, 8000) && lab.canConnect(lab.serverAddress, 8000))

        let lifted = try Response.first(session, "SELECT unisolate(reason='done') AS S FROM scope()", "S")
        #expect(lifted.flatMap { Response.bool($0, "Isolated") } == false, "\(logger.messages)")
        #expect(lab.canConnect(lab.serverAddress, 8000) && lab.canConnect(lab.otherAddress, 8000))
        #expect(try lab.ruleset(lab.agent).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(try lab.ruleset() == hostRuleset)
        #expect(try Isolation.reapply(stateRoot: root) == nil)
        let journal = try String(contentsOfFile: root + "/audit.jsonl", encoding: .utf8)
        #expect(journal.contains("\"action\":\"isolate\"") && journal.contains("\"action\":\"unisolate\""))
    }

    @Test(.enabled(if: IsolationLab.available)) func deadmanSwitchLiftsIsolationWithoutHeartbeat() throws {
        let lab = try IsolationLab()
        defer { lab.destroy() }
        let root = try Response.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (session, logger) = Response.session(stateRoot: root)
        _ = try Response.first(session, "SELECT isolate(servers='\(lab.serverAddress):8000', netns='\(lab.agent)', deadman=3) AS S FROM scope()", "S")
        #expect(!lab.canConnect(lab.otherAddress, 8000), "\(logger.messages)")
        // Heartbeats keep it in place past the deadline...
        let start = Date()
        var silent = Date()
        while Date().timeIntervalSince(start) < 5 {
            Isolation.heartbeat(stateRoot: root)
            silent = Date()
            usleep(500_000)
        }
        #expect(!lab.canConnect(lab.otherAddress, 8000))
        // ...and without them it lifts itself within the deadline (+ the 1 s polling), counted
        // from the last heartbeat (on a busy machine this thread may wake late from its sleep).
        var lifted = false
        while Date().timeIntervalSince(silent) < 12 {
            if !(try lab.ruleset(lab.agent)).contains("quarry_isolation") {
                lifted = true
                break
            }
            usleep(200_000)
        }
        let took = Date().timeIntervalSince(silent)
        #expect(lifted && took >= 2 && took <= 10, "lifted=\(lifted) after \(took) s")
        #expect(lab.canConnect(lab.otherAddress, 8000))
        #expect(!FileManager.default.fileExists(atPath: root + "/isolation/state.json"))
        let journal = try String(contentsOfFile: root + "/audit.jsonl", encoding: .utf8)
        #expect(journal.contains("isolation_deadman"))
    }
}
