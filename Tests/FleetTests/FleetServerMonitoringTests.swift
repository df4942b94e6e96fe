import Fleet
import FleetCore
import FleetTestSupport
import Foundation
import Testing

/// Detection on the server, end to end with real processes: a SERVER_EVENT artifact in the server
/// monitoring table runs inside the server over the events a real agent sends, its rows become
/// server events and its alert() calls alerts; removing it stops it; a failing query is restarted
/// and logged; only administrators change the table.
extension FleetTests {
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetServerMonitoringTests {
    static let detection = "Server.Detection.ExecFromTmp"

    func alerts(_ fleet: FleetHarness, _ id: String) async -> [AlertRecord] {
        ((try? await fleet.get("/alerts", query: ["client_id": id, "limit": "1000"], as: [AlertRecord].self)) ?? []).filter { $0.name == Self.detection }
    }

    @Test func aServerDetectionTurnsAgentEventsIntoAlertsUntilRemoved() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))

        // Roles: readers see the table, only administrators (COLLECT_SERVER) change it.
        let reader = fleet.dir + "/reader.yaml", investigator = fleet.dir + "/investigator.yaml"
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", reader]))
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--output", investigator]))
        for config in [reader, investigator] {
            let refused = try fleet.cli(["monitoring", "add", "--server", Self.detection], apiConfig: config)
            #expect(refused.status != 0 && refused.stderr.contains("COLLECT_SERVER"), "\(refused.stderr)")
        }
        // A client event artifact is not a server one; unknown parameters are named.
        let wrongType = try fleet.cli(["monitoring", "add", "--server", "Test.Clock"])
        #expect(wrongType.status != 0 && wrongType.stderr.contains("SERVER_EVENT"), "\(wrongType.stderr)")
        let wrongParameter = try fleet.cli(["monitoring", "add", "--server", Self.detection, "--args", "Severty=low"])
        #expect(wrongParameter.status != 0 && wrongParameter.stderr.contains("did you mean Severity"), "\(wrongParameter.stderr)")

        let marker = "/tmp/quarry-dropper-\(UInt32.random(in: 0...UInt32.max))"
        try fleet.check(fleet.cli(["monitoring", "add", "--server", Self.detection, "--args", "EventArtifact=Test.ExecEvents", "--args", "DedupSeconds=0"]))
        let shown = try fleet.cli(["monitoring", "show", "--server", "--format", "jsonl"], apiConfig: reader)
        #expect(shown.status == 0 && shown.stdout.contains(Self.detection) && shown.stdout.contains("\"Creator\":\"admin\""), "\(shown.stdout) \(shown.stderr)")
        try fleet.check(fleet.cli(["monitoring", "add", "Test.ExecEvents", "--args", "Exe=\(marker)"]))

        try await fleet.waitUntil(timeout: 30, "an alert from the server detection") { await !alerts(fleet, id).isEmpty }
        let alert = try #require(await alerts(fleet, id).last)
        #expect(alert.artifact == Self.detection && alert.flowId.isEmpty && alert.severity == .high)
        #expect(alert.details.contains(marker) && alert.details.contains("T1036"), "\(alert.details)")
        // client_info() inside the server read the client's host name from the datastore.
        let hostname = try await fleet.get("/clients/\(id)", as: ClientView.self).client.hostname
        #expect(!hostname.isEmpty && alert.details.contains("\"Hostname\":\"\(hostname)\""), "\(alert.details)")
        // Event -> alert: from the server storing the agent's event to the alert stored.
        let api = try fleet.api()
        let events = try await api.eventsPage(["artifact": "Test.ExecEvents", "client_id": id], after: nil)
        let first = try #require(events.first)
        print("agent event stored -> server alert stored: \(Int(((alert.time - first.time) * 1000).rounded())) ms")
        #expect(alert.time - first.time < 5)
        // Audited as raised by the server; the rows are the artifact's server events.
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "alert" && $0.user == "server" && $0.target == Self.detection })
        #expect(audit.contains { $0.action == "server-monitoring-add" && $0.user == "admin" && $0.target == Self.detection })
        let rows = try fleet.cli(["events", Self.detection, "--format", "jsonl"], apiConfig: reader)
        #expect(rows.status == 0 && rows.stdout.contains("\"ClientId\":\"\(id)\"") && rows.stdout.contains(marker), "\(rows.stdout.prefix(500)) \(rows.stderr)")

        // How it fares: running, with rows and alerts counted (readers may look).
        let status = try #require(try await fleet.api().serverMonitoringStatus().first { $0.artifact == Self.detection })
        #expect(status.state == "running" && status.restarts == 0 && status.rows >= 1 && status.alerts >= 1, "\(status)")
        let table = try fleet.cli(["monitoring", "show", "--server", "--format", "jsonl"], apiConfig: reader)
        #expect(table.stdout.contains("\"State\":\"running\""), "\(table.stdout)")

        // Removed: the server stops it, and no alert follows.
        try fleet.check(fleet.cli(["monitoring", "rm", "--server", Self.detection]))
        try await fleet.waitUntil(timeout: 10, "the detection to stop") { fleet.log("server").contains("server monitoring: \(Self.detection) stopped") }
        let before = await alerts(fleet, id).count
        try await Task.sleep(for: .seconds(2))
        #expect(await alerts(fleet, id).count == before)
        #expect(try fleet.cli(["monitoring", "rm", "--server", Self.detection]).status != 0)
        #expect(try await fleet.get("/audit", as: [AuditEntry].self).contains { $0.action == "server-monitoring-remove" })
        try fleet.check(fleet.cli(["monitoring", "rm", "Test.ExecEvents"]))
    }

    /// The rule on the server over a real agent's exec events (eBPF or the process connector):
    /// a program started from /tmp becomes an alert. Prints the exec-to-alert time.
    @Test(.enabled(if: getuid() == 0, "eBPF or the process connector needs root"))
    func aRealExecFromTmpBecomesAnAlertThroughTheServerRule() async throws {
        let fleet = try FleetHarness()
        let (hook, received) = try await fleet.startWebhookListener()
        defer {
            kill(hook.processIdentifier, SIGKILL)
            hook.waitUntilExit()
        }
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["monitoring", "add", "--server", Self.detection]))
        try fleet.check(fleet.cli(["monitoring", "add", "Linux.Events.ProcessExecutions"]))
        let dropped = fleet.dir + "/dropper"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: dropped)
        let caught = try #require(try await fleet.execUntilAlert(dropped, clientId: id), "no alert for an exec from \(dropped) within 90 s")
        print("exec from /tmp on the agent -> alert from the server rule stored: \(Int(caught.seconds * 1000)) ms (attempt \(caught.attempts))")
        // The bound: an alert within 2 s of the exec.
        #expect(caught.seconds < 2)
        let alert = try #require(await alerts(fleet, id).first)
        #expect(alert.artifact == Self.detection && alert.details.contains(dropped) && alert.details.contains("T1036"), "\(alert.details)")
        // And the webhook call, from the same path as any alert.
        try await fleet.waitUntil(timeout: 10, "the webhook call") {
            ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").contains(Self.detection)
        }
    }

    /// Sigma rules run once on the server for the whole fleet: a real exec on an agent that one
    /// rule describes becomes an alert named after the rule, with its level and tags.
    @Test func aSigmaRuleOnTheServerAlertsOnARealExec() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let rule = """
            title: Marked true run
            id: 6a0f0c55-0000-4000-8000-0000000000aa
            level: medium
            tags: [attack.t1059]
            logsource: {category: process_creation, product: linux}
            detection:
              image: {Image|endswith: /true}
              marker: {CommandLine|contains: quarry-exec-}
              condition: image and marker
            details: 'pid %ProcessId%: %CommandLine%'
            """
        try fleet.check(fleet.cli(["monitoring", "add", "--server", "Server.Detection.Sigma", "--args", "SigmaRules=\(rule)"]))
        try fleet.check(fleet.cli(["monitoring", "add", "Linux.Events.ProcessExecutions"]))
        let caught = try #require(try await fleet.execUntilAlert("/bin/true", clientId: id), "no Sigma alert within 90 s")
        print("exec on the agent -> Sigma alert from the server rule: \(Int(caught.seconds * 1000)) ms (attempt \(caught.attempts))")
        let all = try await fleet.get("/alerts", query: ["client_id": id, "limit": "1000"], as: [AlertRecord].self)
        let alert = try #require(all.first { $0.name == "Marked true run" }, "\(all.map(\.name))")
        #expect(alert.artifact == "Server.Detection.Sigma" && alert.severity.rawValue == "medium", "\(alert)")
        #expect(alert.details.contains("attack.t1059") && alert.details.contains("quarry-exec-") && alert.details.contains("6a0f0c55"), "\(alert.details)")
    }

    /// Finished flows reach server rules as System.Flow.Completion events: a YARA hit in a hunt on a
    /// real agent becomes an alert naming the hunt and the flow; a collection without one does not.
    @Test func aYaraHitInAHuntBecomesAnAlert() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["monitoring", "add", "--server", "Server.Detection.YaraHits"]))
        // Rows of another artifact: no alert, but a completion event.
        try fleet.check(fleet.cli(["collect", id, "Test.Rows", "--args", "Count=3", "--wait"]))
        let marker = "QUARRY-HUNT-MARK-\(UInt32.random(in: 0...UInt32.max))"
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = ["python3", "-c", "import time; mark = '\(marker)'; time.sleep(120)"]
        try child.run()
        defer {
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
        }
        let created = try fleet.cli(["hunt", "create", "Linux.Detection.Yara.Process", "--args", "processRegex=^python", "--args", "yaraRule=\(marker)"])
        try fleet.check(created)
        try await fleet.waitUntil(timeout: 60, "an alert for the YARA hit") {
            ((try? await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self)) ?? []).contains { $0.name == "Server.Detection.YaraHits" }
        }
        let alerts = try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self).filter { $0.name == "Server.Detection.YaraHits" }
        #expect(alerts.count == 1)
        let alert = try #require(alerts.first)
        #expect(alert.artifact == "Server.Detection.YaraHits" && alert.details.contains("Linux.Detection.Yara.Process") && alert.details.contains("\"HuntId\":\"H."), "\(alert.details)")
        let completions = try fleet.cli(["events", "System.Flow.Completion", "--format", "jsonl"])
        #expect(completions.status == 0 && completions.stdout.contains("Test.Rows") && completions.stdout.contains("\"ClientId\":\"\(id)\""), "\(completions.stdout.prefix(800))")
    }

    /// Password spraying across the fleet: two real agents each see two failed SSH logins from one
    /// address (in their own auth logs, which the test writes); neither reaches the threshold of
    /// four, the fleet does, and the server rule raises one alert naming both clients.
    @Test func failedSSHLoginsOnSeveralClientsAddUpToOneAlert() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try fleet.startAgent("b")
        try await fleet.waitForAgents(["a", "b"])
        let ids = try ["a", "b"].map { try #require(fleet.clientId($0)) }
        for (name, id) in zip(["a", "b"], ids) {
            let log = fleet.dir + "/auth-\(name).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            try fleet.check(fleet.cli(["clients", "label", id, "--add", "ssh-\(name)"]))
            try fleet.check(fleet.cli(["monitoring", "add", "Linux.Events.SSHFailedLogin", "--label", "ssh-\(name)", "--args", "AuthLogPath=\(log)"]))
        }
        try fleet.check(fleet.cli(["monitoring", "add", "--server", "Server.Detection.SSHPasswordSpray", "--args", "Threshold=4", "--args", "WindowSeconds=120"]))
        var port = 40000
        func fail(_ name: String, from address: String) throws {
            port += 1
            let line = "Dec  1 10:00:00 host sshd[\(port)]: Failed password for invalid user u\(port) from \(address) port \(port) ssh2\n"
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: fleet.dir + "/auth-\(name).log"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(line.utf8))
            try handle.close()
        }
        // Until both agents follow their logs, a line goes unseen: probe from other addresses, a new
        // one each time (two failures each, below the threshold).
        var probe = 0
        try await fleet.waitUntil(timeout: 60, "both agents to follow their auth logs") {
            probe += 1
            for name in ["a", "b"] { try fail(name, from: "198.51.100.\(probe)") }
            let rows = (try? await fleet.api().eventsPage(["artifact": "Linux.Events.SSHFailedLogin"], after: nil)) ?? []
            return ids.allSatisfy { id in rows.contains { $0.clientId == id } }
        }
        for name in ["a", "b", "a", "b"] { try fail(name, from: "203.0.113.77") }
        let sprayed = Date()
        try await fleet.waitUntil(timeout: 20, "the password spray alert") {
            ((try? await fleet.get("/alerts", as: [AlertRecord].self)) ?? []).contains { $0.name == "Server.Detection.SSHPasswordSpray" }
        }
        print("4th failed login written -> fleet-wide spray alert listed: \(Int(Date().timeIntervalSince(sprayed) * 1000)) ms")
        let alerts = try await fleet.get("/alerts", as: [AlertRecord].self).filter { $0.name == "Server.Detection.SSHPasswordSpray" }
        #expect(alerts.count == 1, "\(alerts.map(\.details))")
        let alert = try #require(alerts.first)
        #expect(alert.details.contains("203.0.113.77") && ids.allSatisfy(alert.details.contains) && alert.clientId.isEmpty, "\(alert.details)")
        #expect(!alerts.contains { $0.details.contains("198.51.100.") })
        // The rule's row is stored just after its alert() call returns: wait for it rather than race it.
        var rows = try fleet.cli(["events", "Server.Detection.SSHPasswordSpray", "--format", "jsonl"])
        try await fleet.waitUntil(timeout: 10, "the spray rule's row among the server events") {
            rows = try fleet.cli(["events", "Server.Detection.SSHPasswordSpray", "--format", "jsonl"])
            return rows.stdout.contains("\"Failures\":4")
        }
        #expect(rows.status == 0 && rows.stdout.contains("\"Failures\":4"), "\(rows.stdout.prefix(600))")
    }

    /// A real connection (eBPF on the agent) to an address on the server's watch list: an alert
    /// naming the process and the list's note; connections elsewhere raise none.
    @Test(.enabled(if: getuid() == 0, "eBPF needs root"))
    func aConnectionToAWatchedAddressBecomesAnAlert() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let portFile = fleet.dir + "/listener.port"
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["python3", "-c", """
            import socket, sys, time
            s = socket.socket(); s.bind(('127.0.0.2', 0)); s.listen(128)
            open(sys.argv[1], 'w').write(str(s.getsockname()[1])); time.sleep(300)
            """, portFile]
        try listener.run()
        defer {
            kill(listener.processIdentifier, SIGKILL)
            listener.waitUntilExit()
        }
        try await fleet.waitUntil(timeout: 20, "the listener") { ((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "").count > 1 }
        let port = try String(contentsOfFile: portFile, encoding: .utf8)
        try fleet.check(fleet.cli(["monitoring", "add", "--server", "Server.Detection.WatchlistConnection", "--args", "WatchList=Address,Note\n127.0.0.2,quarry test c2\n"]))
        try fleet.check(fleet.cli(["monitoring", "add", "Linux.Events.Network", "--args", "RemoteAddressRegex=^127\\.0\\.0\\.[23]$"]))
        // Until the agent's watch is attached a connection goes unseen: connect, marked, until one alerts.
        var caught: String?
        let deadline = Date().addingTimeInterval(90)
        var attempt = 0
        while caught == nil, Date() < deadline {
            attempt += 1
            let marker = "quarry-c2-\(attempt)-\(UInt32.random(in: 0...UInt32.max))"
            for address in ["127.0.0.3", "127.0.0.2"] {
                let client = Process()
                client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                // 127.0.0.3 refuses (nothing listens there); the connection to it is not reported as made.
                client.arguments = ["python3", "-c", "import socket, sys, time\ntry: socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\nexcept OSError: pass\ntime.sleep(1)", address, port, marker]
                try client.run()
                client.waitUntilExit()
            }
            let alerts = (try? await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self)) ?? []
            caught = alerts.first { $0.name == "Server.Detection.WatchlistConnection" }?.details
        }
        let details = try #require(caught, "no alert for a connection to 127.0.0.2 within 90 s")
        #expect(details.contains("127.0.0.2") && details.contains("quarry test c2") && details.contains("quarry-c2-"), "\(details)")
        let all = try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self)
        #expect(!all.contains { $0.details.contains("127.0.0.3") })
    }

    /// collect_client() in a server rule: not in `automatic_response`, the request waits for an
    /// analyst as a pending alert and nothing runs; listed, the collection runs at once on the agent,
    /// made and audited as `server:RULE`.
    @Test func aRuleActsOnClientsOnlyWhenTheConfigAllowsIt() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let rule = "Test.AutoRespond"
        try fleet.check(fleet.cli(["monitoring", "add", "--server", rule]))
        try fleet.check(fleet.cli(["monitoring", "add", "Test.Clock", "--args", "Millis=300"]))
        try await fleet.waitUntil(timeout: 30, "the pending response alert") {
            ((try? await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self)) ?? []).contains { $0.name == "Server.Response.Pending" }
        }
        let pending = try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self).filter { $0.name == "Server.Response.Pending" }
        // The rule ends after one row and runs again, asking again: one alert an hour for the same request.
        try await Task.sleep(for: .seconds(2))
        #expect(try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self).filter { $0.name == "Server.Response.Pending" }.count == 1)
        #expect(pending.first?.artifact == rule && pending.first?.details.contains("Test.Rows") == true, "\(pending)")
        #expect(try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self).allSatisfy { !$0.creator.hasPrefix("server:") })

        // Allowed in server.yaml: the rule's request runs at once.
        fleet.killServer()
        var config = try ConfigFile.load(ServerConfig.self, from: fleet.dir + "/srv/server0.yaml")
        config.automaticResponse = [rule]
        try ConfigFile.save(config, to: fleet.dir + "/srv/server0.yaml")
        try await fleet.startServer()
        try await fleet.waitUntil(timeout: 30, "a collection made by the rule to finish") {
            ((try? await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self)) ?? []).contains { $0.creator == "server:\(rule)" && $0.state == .finished }
        }
        let flow = try #require(try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self).first { $0.creator == "server:\(rule)" && $0.state == .finished })
        #expect(flow.request.artifacts == ["Test.Rows"] && flow.rows == 2)
        #expect(try await fleet.get("/audit", as: [AuditEntry].self).contains { $0.action == "collect" && $0.user == "server:\(rule)" && $0.target == flow.flowId })
        try fleet.check(fleet.cli(["monitoring", "rm", "--server", rule]))
        try fleet.check(fleet.cli(["monitoring", "rm", "Test.Clock"]))
    }

    @Test func aFailingServerQueryIsRestartedWithBackoffAndTheServerStaysUp() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.check(fleet.cli(["monitoring", "add", "--server", "Test.ServerFail"]))
        // Restarted after 1 s, then 2 s: each end logged with the reason and the pause.
        try await fleet.waitUntil(timeout: 20, "two restarts") { fleet.log("server").contains("Test.ServerFail") && fleet.log("server").contains("restart 2 in 2 s") }
        let log = fleet.log("server")
        #expect(log.contains("restart 1 in 1 s") && log.contains("no_such_rule_plugin"), "\(log.suffix(2000))")
        // The status says so too, without the log.
        let status = try #require(try await fleet.api().serverMonitoringStatus().first)
        #expect(status.artifact == "Test.ServerFail" && status.restarts >= 2 && status.lastProblem?.contains("no_such_rule_plugin") == true, "\(status)")
        let shown = try fleet.cli(["monitoring", "show", "--server", "--format", "jsonl"])
        #expect(shown.stdout.contains("no_such_rule_plugin") && shown.stdout.contains("\"Restarts\":"), "\(shown.stdout)")
        // The table survives a server restart and runs again at start.
        fleet.killServer()
        try await fleet.startServer()
        try await fleet.waitUntil(timeout: 20, "the query to run again after the restart") {
            fleet.log("server").components(separatedBy: "server monitoring: starting Test.ServerFail").count == 3
        }
        let table = try await fleet.get("/server-monitoring", as: [MonitoringEntry].self)
        #expect(table.map(\.artifact) == ["Test.ServerFail"])
        try fleet.check(fleet.cli(["monitoring", "rm", "--server", "Test.ServerFail"]))
        try await fleet.waitUntil(timeout: 10, "the query to stop") { fleet.log("server").contains("server monitoring: Test.ServerFail stopped") }
        #expect(try await fleet.api().serverMonitoringStatus().isEmpty)
    }
}
}

