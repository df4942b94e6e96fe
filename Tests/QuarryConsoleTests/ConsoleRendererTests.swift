import FleetCore
import Testing

@testable import QuarryConsole

@Suite struct ConsoleRendererTests {
    let renderer = ConsoleRenderer()
    let header = HeaderView(name: "ivan<", role: "investigator", isAdmin: false, csrf: "TOKEN-1_x")

    func client(labels: [String], hostname: String) -> ClientRecord {
        var client = ClientRecord(clientId: "C.1", enrolledAt: 1_700_000_000)
        client.hostname = hostname
        client.labels = labels
        return client
    }

    @Test func everyFormCarriesTheSessionsCSRFToken() {
        let view = ClientPageView(client(labels: ["a", "b"], hostname: "h"), connected: true, canLabel: true, flows: [])
        let html = renderer.render(.client, title: "h", view: view, header: header)
        let forms = html.components(separatedBy: "<form method=\"post\"").count - 1
        #expect(forms == 4)  // logout, two label removals, the label form
        #expect(html.components(separatedBy: "name=\"csrf\" value=\"TOKEN-1_x\"").count - 1 == forms, "\(html)")
        #expect(html.contains("data-testid=\"current-user\">ivan&lt; (investigator)"))
    }

    @Test func hostileTextIsEscapedEverywhere() {
        let probe = "<script>alert(1)</script>\"'&"
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"
        let clients = ClientsPageView(search: ClientSearch(query: probe, seen: nil), query: probe, clients: [], now: 0)
        let list = renderer.render(.clients, title: probe, view: clients, header: header, message: probe)
        let page = renderer.render(.client, title: probe, view: ClientPageView(client(labels: [probe], hostname: probe), connected: false, canLabel: true, flows: []), header: header)
        for html in [list, page] {
            #expect(!html.contains("<script>alert"))
            #expect(html.contains(escaped))
        }
    }

    @Test func aReaderGetsNoLabelForms() {
        let view = ClientPageView(client(labels: ["a"], hostname: "h"), connected: true, canLabel: false, flows: [])
        let html = renderer.render(.client, title: "h", view: view, header: header)
        #expect(!html.contains("data-testid=\"label-form\"") && !html.contains("data-testid=\"label-remove\""))
    }

    @Test func searchMatchesWordsLabelsAndLastSeen() {
        var web = client(labels: ["Web", "prod"], hostname: "web-01")
        web.os = "linux"
        web.lastSeen = 1000
        #expect(ClientSearch(query: "WEB", seen: nil).matches(web, now: 2000))
        #expect(ClientSearch(query: "label:prod linux", seen: "1h").matches(web, now: 2000))
        #expect(!ClientSearch(query: "label:pro", seen: nil).matches(web, now: 2000))
        #expect(!ClientSearch(query: "web db", seen: nil).matches(web, now: 2000))
        #expect(!ClientSearch(query: "", seen: "1h").matches(web, now: 1000 + 3601))
        #expect(ClientSearch(query: "", seen: "-24h").matches(web, now: 1000 + 86401))
        #expect(ClientSearch(query: "", seen: "bogus").seen == .any)
    }

    @Test func sessionsExpireIdleAndAtLogout() {
        final class Clock: @unchecked Sendable { var now = 0.0 }
        let clock = Clock()
        let sessions = ConsoleSessions(lifetime: 100, idleTimeout: 30, maxSessions: 2, now: { clock.now })
        let (token, session) = sessions.start(user: "ivan")
        #expect(sessions.session(for: token)?.csrfToken == session.csrfToken)
        #expect(sessions.session(for: token + "x") == nil)
        clock.now = 25
        #expect(sessions.session(for: token) != nil)  // used: idle deadline moves to 55
        clock.now = 54
        #expect(sessions.session(for: token) != nil)
        clock.now = 85
        #expect(sessions.session(for: token) == nil)  // idle for 31 s
        let (second, _) = sessions.start(user: "rita")
        sessions.end(second)
        #expect(sessions.session(for: second) == nil)
        // Full: the oldest gives way.
        let (a, _) = sessions.start(user: "a")
        clock.now = 86
        _ = sessions.start(user: "b")
        _ = sessions.start(user: "c")
        #expect(sessions.session(for: a) == nil && sessions.count == 2)
    }
}
