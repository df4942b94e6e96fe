import Foundation
import Testing

@testable import FleetCore

private let request = CollectionRequest(artifacts: ["Linux.Sys.Users"])

private func rows(_ artifact: String, _ source: String, _ values: [Int]) -> IngestBatch.Payload {
    .rows(artifact: artifact, source: source, rows: values.map { "{\"n\":\($0)}" })
}

@Suite struct SQLiteIngestTests {
    @Test func flowLifecycle() async throws {
        try await withStore { store in
            try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: request, creator: "alice", createdAt: 10))
            try await store.addFlow(FlowRecord(flowId: "F.2", clientId: "C.1", huntId: "H.1", round: 1, request: request, creator: "alice", createdAt: 20))
            try await store.addFlow(FlowRecord(flowId: "F.3", clientId: "C.2", request: request, creator: "bob", createdAt: 30))
            await #expect(throws: StoreError.self) {
                try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: request, creator: "alice", createdAt: 10))
            }
            #expect(try await store.flow("F.2")?.huntId == "H.1")
            #expect(try await store.flow("F.2")?.request == request)
            #expect(try await store.flows(clientId: "C.1", huntId: nil).map(\.flowId) == ["F.2", "F.1"])
            #expect(try await store.flows(clientId: nil, huntId: "H.1").map(\.flowId) == ["F.2"])
            #expect(try await store.flows(clientId: nil, huntId: nil).map(\.flowId) == ["F.3", "F.2", "F.1"])
            #expect(try await store.scheduledFlows(clientId: "C.1").map(\.flowId) == ["F.1", "F.2"])

            try await store.updateFlow("F.1", state: .running, startedAt: 50, endedAt: nil, errors: [])
            try await store.updateFlow("F.2", state: .running, startedAt: 70, endedAt: nil, errors: ["slow"])
            #expect(try await store.scheduledFlows(clientId: "C.1").isEmpty)
            #expect(try await store.runningFlows(startedBefore: 60).map(\.flowId) == ["F.1"])
            try await store.requestCancel("F.2")
            try await store.updateFlow("F.2", state: .cancelled, startedAt: nil, endedAt: 80, errors: ["cancelled by alice"])
            let f2 = try #require(try await store.flow("F.2"))
            #expect(f2.state == .cancelled && f2.cancelRequested)
            #expect(f2.startedAt == 70 && f2.endedAt == 80)
            #expect(f2.errors == ["slow", "cancelled by alice"])
            await #expect(throws: StoreError.self) { try await store.requestCancel("F.9") }
            await #expect(throws: StoreError.self) { try await store.updateFlow("F.9", state: .finished, startedAt: nil, endedAt: nil, errors: []) }
        }
    }

    @Test func ingestStoredDuplicateRejected() async throws {
        try await withStore { store in
            try await store.addFlow(FlowRecord(flowId: "F.A", clientId: "C.A", request: request, creator: "alice", createdAt: 1))
            try await store.addFlow(FlowRecord(flowId: "F.B", clientId: "C.B", request: request, creator: "alice", createdAt: 2))
            let batch = IngestBatch(clientId: "C.A", flowId: "F.A", seq: 1, payload: rows("A", "", [1, 2]))
            #expect(try await store.ingest(batch) == .stored)
            #expect(try await store.ingest(batch) == .duplicate)
            // Client A cannot write into client B's flow, nor into a flow that does not exist.
            guard case .rejected(let reason) = try await store.ingest(IngestBatch(clientId: "C.A", flowId: "F.B", seq: 1, payload: rows("A", "", [3]))) else {
                Issue.record("client A wrote into client B's flow")
                return
            }
            #expect(reason.contains("F.B"))
            guard case .rejected = try await store.ingest(IngestBatch(clientId: "C.A", flowId: "F.none", seq: 1, payload: rows("A", "", [3]))) else {
                Issue.record("a batch for an unknown flow was stored")
                return
            }
            #expect(try await store.flow("F.A")?.rows == 2)
            #expect(try await store.flow("F.B")?.rows == 0)
            #expect(try await store.results(ResultQuery(flowId: "F.B")).isEmpty)
            #expect(try await store.results(ResultQuery()).map(\.json) == ["{\"n\":1}", "{\"n\":2}"])
        }
    }

    @Test func ingestManyInOneCallWithDuplicates() async throws {
        try await withStore { store in
            try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: request, creator: "alice", createdAt: 1))
            let upload = UploadRecord(flowId: "F.1", name: "/etc/passwd", size: 1234, sha256: "aa", md5: "bb")
            let batches = [
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .status(FlowStatus(state: .running, time: 5))),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 2, payload: rows("A", "S", [1, 2, 3])),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 2, payload: rows("A", "S", [1, 2, 3])),
                IngestBatch(clientId: "C.2", flowId: "F.1", seq: 3, payload: rows("A", "S", [4])),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 3, payload: .uploadPart),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 4, payload: .upload(upload)),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 5, payload: .log(["{\"msg\":\"a\"}", "{\"msg\":\"b\"}"])),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 6, payload: rows("A", "T", [5])),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .status(FlowStatus(state: .running, time: 5))),
            ]
            let outcomes = try await store.ingest(batches)
            #expect(outcomes.count == batches.count)
            #expect(outcomes[0] == .stored && outcomes[1] == .stored && outcomes[2] == .duplicate)
            if case .rejected = outcomes[3] {} else { Issue.record("another client's batch was not rejected: \(outcomes[3])") }
            #expect(Array(outcomes[4...7]) == [.stored, .stored, .stored, .stored])
            #expect(outcomes[8] == .duplicate)
            #expect(try await store.ingest([]).isEmpty)

            let flow = try #require(try await store.flow("F.1"))
            #expect(flow.state == .running && flow.startedAt == 5)
            #expect(flow.rows == 4)
            #expect(flow.uploadedBytes == 1234)
            #expect(try await store.uploads(flowId: "F.1") == [upload])
            #expect(try await store.logs(flowId: "F.1") == ["{\"msg\":\"a\"}", "{\"msg\":\"b\"}"])
            let sources = try await store.resultSources(huntId: nil, flowId: "F.1")
            #expect(sources.map { "\($0.artifact)/\($0.source)=\($0.rows)" } == ["A/S=3", "A/T=1"])
        }
    }

    @Test func finalStatusNeverGoesBackToRunning() async throws {
        try await withStore { store in
            try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: request, creator: "alice", createdAt: 1))
            let final = FlowStatus(state: .error, errors: ["query failed"], rows: 0, batches: 5, droppedBatches: 2, time: 30)
            #expect(try await store.ingest(IngestBatch(clientId: "C.1", flowId: "F.1", seq: 7, payload: .status(final))) == .stored)
            // A late "running" (resent after the final one) must not revive the flow.
            #expect(try await store.ingest(IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .status(FlowStatus(state: .running, time: 10)))) == .stored)
            let flow = try #require(try await store.flow("F.1"))
            #expect(flow.state == .error)
            #expect(flow.endedAt == 30)
            #expect(flow.startedAt == 30)
            #expect(flow.errors.count == 2)
            #expect(flow.errors.first == "query failed")
            #expect(flow.errors.last?.contains("2 batches were lost") == true)
            #expect(try await store.runningFlows(startedBefore: 1000).isEmpty)
        }
    }

    @Test func resultsFilteredByHuntRoundSourceAndClientWithFQDN() async throws {
        try await withStore { store in
            var client = ClientRecord(clientId: "C.1", enrolledAt: 1)
            client.fqdn = "web1.example.com"
            try await store.addClient(client)
            // Created out of order: results follow creation time, not insertion.
            let flows = [
                FlowRecord(flowId: "F.r2", clientId: "C.1", huntId: "H.1", round: 2, request: request, creator: "a", createdAt: 30),
                FlowRecord(flowId: "F.r1", clientId: "C.1", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 10),
                FlowRecord(flowId: "F.other", clientId: "C.2", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 20),
                FlowRecord(flowId: "F.direct", clientId: "C.1", request: request, creator: "a", createdAt: 5),
            ]
            for flow in flows { try await store.addFlow(flow) }
            _ = try await store.ingest([
                IngestBatch(clientId: "C.1", flowId: "F.r2", seq: 2, payload: rows("A", "S", [21, 22])),
                IngestBatch(clientId: "C.1", flowId: "F.r2", seq: 1, payload: rows("B", "", [20])),
                IngestBatch(clientId: "C.1", flowId: "F.r1", seq: 1, payload: rows("A", "S", [10, 11])),
                IngestBatch(clientId: "C.1", flowId: "F.r1", seq: 2, payload: rows("A", "T", [12])),
                IngestBatch(clientId: "C.2", flowId: "F.other", seq: 1, payload: rows("A", "S", [30])),
                IngestBatch(clientId: "C.1", flowId: "F.direct", seq: 1, payload: rows("A", "S", [1])),
            ])
            func numbers(_ query: ResultQuery) async throws -> [Int] {
                try await store.results(query).map { Int($0.json.filter(\.isNumber)) ?? -1 }
            }
            #expect(try await numbers(ResultQuery()) == [1, 10, 11, 12, 30, 20, 21, 22])
            #expect(try await numbers(ResultQuery(huntId: "H.1")) == [10, 11, 12, 30, 20, 21, 22])
            #expect(try await numbers(ResultQuery(huntId: "H.1", round: 1)) == [10, 11, 12, 30])
            #expect(try await numbers(ResultQuery(huntId: "H.1", round: 2)) == [20, 21, 22])
            #expect(try await numbers(ResultQuery(huntId: "H.1", artifact: "A")) == [10, 11, 12, 30, 21, 22])
            #expect(try await numbers(ResultQuery(huntId: "H.1", artifact: "A", source: "S")) == [10, 11, 30, 21, 22])
            #expect(try await numbers(ResultQuery(source: "T")) == [12])
            #expect(try await numbers(ResultQuery(clientId: "C.2")) == [30])
            #expect(try await numbers(ResultQuery(flowId: "F.r2")) == [20, 21, 22])
            #expect(try await numbers(ResultQuery(huntId: "H.1", limit: 3, offset: 2)) == [12, 30, 20])
            #expect(try await numbers(ResultQuery(huntId: "H.1", artifact: "A", limit: 2, offset: 3)) == [30, 21])
            #expect(try await numbers(ResultQuery(huntId: "H.2")).isEmpty)

            let row = try #require(try await store.results(ResultQuery(flowId: "F.r2", limit: 1)).first)
            #expect(row == ResultRow(clientId: "C.1", flowId: "F.r2", fqdn: "web1.example.com", huntId: "H.1", round: 2, artifact: "B", source: "", json: "{\"n\":20}"))
            #expect(try await store.results(ResultQuery(clientId: "C.2")).first?.fqdn == "")
            #expect(try await store.results(ResultQuery(flowId: "F.direct")).first?.huntId == nil)

            let sources = try await store.resultSources(huntId: "H.1", flowId: nil)
            #expect(sources.map { "\($0.artifact)/\($0.source)=\($0.rows)" } == ["A/S=5", "A/T=1", "B/=1"])
            #expect(try await store.resultSources(huntId: nil, flowId: nil).map(\.rows) == [6, 1, 1])
        }
    }

    /// Reading a hunt's rows in order must walk indexes, never sort (a hunt may hold millions of rows).
    @Test func resultQueriesNeedNoSort() async throws {
        try await withStore { store in
            let queries = [
                ResultQuery(), ResultQuery(huntId: "H"), ResultQuery(huntId: "H", round: 2), ResultQuery(flowId: "F"),
                ResultQuery(clientId: "C"), ResultQuery(huntId: "H", artifact: "A"), ResultQuery(huntId: "H", artifact: "A", source: "S"),
                ResultQuery(source: "S", limit: 10, offset: 5),
            ]
            for query in queries {
                let (sql, values) = SQLiteFleetStore.resultsSQL(query)
                let plan = try store.run("plan") { db in try db.query("EXPLAIN QUERY PLAN " + sql, values) { $0.text(3) } }
                #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(query): \(plan)")
                #expect(!plan.contains { $0.hasPrefix("SCAN r") || $0.hasPrefix("SCAN b") }, "\(query): \(plan)")
            }
        }
    }

    @Test func concurrentIngestionIntoDifferentFlowsAllLands() async throws {
        try await withStore { store in
            let tasks = 8, batches = 20, perBatch = 50
            for t in 0..<tasks {
                try await store.addFlow(FlowRecord(flowId: "F.\(t)", clientId: "C.\(t)", huntId: "H", round: 1, request: request, creator: "a", createdAt: Double(t)))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        for seq in 1...batches {
                            let batch = IngestBatch(clientId: "C.\(t)", flowId: "F.\(t)", seq: seq, payload: rows("A", "", Array(0..<perBatch)))
                            let outcome = try await store.ingest(batch)
                            #expect(outcome == .stored)
                            _ = try await store.flow("F.\(t)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            for t in 0..<tasks {
                #expect(try await store.flow("F.\(t)")?.rows == batches * perBatch)
            }
            #expect(try await store.results(ResultQuery(huntId: "H")).count == tasks * batches * perBatch)
        }
    }

    /// Not a pass/fail check: prints the ingestion rate of 100 batches of 1000 rows in one call.
    @Test func ingestionRate() async throws {
        try await withStore { store in
            try await store.addFlow(FlowRecord(flowId: "F.bench", clientId: "C.1", huntId: "H", round: 1, request: request, creator: "a", createdAt: 1))
            let row = #"{"Pid":1234,"Name":"sshd","CommandLine":"/usr/sbin/sshd -D","Username":"root","CreateTime":"2024-01-01T00:00:00Z"}"#
            let batches = (1...100).map { seq in
                IngestBatch(clientId: "C.1", flowId: "F.bench", seq: seq, payload: .rows(artifact: "Linux.Sys.Pslist", source: "", rows: Array(repeating: row, count: 1000)))
            }
            let clock = ContinuousClock()
            let start = clock.now
            let outcomes = try await store.ingest(batches)
            let elapsed = clock.now - start
            #expect(outcomes.allSatisfy { $0 == .stored })
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("SQLiteFleetStore ingest: 100,000 rows in \(String(format: "%.3f", seconds)) s = \(Int(100_000 / max(seconds, 1e-9))) rows/s")

            let readStart = clock.now
            let page = try await store.results(ResultQuery(huntId: "H", limit: 100, offset: 99_000))
            print("SQLiteFleetStore results: a 100-row page at offset 99,000 of a hunt in \(clock.now - readStart)")
            #expect(page.count == 100)
            #expect(try await store.flow("F.bench")?.rows == 100_000)
        }
    }
}
