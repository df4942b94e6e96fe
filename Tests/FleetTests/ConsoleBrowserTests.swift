import Fleet
import FleetCore
import Foundation
import Testing

/// Whether the browser test can run: Debian's chromium and chromium-driver and python3-selenium
/// (installed by `make test`). Without them the test is skipped, unless QUARRY_REQUIRE_BROWSER=1
/// (set by `make test`), when it runs and fails saying what is missing.
enum ConsoleBrowser {
    static let python = "/usr/bin/python3"
    static let driver = "/usr/bin/chromedriver"
    static let script = FleetHarness.root + "/scripts/console_browser.py"
    static var installed: Bool {
        let files = FileManager.default
        return files.isExecutableFile(atPath: driver) && files.isExecutableFile(atPath: "/usr/bin/chromium") && files.fileExists(atPath: "/usr/lib/python3/dist-packages/selenium")
    }
    static var required: Bool { ProcessInfo.processInfo.environment["QUARRY_REQUIRE_BROWSER"] == "1" }
}

extension FleetTests {
    /// In headless Chromium: sign in, find the agent's client with the search (keyboard), open it;
    /// a hostile label shows as text and runs nothing; no CSP violation; sign out. Screenshots in
    /// .build/console-screenshots.
    @Test(.enabled(if: ConsoleBrowser.installed || ConsoleBrowser.required, "needs chromium, chromium-driver and python3-selenium"))
    func consoleInARealBrowser() async throws {
        try #require(ConsoleBrowser.installed, "QUARRY_REQUIRE_BROWSER=1 but chromium, chromium-driver or python3-selenium is missing")
        let probe = "<img src=x onerror=alert(1)>"
        let (fleet, id) = try await Self.consoleFleet(labels: [probe])
        try Self.runConsoleBrowser(fleet, user: "rita", clientId: id, label: probe)
    }

    /// In headless Chromium, as an investigator: a collection from the client page's typed form (a
    /// bad regex refused beside its field first); the alerts page (reached from the navigation)
    /// shows an alert raised on the agent, and its acknowledge button acknowledges it (seen
    /// through the API too).
    @Test(.enabled(if: ConsoleBrowser.installed || ConsoleBrowser.required, "needs chromium, chromium-driver and python3-selenium"))
    func consoleAlertAcknowledgedInARealBrowser() async throws {
        try #require(ConsoleBrowser.installed, "QUARRY_REQUIRE_BROWSER=1 but chromium, chromium-driver or python3-selenium is missing")
        let (fleet, id) = try await Self.consoleFleet(labels: ["<b>x</b>"])
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--password", "--output", fleet.dir + "/ivan.yaml"], input: Self.password + "\n"))
        try fleet.check(fleet.cli(["collect", id, "Test.Alert", "--args", "Marker=browser", "--wait"]))
        try await fleet.waitUntil(timeout: 20, "the alert") { (try? await fleet.get("/alerts", as: [AlertRecord].self))?.isEmpty == false }
        let alertId = String(try #require(try await fleet.get("/alerts", as: [AlertRecord].self).first?.id))
        try Self.runConsoleBrowser(fleet, user: "ivan", clientId: id, label: "<b>x</b>", extra: ["--alert-id", alertId, "--collect-artifact", "Test.Typed"])
        let stored = try #require(try await fleet.get("/alerts", query: ["id": alertId], as: [AlertRecord].self).first)
        #expect(stored.acknowledgedBy == "ivan")
    }

    /// In headless Chromium: a running hunt's page shows it finish (0/1 → 1/1) without a reload,
    /// through the server-sent progress stream.
    @Test(.enabled(if: ConsoleBrowser.installed || ConsoleBrowser.required, "needs chromium, chromium-driver and python3-selenium"))
    func consoleHuntProgressLiveInARealBrowser() async throws {
        try #require(ConsoleBrowser.installed, "QUARRY_REQUIRE_BROWSER=1 but chromium, chromium-driver or python3-selenium is missing")
        let (fleet, id) = try await Self.consoleFleet(labels: ["live"])
        let created = try fleet.cli(["hunt", "create", "Test.Rows", "--args", "Count=3", "--args", "Pause=15"])
        try fleet.check(created)
        let hunt = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.runConsoleBrowser(fleet, user: "rita", clientId: id, label: "live", extra: ["--hunt-id", hunt])
    }

    /// In headless Chromium: a running flow's page follows its state (server-sent events from
    /// /flows/ID/progress) and, when it finishes, reloads once to show its rows.
    @Test(.enabled(if: ConsoleBrowser.installed || ConsoleBrowser.required, "needs chromium, chromium-driver and python3-selenium"))
    func consoleFlowLiveInARealBrowser() async throws {
        try #require(ConsoleBrowser.installed, "QUARRY_REQUIRE_BROWSER=1 but chromium, chromium-driver or python3-selenium is missing")
        let (fleet, id) = try await Self.consoleFleet(labels: ["flow"])
        let collected = try fleet.cli(["collect", id, "Test.Rows", "--args", "Count=3", "--args", "Pause=12"])
        try fleet.check(collected)
        let flow = collected.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.runConsoleBrowser(fleet, user: "rita", clientId: id, label: "flow", extra: ["--flow-id", flow])
    }

    /// Runs scripts/console_browser.py against `fleet` as `user` (at most 3 minutes); every check must pass.
    static func runConsoleBrowser(_ fleet: FleetHarness, user: String, clientId: String, label: String, extra: [String] = []) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ConsoleBrowser.python)
        process.arguments = [
            ConsoleBrowser.script, "--url", "https://127.0.0.1:\(fleet.port)", "--user", user, "--password", Self.password,
            "--client-id", clientId, "--label", label, "--screenshots", FleetHarness.root + "/.build/console-screenshots/" + user,
            "--chromedriver", ConsoleBrowser.driver,
        ] + extra
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 180, execute: watchdog)
        defer { watchdog.cancel() }
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains(" passed, 0 failed"), "\(output)")
    }
}
