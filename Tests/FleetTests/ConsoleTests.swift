@testable import Fleet
import FleetCore
import Foundation
import Testing

/// The web console against a real server and agent, through a real HTTP client (curl) and, when
/// Chromium is installed, a real browser (Selenium, scripts/console_browser.py).
extension FleetTests {
    static let password = "a long console password"

    /// A server with one agent and a reader `rita` with a console password; the agent's client
    /// carries `labels` (set through the API).
    static func consoleFleet(labels: [String]) async throws -> (fleet: FleetHarness, client: String) {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--password", "--output", fleet.dir + "/rita.yaml"], input: password + "\n"))
        _ = try await fleet.post("/clients/\(id)/labels", body: LabelRequest(add: labels, remove: []), as: [String].self)
        return (fleet, id)
    }

    /// Sign-in, cookie flags, the security headers, CSRF refusal, role refusal, escaping, logout —
    /// and API keys still working beside it.
    @Test func consoleSignInSessionsCSRFAndRoles() async throws {
        let probe = "<img src=x onerror=alert(1)>\"'"
        let (fleet, id) = try await Self.consoleFleet(labels: [probe, "web"])
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--password", "--output", fleet.dir + "/ivan.yaml"], input: Self.password + "\n"))
        try fleet.check(fleet.cli(["user", "password", "admin"], input: Self.password + "\n"))
        #expect(try fleet.cli(["user", "password", "admin"], input: "short\n").status != 0)

        let rita = try ConsoleClient(fleet: fleet, name: "rita")
        // Pages need a session: a read goes to the sign-in page.
        let anonymous = try rita.get("/clients")
        #expect(anonymous.status == 303 && anonymous.header("Location") == "/login")
        let login = try rita.get("/login")
        #expect(login.status == 200 && login.body.contains("data-testid=\"login-username\""))
        let policy = try #require(login.header("Content-Security-Policy"))
        #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
        #expect(login.header("X-Frame-Options") == "DENY" && login.header("X-Content-Type-Options") == "nosniff")

        // Wrong password, unknown user, and a sign-in form not from this site are refused.
        #expect(try rita.signIn("rita", "not the password").status == 401)
        #expect(try rita.signIn("nobody", Self.password).status == 401)
        let forged = try rita.post("/login", [("username", "rita"), ("password", Self.password)])
        #expect(forged.status == 403 && forged.headers("Set-Cookie").allSatisfy { !$0.hasPrefix("quarry_session=") || $0.hasPrefix("quarry_session=;") })

        let signedIn = try rita.signIn("rita", Self.password)
        #expect(signedIn.status == 303 && signedIn.header("Location") == "/clients")
        let cookie = try #require(signedIn.headers("Set-Cookie").first { $0.hasPrefix("quarry_session=") })
        for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] { #expect(cookie.contains(flag), "\(cookie)") }

        // The clients page: the agent, its labels escaped, and the search.
        let clients = try rita.get("/clients")
        #expect(clients.status == 200 && clients.body.contains("data-testid=\"clients-table\"") && clients.body.contains(id))
        #expect(clients.body.contains("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;") && !clients.body.contains(probe))
        #expect(try rita.get("/clients?q=label:web").body.contains(id))
        #expect(try !rita.get("/clients?q=no-such-host-anywhere").body.contains(id))
        #expect(try !rita.get("/clients?seen=-24h").body.contains(id))
        let page = try rita.get("/clients/\(id)")
        #expect(page.status == 200 && page.body.contains("data-testid=\"flows-table\"") && page.body.contains("Generic.Client.Info"))
        // A reader sees no label form, and the server refuses the post even with a good CSRF token.
        #expect(!page.body.contains("data-testid=\"label-form\""))
        let csrf = try #require(page.field("csrf"))
        let refused = try rita.post("/clients/\(id)/labels", [("csrf", csrf), ("add", "by-reader")])
        #expect(refused.status == 403 && refused.body.contains("LABEL_CLIENT"), "\(refused.body)")
        #expect(try rita.get("/audit").status == 403)

        // An investigator may label, but only from its own pages: no token, a wrong one, or a
        // browser saying the post is cross-site are refused.
        let ivan = try ConsoleClient(fleet: fleet, name: "ivan")
        #expect(try ivan.signIn("ivan", Self.password).status == 303)
        let ivanCSRF = try #require(try ivan.get("/clients/\(id)").field("csrf"))
        #expect(try ivan.post("/clients/\(id)/labels", [("add", "no-token")]).status == 403)
        #expect(try ivan.post("/clients/\(id)/labels", [("csrf", csrf), ("add", "rita-token")]).status == 403)
        #expect(try ivan.post("/clients/\(id)/labels", [("csrf", ivanCSRF), ("add", "cross")], headers: ["Sec-Fetch-Site: cross-site"]).status == 403)
        #expect(try ivan.post("/clients/\(id)/labels", [("csrf", ivanCSRF), ("add", "evil")], headers: ["Origin: https://evil.example"]).status == 403)
        let added = try ivan.post("/clients/\(id)/labels", [("csrf", ivanCSRF), ("add", "triaged")])
        #expect(added.status == 303)
        let removed = try ivan.post("/clients/\(id)/labels", [("csrf", ivanCSRF), ("remove", "web")])
        #expect(removed.status == 303)
        let labels = try await fleet.get("/clients/\(id)", as: ClientView.self).client.labels
        #expect(labels.contains("triaged") && !labels.contains("web"))
        #expect(!labels.contains { ["by-reader", "no-token", "rita-token", "cross", "evil"].contains($0) })

        // The administrator's audit page shows the console's actions; the API key still works.
        let admin = try ConsoleClient(fleet: fleet, name: "admin")
        #expect(try admin.signIn("admin", Self.password).status == 303)
        let audit = try admin.get("/audit")
        #expect(audit.status == 200 && audit.body.contains("console-login") && audit.body.contains("triaged"))
        #expect(try await fleet.get("/clients", as: [ClientView].self).count == 1)

        // Logout ends the session (the old cookie no longer opens a page); so does removing the user.
        let logout = try ivan.post("/logout", [("csrf", ivanCSRF)])
        #expect(logout.status == 303 && logout.header("Location") == "/login")
        #expect(try ivan.get("/clients").status == 303)
        try fleet.check(fleet.cli(["user", "rm", "rita"]))
        #expect(try rita.get("/clients").status == 303)
        let script = try admin.get("/assets/console.js")
        #expect(script.status == 200 && script.header("Content-Type")?.hasPrefix("text/javascript") == true)
    }