/// Server rules on several frontends sharing PostgreSQL: each frontend runs the table, and since
/// `watch_monitoring()` sees the events its own frontend stored, every agent event is examined
/// exactly once, whichever frontend the agent reached.
extension FleetTests {
    @Test func serverRulesOnTwoFrontendsExamineEachEventOnce() async throws {
        guard let postgres = try await TestPostgres.shared() else { return }
        let database = try await postgres.createDatabase()
        let fleet = try FleetHarness(datastore: database.url, frontends: 2)
        for index in 0..<2 { try await fleet.startServer(index) }
        try fleet.startAgent("a", frontend: 0)
        try fleet.startAgent("b", frontend: 1)
        try await fleet.waitForAgents(["a", "b"], anyFrontend: true)
        let ids = try ["a", "b"].map { try #require(fleet.clientId($0)) }
        let rule = FleetServerMonitoringTests.detection
        // Added through frontend 0; frontend 1 starts it on its next scheduler pass.
        try fleet.check(fleet.cli(["monitoring", "add", "--server", rule, "--args", "EventArtifact=Test.ExecEvents", "--args", "DedupSeconds=0"]))
        try await fleet.waitUntil(timeout: 10, "frontend 1 to run the rule") { fleet.log("server1").contains("server monitoring: starting \(rule)") }
        try fleet.check(fleet.cli(["monitoring", "add", "Test.ExecEvents"]))
        func alerts(_ id: String) async throws -> [AlertRecord] {
            try await fleet.get("/alerts", query: ["client_id": id, "limit": "1000"], as: [AlertRecord].self).filter { $0.name == rule }
        }
        try await fleet.waitUntil(timeout: 60, "alerts for both agents") {
            for id in ids where (try await alerts(id)).count < 3 { return false }
            return true
        }
        try fleet.check(fleet.cli(["monitoring", "rm", "Test.ExecEvents"]))
        try await Task.sleep(for: .seconds(3))
        for id in ids {
            let events = try await fleet.api().eventsPage(["artifact": "Test.ExecEvents", "client_id": id], after: nil)
            #expect(try await alerts(id).count == events.count, "client \(id): one alert per event")
        }
        await postgres.dropDatabase(database.name)
    }
}
