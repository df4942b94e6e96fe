import Foundation
import Testing

@testable import FleetCore

private let request = CollectionRequest(artifacts: ["Linux.Sys.Users"])

private func rows(_ artifact: String, _ source: String, _ values: [Int]) -> IngestBatch.Payload {
    .rows(artifact: artifact, source: source, rows: values.map { "{\"n\":\($0)}" })
}

@Suite struct SQLiteIngestTests {
    /// Reading a hunt's rows in order must walk indexes, never sort (a hunt may hold millions of rows).
    @Test func resultQueriesNeedNoSort() async throws {
        try await withStore { store in
            let queries = [
                ResultQuery(), ResultQuery(huntId: "H"), ResultQuery(huntId: "H", round: 2), ResultQuery(flowId: "F"),
                ResultQuery(clientId: "C"), ResultQuery(huntId: "H", artifact: "A"), ResultQuery(huntId: "H", artifact: "A", source: "S"),
                ResultQuery(source: "S", limit: 10, offset: 5),
                // Pages after a cursor: the rest of the cursor's flow, then the flows after it.
                ResultQuery(huntId: "H", after: ResultCursor(flowId: "F", seq: 3, index: 7)),
                ResultQuery(after: ResultCursor(flowId: "F", seq: 3, index: 7)),
                ResultQuery(huntId: "H", artifact: "A", limit: 10, after: ResultCursor(flowId: "F", seq: 3, index: 7)),
            ]
            for query in queries {
                for (sql, values) in SQLiteResultsReader.steps(query) {
                    let plan = try store.run("plan") { db in try db.query("EXPLAIN QUERY PLAN " + sql, values) { $0.text(3) } }
                    #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(query): \(plan)")
                    #expect(!plan.contains { $0.hasPrefix("SCAN r") || $0.hasPrefix("SCAN b") }, "\(query): \(plan)")
                }
            }
        }
    }

}