    /// Hunts with their progress, and a hunt's results paged by the server (100 rows a page).
    @Test func consoleHuntPagesResultsOnTheServer() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        try fleet.check(fleet.cli(["user", "password", "admin"], input: Self.password + "\n"))
        let created = try fleet.cli(["hunt", "create", "Test.Rows", "--args", "Count=250", "--description", "<b>rows</b>"])
        try fleet.check(created)
        let hunt = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 60, "hunt done") { try await Self.finished(fleet, hunt: hunt).count == 1 }

        let admin = try ConsoleClient(fleet: fleet, name: "admin")
        #expect(try admin.signIn("admin", Self.password).status == 303)
        let hunts = try admin.get("/hunts")
        #expect(hunts.body.contains("data-testid=\"hunts-table\"") && hunts.body.contains(hunt) && hunts.body.contains("&lt;b&gt;rows&lt;/b&gt;"))
        #expect(hunts.body.contains("<span data-testid=\"hunt-progress\">1/1</span>"))
        var path = "/hunts/\(hunt)"
        var seen: [String] = []
        for expected in [100, 100, 50] {
            let page = try admin.get(path)
            #expect(page.status == 200 && page.body.contains("data-testid=\"results-table\""))
            let rows = page.body.components(separatedBy: "data-testid=\"result-row\"").dropFirst()
            #expect(rows.count == expected)
            seen += rows.compactMap { row in row.range(of: "row-\\d+", options: .regularExpression).map { String(row[$0]) } }
            guard let next = page.body.range(of: "data-testid=\"results-next\"") else { break }
            let link = page.body[..<next.lowerBound].components(separatedBy: "href=\"").last?.split(separator: "\"").first.map(String.init) ?? ""
            path = link.replacingOccurrences(of: "&amp;", with: "&")
        }
        #expect(seen.count == 250 && Set(seen).count == 250)

        // Export: every row of the source, streamed, as CSV (header + one line a row) and JSON lines.
        let first = try admin.get("/hunts/\(hunt)")
        let csvLink = try #require(first.body.range(of: "data-testid=\"export-csv\"").map { marker in
            first.body[..<marker.lowerBound].components(separatedBy: "href=\"").last?.split(separator: "\"").first.map(String.init) ?? ""
        }).replacingOccurrences(of: "&amp;", with: "&")
        let csv = try admin.get(csvLink)
        #expect(csv.status == 200 && csv.header("Content-Type")?.hasPrefix("text/csv") == true)
        #expect(csv.header("Content-Disposition")?.contains("attachment") == true)
        let lines: [String] = csv.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let header: String = lines.first ?? ""
        #expect(header == "ClientId,Fqdn,FlowId,N,Text")
        #expect(lines.count == 251)
        let texts: [String] = lines.dropFirst().compactMap { line in line.components(separatedBy: ",").last }
        #expect(Set(texts).count == 250)
        let jsonl = try admin.get(csvLink.replacingOccurrences(of: "format=csv", with: "format=jsonl"))
        let objects: [[String: Any]] = jsonl.body.components(separatedBy: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        let rowTexts: [String] = objects.compactMap { $0["Text"] as? String }
        #expect(objects.count == 250)
        #expect(rowTexts.allSatisfy { $0.hasPrefix("row-") })
        #expect(try admin.get("/hunts/\(hunt)/export?format=xlsx").status == 400)
    }

    /// A client's flow has a page of its own: reached from the client page, its results paged on
    /// the server, every row exported, its log shown.
    @Test func consoleFlowPagePagesAndExportsResults() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        try fleet.check(fleet.cli(["user", "password", "admin"], input: Self.password + "\n"))
        try fleet.check(fleet.cli(["collect", id, "Test.Rows", "--args", "Count=150", "--wait"]))
        let flowId = try #require(try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self).first?.flowId)

        let admin = try ConsoleClient(fleet: fleet, name: "admin")
        #expect(try admin.signIn("admin", Self.password).status == 303)
        let client = try admin.get("/clients/\(id)")
        #expect(client.body.contains("href=\"/flows/\(flowId)\" data-testid=\"flow-link\""), "\(client.body)")
        let page = try admin.get("/flows/\(flowId)")
        #expect(page.status == 200 && page.body.contains("data-testid=\"flow-state\">finished<"))
        #expect(page.body.components(separatedBy: "data-testid=\"result-row\"").count - 1 == 100)
        #expect(page.body.contains("data-testid=\"flow-log\""))
        let next = try #require(page.body.range(of: "data-testid=\"results-next\"").map { marker in
            page.body[..<marker.lowerBound].components(separatedBy: "href=\"").last?.split(separator: "\"").first.map(String.init) ?? ""
        }).replacingOccurrences(of: "&amp;", with: "&")
        #expect(try admin.get(next).body.components(separatedBy: "data-testid=\"result-row\"").count - 1 == 50)
        let csvLink = try #require(page.body.range(of: "data-testid=\"export-csv\"").map { marker in
            page.body[..<marker.lowerBound].components(separatedBy: "href=\"").last?.split(separator: "\"").first.map(String.init) ?? ""
        }).replacingOccurrences(of: "&amp;", with: "&")
        let csv = try admin.get(csvLink)
        #expect(csv.status == 200 && csv.header("Content-Disposition")?.contains(flowId) == true)
        let lines = csv.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.first == "ClientId,Fqdn,FlowId,N,Text" && lines.count == 151)
        #expect(try admin.get("/flows/F.0000000000000000").status == 404)

        // The column filter: the datastore keeps only matching rows, on the page and in the export.
        #expect(page.body.contains("data-testid=\"results-filter\"") && page.body.contains("<option value=\"Text\""))
        let filtered = try admin.get("/flows/\(flowId)?artifact=Test.Rows&column=Text&contains=ROW-14")
        #expect(filtered.body.components(separatedBy: "data-testid=\"result-row\"").count - 1 == 11, "row-14 and row-140…149")
        #expect(filtered.body.contains("data-testid=\"filter-clear\"") && filtered.body.contains("value=\"ROW-14\""))
        let filteredCSV = try admin.get("/flows/\(flowId)/export?artifact=Test.Rows&format=csv&column=Text&contains=row-14")
        #expect(filteredCSV.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 12)
        #expect(try admin.get("/flows/\(flowId)?column=Text").status == 400)
        #expect(try await fleet.results(["flow_id": flowId, "column": "N", "contains": "7"]).count == (0..<150).filter { String($0).contains("7") }.count)

        // An uploaded file is a link on its flow's page; following it downloads the file.
        let evidence = fleet.dir + "/console-evidence.txt"
        try Data("console evidence\n".utf8).write(to: URL(fileURLWithPath: evidence))
        try fleet.check(fleet.cli(["collect", id, "Test.Upload", "--args", "Path=\(evidence)", "--wait"]))
        let uploadFlow = try #require(try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self)
            .first { $0.request.artifacts == ["Test.Upload"] }?.flowId)
        let uploadPage = try admin.get("/flows/\(uploadFlow)")
        let marker = try #require(uploadPage.body.range(of: "\" download data-testid=\"upload-link\""))
        let href: String = uploadPage.body[..<marker.lowerBound].components(separatedBy: "href=\"").last ?? ""
        let file = try admin.get(href)
        #expect(file.status == 200 && file.body == "console evidence\n", "\(href) \(file.status)")
        #expect(file.header("Content-Disposition")?.contains("console-evidence.txt") == true)
        // Without a session there is no file.
        let anonymous = try ConsoleClient(fleet: fleet, name: "nobody")
        #expect(try anonymous.get(href).body != "console evidence\n")

        // A running flow's page follows it: its progress stream says running, then finished with its rows.
        let running = try fleet.cli(["collect", id, "Test.Rows", "--args", "Count=4", "--args", "Pause=3"])
        try fleet.check(running)
        let runningId = running.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try admin.get("/flows/\(runningId)").body.contains("data-flow-progress-url=\"/flows/\(runningId)/progress\""))
        let stream = try admin.stream("/flows/\(runningId)/progress", seconds: 12)
        let events = stream.body.components(separatedBy: "event: progress\ndata: ").dropFirst().compactMap { $0.split(separator: "\n").first.map(String.init) }
        #expect(events.contains { $0.contains("\"state\":\"running\"") || $0.contains("\"state\":\"scheduled\"") }, "\(events)")
        #expect(events.last?.contains("\"state\":\"finished\",\"rows\":4") == true, "\(events)")
        #expect(try anonymous.stream("/flows/\(runningId)/progress", seconds: 1).body.contains("event: progress") == false)
    }

    /// The hunt page's progress follows the hunt live: server-sent events from /hunts/ID/progress
    /// show the running flow, then the finished one, without a reload.
    @Test func huntProgressStreamsAsTheHuntRuns() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        try fleet.check(fleet.cli(["user", "password", "admin"], input: Self.password + "\n"))
        let admin = try ConsoleClient(fleet: fleet, name: "admin")
        #expect(try admin.signIn("admin", Self.password).status == 303)
        let created = try fleet.cli(["hunt", "create", "Test.Rows", "--args", "Count=5", "--args", "Pause=4"])
        try fleet.check(created)
        let hunt = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let page = try admin.get("/hunts/\(hunt)")
        #expect(page.body.contains("data-progress-url=\"/hunts/\(hunt)/progress\""))
        let stream = try admin.stream("/hunts/\(hunt)/progress", seconds: 20)
        #expect(stream.status == 200 && stream.header("Content-Type")?.hasPrefix("text/event-stream") == true, "\(stream.status)")
        let events = stream.body.components(separatedBy: "event: progress\ndata: ").dropFirst().compactMap { $0.split(separator: "\n").first.map(String.init) }
        #expect(events.contains { $0.contains("\"done\":0,\"total\":1") }, "\(events)")
        #expect(events.last?.contains("\"done\":1,\"total\":1") == true, "\(events)")
        #expect(Set(events).count == events.count, "only changes are sent: \(events)")
        // The hunts list follows every listed hunt through one stream.
        #expect(try admin.get("/hunts").body.contains("data-hunts-progress-url=\"/hunts/progress\""))
        let list = try admin.stream("/hunts/progress", seconds: 3)
        let listed = list.body.components(separatedBy: "event: progress\ndata: ").dropFirst().compactMap { $0.split(separator: "\n").first.map(String.init) }
        #expect(list.status == 200 && listed.first?.contains("\"\(hunt)\":{\"done\":1,\"total\":1") == true, "\(listed)")
        #expect(try admin.stream("/hunts/H.nope/progress", seconds: 5).status == 404)
        let anonymous = try ConsoleClient(fleet: fleet, name: "nobody")
        #expect(try anonymous.stream("/hunts/\(hunt)/progress", seconds: 5).status != 200)
        #expect(try anonymous.stream("/hunts/progress", seconds: 5).status != 200)
    }

    /// CSV cells: quoting by RFC 4180, and text a spreadsheet would run as a formula made inert.
    @Test func exportCellsAreQuotedAndFormulasDisarmed() {
        #expect(ResultExport.cell("plain") == "plain")
        #expect(ResultExport.cell("a,b") == "\"a,b\"")
        #expect(ResultExport.cell("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(ResultExport.cell("two\nlines") == "\"two\nlines\"")
        #expect(ResultExport.cell("=HYPERLINK(\"http://x\")") == "\"'=HYPERLINK(\"\"http://x\"\")\"")
        #expect(ResultExport.cell("-1+2") == "'-1+2" && ResultExport.cell("@SUM(A1)") == "'@SUM(A1)")
        #expect(ResultExport.cell("-42", disarm: false) == "-42", "a number stays a number")
    }
}
