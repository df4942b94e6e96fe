import Fleet
import FleetCore
import Foundation

/// What the alert tests share: execs that a detection should catch, and a webhook receiver.
extension FleetHarness {
    /// Runs `program` (a copy of /bin/true somewhere a detection watches) with a fresh marker
    /// argument, again and again until an alert of `clientId` carries the marker (until the agent's
    /// watch is attached an exec goes unseen), for at most `timeout` seconds. Returns the time from
    /// the exec that was caught to its alert being listed, and the attempts it took.
    func execUntilAlert(_ program: String, clientId: String, timeout: Double = 90) async throws -> (seconds: Double, attempts: Int)? {
        let deadline = Date().addingTimeInterval(timeout)
        var attempt = 0
        while Date() < deadline {
            attempt += 1
            let marker = "quarry-exec-\(attempt)-\(UInt32.random(in: 0...UInt32.max))"
            let run = Process()
            run.executableURL = URL(fileURLWithPath: program)
            run.arguments = [marker]
            let started = Date()
            try run.run()
            run.waitUntilExit()
            while Date().timeIntervalSince(started) < 3 {
                let alerts = (try? await get("/alerts", query: ["client_id": clientId], as: [AlertRecord].self)) ?? []
                if alerts.contains(where: { $0.details.contains(marker) }) { return (Date().timeIntervalSince(started), attempt) }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return nil
    }

    /// A local HTTP listener that answers 200 and appends every POST body, one per line, to a file.
    static let webhookListener = """
        import http.server, sys
        out = sys.argv[1]
        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                with open(out, 'ab') as f: f.write(body + b'\\n')
                self.send_response(200); self.end_headers()
            def log_message(self, *a): pass
        s = http.server.HTTPServer(('127.0.0.1', 0), H)
        open(out + '.port', 'w').write(str(s.server_address[1]))
        s.serve_forever()
        """

    /// Starts the listener and points the server config at it (before `startServer`): the process
    /// (SIGKILL it when done: children of the test process inherit a mask that blocks SIGTERM) and
    /// the file the POST bodies go to.
    func startWebhookListener() async throws -> (Process, String) {
        let received = dir + "/webhook.jsonl"
        let hook = Process()
        hook.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        hook.arguments = ["python3", "-c", Self.webhookListener, received]
        // Not the test's own output: a child holding that pipe keeps `swift test` waiting.
        hook.standardOutput = FileHandle.nullDevice
        hook.standardError = FileHandle.nullDevice
        try hook.run()
        do {
            try await waitUntil(timeout: 20, "the webhook listener") { FileManager.default.fileExists(atPath: received + ".port") }
            let port = try String(contentsOfFile: received + ".port", encoding: .utf8)
            var config = try ConfigFile.load(ServerConfig.self, from: dir + "/srv/server0.yaml")
            config.alertWebhook = "http://127.0.0.1:\(port)/hook"
            try ConfigFile.save(config, to: dir + "/srv/server0.yaml")
            return (hook, received)
        } catch {
            kill(hook.processIdentifier, SIGKILL)
            hook.waitUntilExit()
            throw error
        }
    }
}
