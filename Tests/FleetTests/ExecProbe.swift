import Fleet
import FleetCore
import Foundation

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
}
