import Fleet
import FleetCore
import Foundation
import Testing

/// A client's info says whether it is isolated: from the isolation actions' results as they
/// arrive, and from the agent at each connection — which is how the server learns that the dead
/// man's switch lifted isolation while the server was unreachable. nftables acts only inside a
/// network namespace of the test's own.
extension FleetTests {
@Suite(.serialized, .enabled(if: FleetHarness.available && CLIRun.canIsolate, "needs root, ip and nft"))
struct FleetIsolationInfoTests {
    @Test func clientInfoFollowsActionsAndTheAgentsReport() async throws {
        let namespace = "qfi\(UInt16.random(in: 1000...9999))"
        #expect(try CLIRun.run("/usr/sbin/ip", ["netns", "add", namespace]) == 0)
        defer { _ = try? CLIRun.run("/usr/sbin/ip", ["netns", "del", namespace]) }
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        func view() async throws -> ClientView { try await fleet.get("/clients/\(id)", as: ClientView.self) }
        // The agent said at connection that it is not isolated.
        try await fleet.waitUntil(timeout: 10, "the agent's first report") { try await view().isolated == false }

        let isolate = ["collect", id, "Linux.Response.Isolate", "--args", "Namespace=\(namespace)", "--args", "DeadmanSeconds=0",
                       "--args", "Servers=https://127.0.0.1:\(fleet.port)/", "--args", "Reason=test", "--wait"]
        try fleet.check(fleet.cli(isolate))
        #expect(try await view().isolated == true)
        let shown = try fleet.cli(["clients", "show", id, "--format", "jsonl"])
        #expect(shown.stdout.contains("\"Isolated\":true"), "\(shown.stdout)")

        try fleet.check(fleet.cli(["collect", id, "Linux.Response.Unisolate", "--args", "Namespace=\(namespace)", "--args", "Reason=test", "--wait"]))
        #expect(try await view().isolated == false)

        // Isolated again; then, with the agent away, its isolation is lifted the way the dead man's
        // switch lifts it (the table dropped and the record removed). Reconnecting, the agent says so.
        try fleet.check(fleet.cli(isolate))
        #expect(try await view().isolated == true)
        fleet.killAgent("a")
        #expect(try CLIRun.run("/usr/sbin/ip", ["netns", "exec", namespace, "/usr/sbin/nft", "delete", "table", "inet", "quarry_isolation"]) == 0)
        #expect(unlink(fleet.dir + "/agents/a/response/isolation/state.json") == 0)
        try fleet.startAgent("a")
        try await fleet.waitUntil(timeout: 30, "the agent's report") { try await view().isolated == false }
        // Kept apart from the notes analysts set on the client.
        #expect(try await fleet.get("/clients/\(id)/metadata", as: [String: String].self).isEmpty)
    }
}
}

/// Runs a program and returns its exit status.
enum CLIRun {
    static var canIsolate: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")
    }

    static func run(_ program: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
