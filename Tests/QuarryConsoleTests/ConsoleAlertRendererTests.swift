import FleetCore
import Testing

@testable import QuarryConsole

/// The alerts, response-actions and events pages as rendered: every POST form carries the
/// session's CSRF token, hostile text from agents is escaped, buttons follow the role.
@Suite struct ConsoleAlertRendererTests {
    let renderer = ConsoleRenderer()
    let header = HeaderView(name: "ivan", role: "investigator", isAdmin: false, csrf: "TOKEN-2_y")
    let probe = "<script>alert(1)</script>\"'&"
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"

    func alert(_ id: Int64, acknowledgedBy: String? = nil) -> AlertRecord {
        AlertRecord(
            id: id, time: 1_700_000_000, name: probe, severity: .high, clientId: "C.1", artifact: probe, details: "{\"x\":\"\(probe)\"}",
            acknowledgedBy: acknowledgedBy, acknowledgedAt: acknowledgedBy == nil ? nil : 1_700_000_100)
    }

    func action(_ state: String, canDecide: Bool) -> ActionRowView {
        ActionRowView(
            id: "A.1", clientId: "C.1", artifacts: ["Linux.Response.KillProcess"], parameters: ["Pid": probe], requester: probe, reason: probe,
            createdAt: 1_700_000_000, state: state, decidedBy: nil, decidedAt: nil, decisionReason: nil, flowId: nil, canDecide: canDecide)
    }

    @Test func alertsFormsCarryTheTokenAndTextIsEscaped() {
        let view = AlertsPageView(alerts: [alert(2), alert(1, acknowledgedBy: probe)], severity: .low, openOnly: true, canAcknowledge: true, next: "/alerts?before=1")
        let html = renderer.render(.alerts, title: "Alerts", view: view, header: header)
        let forms = html.components(separatedBy: "<form method=\"post\"").count - 1
        #expect(forms == 2)  // logout and the one open alert's acknowledge
        #expect(html.components(separatedBy: "name=\"csrf\" value=\"TOKEN-2_y\"").count - 1 == forms)
        #expect(html.contains("action=\"/alerts/2/ack\"") && !html.contains("action=\"/alerts/1/ack\""))
        #expect(!html.contains("<script>alert") && html.contains(escaped) && html.contains("by " + escaped))
        #expect(html.contains("<option value=\"low\" selected>") && html.contains("value=\"1\" checked"))
        let reader = renderer.render(.alerts, title: "Alerts", view: AlertsPageView(alerts: [alert(2)], severity: nil, openOnly: false, canAcknowledge: false, next: nil), header: header)
        #expect(!reader.contains("alert-ack-button") && !reader.contains("alerts-next"), "no next link without older alerts")
        #expect(html.contains("href=\"/alerts?before=1\" data-testid=\"alerts-next\""))
    }

    @Test func actionsShowDecisionFormsOnlyWhenPendingAndAllowed() {
        let html = renderer.render(.actions, title: "Actions", view: ["rows": [action("pending", canDecide: true)]], header: header)
        #expect(html.contains("action=\"/actions/A.1/approve\"") && html.contains("action=\"/actions/A.1/deny\""))
        let forms = html.components(separatedBy: "<form method=\"post\"").count - 1
        #expect(forms == 3 && html.components(separatedBy: "name=\"csrf\" value=\"TOKEN-2_y\"").count - 1 == forms)
        #expect(!html.contains("<script>alert") && html.contains(escaped))
        for row in [action("pending", canDecide: false), action("approved", canDecide: true)] {
            let other = renderer.render(.actions, title: "Actions", view: ["rows": [row]], header: header)
            #expect(!other.contains("action-approve") && !other.contains("action-deny"))
        }
    }

    @Test func eventsRowsAreEscapedJSONNewestFirst() {
        let rows = [
            EventRow(clientId: "C.1", artifact: "A", source: "", time: 1_700_000_002, seq: 1, index: 0, json: "{\"v\":\"\(probe)\"}"),
            EventRow(clientId: "C.1", artifact: "A", source: "", time: 1_700_000_001, seq: 0, index: 0, json: "{\"v\":1}"),
        ]
        let html = renderer.render(.events, title: "Events", view: EventsPageView(artifacts: ["B", "A"], artifact: "A", rows: rows, truncated: true), header: header)
        #expect(!html.contains("<script>alert") && html.contains("{&quot;v&quot;:&quot;" + escaped))
        #expect(html.contains("<option value=\"A\" selected>") && html.contains("<option value=\"B\">"))
        #expect(html.contains("The newest 2 rows") && html.contains("older rows not shown"))
        let first = html.range(of: "2023-11-14T22:13:22Z")?.lowerBound, second = html.range(of: "2023-11-14T22:13:21Z")?.lowerBound
        #expect(first.flatMap { first in second.map { first < $0 } } == true)
    }
}
