import Fleet
import FleetCore
import Foundation
import Testing

/// The console's alerts, response-actions and events pages against a real server and agent
/// (response approvals on, a client event artifact raising alerts), through curl.
extension FleetTests {
    @Test func consoleAlertsActionsAndEvents() async throws {
        let fleet = try FleetHarness()
        var config = try ConfigFile.load(ServerConfig.self, from: fleet.dir + "/srv/server0.yaml")
        config.responseApprovals = true
        try ConfigFile.save(config, to: fleet.dir + "/srv/server0.yaml")
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["user", "password", "admin"], input: Self.password + "\n"))
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--password", "--output", fleet.dir + "/rita.yaml"], input: Self.password + "\n"))
        try fleet.check(fleet.cli(["user", "add", "olga", "--role", "administrator", "--password", "--output", fleet.dir + "/olga.yaml"], input: Self.password + "\n"))
        try fleet.check(fleet.cli(["monitoring", "add", "Test.AlertEvent"]))
        try await fleet.waitUntil(timeout: 60, "an alert and an event row") {
            let alerts = (try? await fleet.get("/alerts", as: [AlertRecord].self)) ?? []
            let events = (try? fleet.cli(["events", "Test.AlertEvent", "--format", "jsonl"]).stdout) ?? ""
            return !alerts.isEmpty && events.contains("Raised")
        }
        let alert = try #require(try await fleet.get("/alerts", query: ["client_id": id], as: [AlertRecord].self).last)
        let alertId = String(try #require(alert.id))

        // A reader sees the alerts, without acknowledge buttons, and the server refuses the form.
        let rita = try ConsoleClient(fleet: fleet, name: "rita")
        #expect(try rita.signIn("rita", Self.password).status == 303)
        let ritaAlerts = try rita.get("/alerts")
        #expect(ritaAlerts.status == 200 && ritaAlerts.body.contains("data-testid=\"alerts-table\"") && ritaAlerts.body.contains("Tick alert"))
        #expect(ritaAlerts.body.contains("data-testid=\"nav-alerts\"") && !ritaAlerts.body.contains("data-testid=\"alert-ack-button\""))
        let ritaCSRF = try #require(ritaAlerts.field("csrf"))
        let refusedAck = try rita.post("/alerts/\(alertId)/ack", [("csrf", ritaCSRF)])
        #expect(refusedAck.status == 403 && refusedAck.body.contains("COLLECT_CLIENT"), "\(refusedAck.body)")

        // The administrator filters by severity, and acknowledges through the form (only with its token).
        let admin = try ConsoleClient(fleet: fleet, name: "admin")
        #expect(try admin.signIn("admin", Self.password).status == 303)
        #expect(try !admin.get("/alerts?severity=high").body.contains("Tick alert"))
        #expect(try admin.get("/alerts?severity=bogus").status == 400)
        // Pages start at `before` (an alert id): the tick artifact keeps adding newer alerts, and
        // on a loaded machine more than a page of them may come before this point.
        let from = String((Int64(alertId) ?? 0) + 1)
        let adminAlerts = try admin.get("/alerts?severity=low&open=1&before=\(from)")
        #expect(adminAlerts.body.contains("data-alert-id=\"\(alertId)\"") && adminAlerts.body.contains("data-testid=\"alert-ack-button\""))
        let adminCSRF = try #require(adminAlerts.field("csrf"))
        #expect(try admin.post("/alerts/\(alertId)/ack", []).status == 403)
        #expect(try admin.post("/alerts/\(alertId)/ack", [("csrf", ritaCSRF)]).status == 403)
        let acked = try admin.post("/alerts/\(alertId)/ack", [("csrf", adminCSRF)])
        #expect(acked.status == 303 && acked.header("Location") == "/alerts")
        let stored = try #require(try await fleet.get("/alerts", query: ["id": alertId], as: [AlertRecord].self).first)
        #expect(stored.acknowledgedBy == "admin" && stored.acknowledgedAt != nil)
        #expect(try !admin.get("/alerts?open=1&before=\(from)").body.contains("data-alert-id=\"\(alertId)\""))
        #expect(try admin.get("/alerts?before=\(from)").body.contains("by admin at"))
        #expect(try await fleet.get("/audit", as: [AuditEntry].self).contains { $0.action == "ack-alert" && $0.user == "admin" && $0.target == alertId })

        // Events: the picker offers the monitoring table's artifact; rows are shown as escaped JSON.
        let picker = try rita.get("/events")
        #expect(picker.status == 200 && picker.body.contains("<option value=\"Test.AlertEvent\""))
        let events = try rita.get("/events?artifact=Test.AlertEvent")
        let eventRows = events.body.components(separatedBy: "data-testid=\"event-row\"").count - 1
        #expect(events.status == 200 && eventRows > 0 && eventRows <= 200 && events.body.contains(id))
        #expect(events.body.contains("&quot;Raised&quot;") && !events.body.contains("{\"Raised\""))

        // A response action held for approval: not by its requester, not by a reader, not without
        // a token; the second analyst's approval through the console starts the flow.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["317"]
        try sleeper.run()
        defer { if sleeper.isRunning { kill(sleeper.processIdentifier, SIGKILL) } }
        let asked = try fleet.cli(["respond", "kill", id, "--pid", String(sleeper.processIdentifier), "--reason", "<b>needs two</b>"])
        #expect(asked.status == 3, "\(asked.stderr)")
        let action = try #require(asked.stdout.split(separator: "\n").first { $0.hasPrefix("A.") }.map(String.init))
        let adminActions = try admin.get("/actions")
        #expect(adminActions.status == 200 && adminActions.body.contains("data-action-id=\"\(action)\"") && adminActions.body.contains("&lt;b&gt;needs two&lt;/b&gt;"))
        #expect(!adminActions.body.contains("data-testid=\"action-approve\""))
        let own = try admin.post("/actions/\(action)/approve", [("csrf", adminCSRF)])
        #expect(own.status == 403 && own.body.contains("another analyst"), "\(own.body)")
        #expect(!(try rita.get("/actions").body.contains("data-testid=\"action-approve\"")))
        let byReader = try rita.post("/actions/\(action)/approve", [("csrf", ritaCSRF)])
        #expect(byReader.status == 403 && byReader.body.contains("REMEDIATION"), "\(byReader.body)")

        let olga = try ConsoleClient(fleet: fleet, name: "olga")
        #expect(try olga.signIn("olga", Self.password).status == 303)
        let olgaActions = try olga.get("/actions")
        #expect(olgaActions.body.contains("data-testid=\"action-approve\"") && olgaActions.body.contains("/actions/\(action)/approve"))
        let olgaCSRF = try #require(olgaActions.field("csrf"))
        #expect(try olga.post("/actions/\(action)/approve", [("reason", "no token")]).status == 403)
        #expect(try olga.post("/actions/\(action)/maybe", [("csrf", olgaCSRF)]).status == 404)
        #expect(sleeper.isRunning)
        let approved = try olga.post("/actions/\(action)/approve", [("csrf", olgaCSRF), ("reason", "confirmed")])
        #expect(approved.status == 303 && approved.header("Location") == "/actions", "\(approved.body)")
        sleeper.waitUntilExit()
        #expect(sleeper.terminationReason == .uncaughtSignal)
        let decided = try #require(try await fleet.get("/respond/actions", as: [PendingAction].self).first { $0.id == action })
        #expect(decided.state == .approved && decided.decidedBy == "olga" && decided.decisionReason == "confirmed" && decided.flowId != nil)
        #expect(try olga.post("/actions/\(action)/deny", [("csrf", olgaCSRF)]).status == 409, "decided once")
        #expect(try olga.get("/actions").body.contains("by olga"))
        #expect(try await fleet.get("/audit", as: [AuditEntry].self).contains { $0.action == "approve-response" && $0.user == "olga" && $0.target == action })
    }

    /// With more rows than it shows, the events page shows exactly the newest 200, newest first.
    @Test func consoleEventsPageShowsTheNewestRows() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        try fleet.check(fleet.cli(["user", "password", "admin"], input: Self.password + "\n"))
        try fleet.check(fleet.cli(["monitoring", "add", "Test.Clock", "--args", "Millis=20"]))
        func stored() async throws -> [EventRow] {
            var rows: [EventRow] = []
            var after: EventCursor?
            while true {
                let page = try await fleet.api().eventsPage(["artifact": "Test.Clock"], after: after, rows: 500)
                rows += page
                guard page.count == 500, let last = page.last else { return rows }
                after = last.cursor
            }
        }
        try await fleet.waitUntil(timeout: 60, "300 event rows") { try await stored().count >= 300 }
        try fleet.check(fleet.cli(["monitoring", "rm", "Test.Clock"]))
        var rows = try await stored()
        try await fleet.waitUntil(timeout: 30, "the rows to stop") {
            try await Task.sleep(for: .seconds(1))
            let now = try await stored()
            defer { rows = now }
            return now.count == rows.count
        }
        let admin = try ConsoleClient(fleet: fleet, name: "admin")
        #expect(try admin.signIn("admin", Self.password).status == 303)
        let page = try admin.get("/events?artifact=Test.Clock")
        #expect(page.status == 200 && page.body.contains("The newest 200 rows") && page.body.contains("older rows not shown"))
        let shown = page.body.components(separatedBy: "data-testid=\"event-row\"").dropFirst().compactMap { row in
            row.components(separatedBy: "<code>").dropFirst().first?.components(separatedBy: "</code>").first
        }
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
        }
        #expect(shown == rows.suffix(200).reversed().map { escaped($0.json) })
    }
}
