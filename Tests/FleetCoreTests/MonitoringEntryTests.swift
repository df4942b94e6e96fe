import Testing

@testable import FleetCore

/// Which monitoring entries a client runs, and the bounds an entry and a cursor are held to.
@Suite struct MonitoringEntryTests {
    let table = [
        MonitoringEntry(artifact: "A", parameters: ["P": "all"]),
        MonitoringEntry(artifact: "A", parameters: ["P": "web"], label: "web"),
        MonitoringEntry(artifact: "A", parameters: ["P": "db"], label: "db"),
        MonitoringEntry(artifact: "B", label: "db"),
        MonitoringEntry(artifact: "C"),
    ]

    @Test func aClientRunsUnlabelledEntriesAndThoseOfItsLabelsOnePerArtifact() {
        #expect(MonitoringEntry.applicable(table, labels: []).map { "\($0.artifact):\($0.parameters["P"] ?? "-")" } == ["A:all", "C:-"])
        // A labelled entry wins over the unlabelled one; between two labels, the first in order.
        #expect(MonitoringEntry.applicable(table, labels: ["web"]).map { "\($0.artifact):\($0.parameters["P"] ?? "-")" } == ["A:web", "C:-"])
        #expect(MonitoringEntry.applicable(table, labels: ["web", "db"]).map { "\($0.artifact):\($0.parameters["P"] ?? "-")" } == ["A:db", "B:-", "C:-"])
        #expect(MonitoringEntry.applicable([], labels: ["web"]).isEmpty)
    }

    @Test func entriesOutsideTheBoundsAreRefused() {
        #expect(MonitoringEntry(artifact: "A").problem == nil)
        #expect(MonitoringEntry(artifact: "").problem != nil)
        #expect(MonitoringEntry(artifact: "A\u{0}").problem != nil)
        #expect(MonitoringEntry(artifact: "A", label: String(repeating: "l", count: 2000)).problem != nil)
        #expect(MonitoringEntry(artifact: "A", parameters: ["": "x"]).problem != nil)
        #expect(MonitoringEntry(artifact: "A", parameters: ["P": String(repeating: "v", count: 5000)]).problem != nil)
        let many = Dictionary(uniqueKeysWithValues: (0...64).map { ("P\($0)", "v") })
        #expect(MonitoringEntry(artifact: "A", parameters: many).problem != nil)
    }

    @Test func streamIdsAndCursorsRoundTrip() {
        #expect(EventStream.artifact(of: EventStream.id(artifact: "Linux.Events.DNS")) == "Linux.Events.DNS")
        #expect(EventStream.artifact(of: "F.0123456789abcdef") == nil)
        let cursor = EventCursor(time: 1_764_614_400.123456, clientId: "C.1", seq: 7, index: 3)
        #expect(EventCursor(cursor.description) == cursor)
        for bad in ["", "1/C.1/2", "x/C.1/2/3", "1//2/3", "inf/C.1/2/3", "1/C.1/2/3/4"] { #expect(EventCursor(bad) == nil, "\(bad)") }
        #expect(EventBatch.day(86_399.9) == 0)
        #expect(EventBatch.day(86_400) == 1)
    }
}
