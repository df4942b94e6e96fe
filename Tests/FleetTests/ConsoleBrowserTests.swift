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

        let process = Process()
        process.executableURL = URL(fileURLWithPath: ConsoleBrowser.python)
        process.arguments = [
            ConsoleBrowser.script, "--url", "https://127.0.0.1:\(fleet.port)", "--user", "rita", "--password", Self.password,
            "--client-id", id, "--label", probe, "--screenshots", FleetHarness.root + "/.build/console-screenshots", "--chromedriver", ConsoleBrowser.driver,
        ]
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
