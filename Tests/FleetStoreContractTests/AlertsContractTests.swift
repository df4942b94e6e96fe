import Foundation
import Testing

@testable import FleetCore

/// The `FleetStore` contract for alerts, on every engine: stored bounded, listed newest first
/// with filters and pages, acknowledged once.
@Suite struct AlertsContractTests {
    @Test(arguments: Engine.allCases) func alertsAreListedFilteredPagedAndAcknowledged(engine: Engine) async throws {
        try await withStore(engine) { store in
            #expect(try await store.alerts(AlertQuery()).isEmpty)
            let first = try await store.addAlert(AlertRecord(time: 100, name: "Exec from /tmp", severity: .high, clientId: "C.1", flowId: "F.1", artifact: "Detect.Tmp", details: #"{"Exe":"/tmp/x"}"#))
            let second = try await store.addAlert(AlertRecord(time: 100, name: "New SUID", severity: .low, clientId: "C.2"))
            let third = try await store.addAlert(AlertRecord(time: 200, name: "Brute force", severity: .critical, clientId: "C.1"))
            #expect(Set([first, second, third]).count == 3)
            // Newest first; the same second in the order stored, last first.
            #expect(try await store.alerts(AlertQuery()).map(\.id) == [third, second, first])
            let stored = try #require(try await store.alerts(AlertQuery(clientId: "C.1")).last)
            #expect(stored.name == "Exec from /tmp" && stored.severity == .high && stored.flowId == "F.1" && stored.artifact == "Detect.Tmp" && stored.details == #"{"Exe":"/tmp/x"}"#)
            #expect(try await store.alerts(AlertQuery(minimumSeverity: .high)).map(\.id) == [third, first])
            #expect(try await store.alerts(AlertQuery(since: 150)).map(\.id) == [third])
            #expect(try await store.alerts(AlertQuery(id: second)).map(\.name) == ["New SUID"])
            // Pages continue below the last id of the previous page.
            let page = try await store.alerts(AlertQuery(limit: 2))
            #expect(page.map(\.id) == [third, second])
            #expect(try await store.alerts(AlertQuery(before: page.last?.id, limit: 2)).map(\.id) == [first])
            // The first acknowledgement stays; unknown ids are nil.
            let acked = try await store.acknowledgeAlert(first, by: "ana", at: 300)
            #expect(acked?.acknowledgedBy == "ana" && acked?.acknowledgedAt == 300)
            #expect(try await store.acknowledgeAlert(first, by: "bob", at: 400)?.acknowledgedBy == "ana")
            #expect(try await store.acknowledgeAlert(999_999, by: "bob", at: 400) == nil)
            #expect(try await store.alerts(AlertQuery(unacknowledgedOnly: true)).map(\.id) == [third, second])
            // Hostile sizes are cut, never refused.
            let huge = try await store.addAlert(AlertRecord(time: 500, name: String(repeating: "n", count: 100_000), severity: .info, clientId: "C.3", details: String(repeating: "d", count: 1 << 20)))
            let cut = try #require(try await store.alerts(AlertQuery(clientId: "C.3")).first)
            #expect(cut.id == huge && cut.name.utf8.count < 1000 && cut.details.utf8.count <= AuditEntry.maxDetailsBytes + 100)
        }
    }

    @Test func severityNamesAreForgiving() {
        #expect(AlertSeverity.named("High") == .high)
        #expect(AlertSeverity.named("CRIT") == .critical)
        #expect(AlertSeverity.named("informational") == .info)
        #expect(AlertSeverity.named(nil) == .medium)
        #expect(AlertSeverity.named("whatever") == .medium)
        #expect(AlertSeverity.low < AlertSeverity.critical)
    }
}
