import Foundation
import Testing
import VQL
@testable import QuarryEvents

/// A DNS resolver of the test's own, in a network namespace it creates (a veth pair to the host
/// side; the host's own interfaces and resolver are never touched): a tiny Python responder
/// answering every A question with 10.9.8.7.
final class DNSLab {
    let namespace: String
    let hostSide: String
    let serverAddress: String
    private let responder: Process

    static let responderScript = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((sys.argv[1], 53))
        while True:
            data, peer = s.recvfrom(512)
            if len(data) < 12: continue
            end = 12
            while end < len(data) and data[end] != 0: end += 1 + data[end]
            question = data[12:end + 5]
            answer = b'\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04' + bytes([10, 9, 8, 7])
            s.sendto(data[:2] + b'\\x81\\x80\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x00' + question + answer, peer)
        """

    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static var available: Bool { getuid() == 0 && ip != nil }

    init() throws {
        let id = UInt16.random(in: 1000...9999)
        namespace = "qdns\(id)"
        hostSide = "qd\(id)a"
        let peer = "qd\(id)b"
        let subnet = Int(id % 200) + 20
        serverAddress = "10.213.\(subnet).2"
        let steps = [
            "ip netns add \(namespace)",
            "ip link add \(hostSide) type veth peer name \(peer)",
            "ip link set \(peer) netns \(namespace)",
            "ip addr add 10.213.\(subnet).1/30 dev \(hostSide)",
            "ip link set \(hostSide) up",
            "ip netns exec \(namespace) ip addr add \(serverAddress)/30 dev \(peer)",
            "ip netns exec \(namespace) ip link set \(peer) up",
            "ip netns exec \(namespace) ip link set lo up",
        ]
        for step in steps where Events.sh(step) != 0 {
            _ = Events.sh("ip netns del \(namespace); ip link del \(hostSide)")
            throw DNSLabError(step: step)
        }
        responder = Process()
        responder.executableURL = URL(fileURLWithPath: Self.ip ?? "/usr/sbin/ip")
        responder.arguments = ["netns", "exec", namespace, "python3", "-c", Self.responderScript, serverAddress]
        try responder.run()
        Thread.sleep(forTimeInterval: 0.5)
    }

    struct DNSLabError: Error, CustomStringConvertible {
        let step: String
        var description: String { "cannot set up the test network: \(step)" }
    }

    /// Asks the lab's resolver for `name` from a new process; returns its pid and the answer.
    func ask(_ name: String) throws -> (pid: Int32, answer: String) {
        let script = """
            import socket, struct, sys
            name, server = sys.argv[1], sys.argv[2]
            query = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0)
            query += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\x00\\x00\\x01\\x00\\x01'
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
            s.sendto(query, (server, 53))
            data, _ = s.recvfrom(512)
            print('.'.join(str(b) for b in data[-4:]))
            """
        let result = try Events.python(script, [name, serverAddress])
        return (result.pid, result.output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    deinit {
        kill(responder.processIdentifier, SIGKILL)
        responder.waitUntilExit()
        _ = Events.sh("ip netns del \(namespace)")
        _ = Events.sh("ip link del \(hostSide) 2>/dev/null")
    }
}

extension KernelSuite {
@Suite(.enabled(if: Events.bpfAvailable, Events.skipMessage), .enabled(if: DNSLab.available, "needs root and iproute2 for a network namespace"))
struct DNSTests {
    @Test func questionAndAnswerWithTheAskingProcess() throws {
        let lab = try DNSLab()
        let hub = Events.hub()
        let watch = Watch("SELECT * FROM watch_ebpf(events='net_packet_dns')", hub: hub)
        defer { watch.stop() }
        #expect(Events.wait { hub.attachedPrograms.contains("on_dns_egress") })
        let name = Events.marker("dns") + ".quarry.test"
        let asked = try lab.ask(name)
        #expect(asked.answer == "10.9.8.7")
        // The client's own packets: its query leaving, the answer arriving. (The responder's
        // socket, also in the host's cgroups, shows the mirror images.)
        func packet(_ direction: String, answer: Int64) -> Value? {
            watch.first {
                $0["EventData.metadata.Direction"].stringValue == direction && $0["EventData.proto_dns.QR"].intValue == answer
                    && $0["EventData.proto_dns.questions"].listElements?.first?["name"].stringValue == name
            }
        }
        let query = packet("egress", answer: 0)
        #expect(query?["System.HostProcessID"].intValue == Int64(asked.pid))
        #expect(query?["System.ProcessName"].stringValue == "python3")
        #expect(query?["EventData.dst"].stringValue == lab.serverAddress)
        #expect(query?["EventData.dst_port"].intValue == 53)
        #expect(query?["EventData.proto_dns.QR"].intValue == 0)
        #expect(query?["EventData.proto_dns.questions"].listElements?.first?["type"].stringValue == "A")
        let answer = packet("ingress", answer: 1)
        #expect(answer?["System.HostProcessID"].intValue == Int64(asked.pid))
        #expect(answer?["EventData.src"].stringValue == lab.serverAddress)
        #expect(answer?["EventData.src_port"].intValue == 53)
        #expect(answer?["EventData.proto_dns.QR"].intValue == 1)
        #expect(answer?["EventData.proto_dns.answers"].listElements?.first?["IP"].stringValue == "10.9.8.7")
        #expect(answer?["EventData.proto_dns.answers"].listElements?.first?["name"].stringValue == name)
    }
}
}
