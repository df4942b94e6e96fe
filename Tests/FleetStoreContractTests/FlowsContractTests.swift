import Foundation
import Testing

@testable import FleetCore

/// The `FleetStore` contract for flows, ingestion and reading results, checked on every engine.
@Suite struct FlowsContractTests {
    @Test(arguments: Engine.allCases) func flowLifecycle(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: request, creator: "alice", createdAt: 10))
            try await store.addFlow(FlowRecord(flowId: "F.2", clientId: "C.1", huntId: "H.1", round: 1, request: request, creator: "alice", createdAt: 20))
            try await store.addFlow(FlowRecord(flowId: "F.3", clientId: "C.2", request: request, creator: "bob", createdAt: 30))
            await #expect(throws: StoreError.self) {
                try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: request, creator: "alice", createdAt: 10))
            }
            #expect(try await store.flow("F.2")?.huntId == "H.1")
            #expect(try await store.flow("F.2")?.request == request)
            #expect(try await store.flow("F.9") == nil)
            #expect(try await store.flows(clientId: "C.1", huntId: nil).map(\.flowId) == ["F.2", "F.1"])
            #expect(try await store.flows(clientId: nil, huntId: "H.1").map(\.flowId) == ["F.2"])
            #expect(try await store.flows(clientId: "C.2", huntId: "H.1").isEmpty)
            #expect(try await store.flows(clientId: nil, huntId: nil).map(\.flowId) == ["F.3", "F.2", "F.1"])
            #expect(try await store.scheduledFlows(clientId: "C.1").map(\.flowId) == ["F.1", "F.2"])
            #expect(try await store.flowCounts() == [.scheduled: 3])

            try await store.updateFlow("F.1", state: .running, startedAt: 50, endedAt: nil, errors: [])
            try await store.updateFlow("F.2", state: .running, startedAt: 70, endedAt: nil, errors: ["slow"])
            #expect(try await store.scheduledFlows(clientId: "C.1").isEmpty)
            #expect(try await store.runningFlows(startedBefore: 60).map(\.flowId) == ["F.1"])
            #expect(try await store.flowCounts() == [.scheduled: 1, .running: 2])
            try await store.requestCancel("F.2")
            try await store.updateFlow("F.2", state: .cancelled, startedAt: nil, endedAt: 80, errors: ["cancelled by alice"])
            let f2 = try #require(try await store.flow("F.2"))
            #expect(f2.state == .cancelled && f2.cancelRequested)
            #expect(f2.startedAt == 70 && f2.endedAt == 80)
            #expect(f2.errors == ["slow", "cancelled by alice"])
            #expect(try await store.flowCounts() == [.scheduled: 1, .running: 1, .cancelled: 1])
            let cancel = await #expect(throws: StoreError.self) { try await store.requestCancel("F.9") }
            #expect(cancel?.message == "requestCancel: no flow F.9")
            let update = await #expect(throws: StoreError.self) { try await store.updateFlow("F.9", state: .finished, startedAt: nil, endedAt: nil, errors: []) }
            #expect(update?.message == "updateFlow: no flow F.9")
        }
    }

    /// A running flow with no start time counts from its creation; the oldest start comes first.
    @Test(arguments: Engine.allCases) func runningFlowsWithoutStartTime(engine: Engine) async throws {
        try await withStore(engine) { store in
            var started = FlowRecord(flowId: "F.a", clientId: "C.1", request: request, state: .running, creator: "a", createdAt: 1)
            started.startedAt = 5
            try await store.addFlow(started)
            try await store.addFlow(FlowRecord(flowId: "F.b", clientId: "C.1", request: request, state: .running, creator: "a", createdAt: 2))
            try await store.addFlow(FlowRecord(flowId: "F.c", clientId: "C.1", request: request, state: .running, creator: "a", createdAt: 50))
            #expect(try await store.runningFlows(startedBefore: 10).map(\.flowId) == ["F.b", "F.a"])
        }
    }

    @Test(arguments: Engine.allCases) func ingestStoredDuplicateRejected(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.addFlow(FlowRecord(flowId: "F.A", clientId: "C.A", request: request, creator: "alice", createdAt: 1))
            try await store.addFlow(FlowRecord(flowId: "F.B", clientId: "C.B", request: request, creator: "alice", createdAt: 2))
            let batch = IngestBatch(clientId: "C.A", flowId: "F.A", seq: 1, payload: rows("A", "", [1, 2]))
            #expect(try await store.ingest(batch) == .stored)
            #expect(try await store.ingest(batch) == .duplicate)
            // Client A cannot write into client B's flow, nor into a flow that does not exist.
            let foreign = try await store.ingest(IngestBatch(clientId: "C.A", flowId: "F.B", seq: 1, payload: rows("A", "", [3])))
            #expect(foreign == .rejected("flow F.B does not belong to client C.A"))
            let unknown = try await store.ingest(IngestBatch(clientId: "C.A", flowId: "F.none", seq: 1, payload: rows("A", "", [3])))
            #expect(unknown == .rejected("no flow F.none"))
            #expect(try await store.flow("F.A")?.rows == 2)
            #expect(try await store.flow("F.B")?.rows == 0)
            #expect(try await store.results(ResultQuery(flowId: "F.B")).isEmpty)
            #expect(try await store.results(ResultQuery()).map(\.json) == ["{\"n\":1}", "{\"n\":2}"])
            // The rejected batch was not recorded: the owner's batch with that seq is new.
            #expect(try await store.ingest(IngestBatch(clientId: "C.B", flowId: "F.B", seq: 1, payload: rows("A", "", [4]))) == .stored)
        }
    }

    @Test(arguments: Engine.allCases) func ingestManyInOneCallWithDuplicates(engine: Engine) async throws {
        try await withStore(engine) { store in
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
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 7, payload: .rows(artifact: "A", source: "S", rows: [])),
            ]
            let outcomes = try await store.ingest(batches)
            #expect(outcomes.count == batches.count)
            #expect(outcomes[0] == .stored && outcomes[1] == .stored && outcomes[2] == .duplicate)
            #expect(outcomes[3] == .rejected("flow F.1 does not belong to client C.2"))
            #expect(Array(outcomes[4...7]) == [.stored, .stored, .stored, .stored])
            #expect(outcomes[8] == .duplicate)
            #expect(outcomes[9] == .stored)
            #expect(try await store.ingest([]).isEmpty)
            // The same batches again: all known (the rejected one is still rejected).
            let again = try await store.ingest(batches)
            #expect(again.filter { $0 == .duplicate }.count == batches.count - 1)

            let flow = try #require(try await store.flow("F.1"))
            #expect(flow.state == .running && flow.startedAt == 5)
            #expect(flow.rows == 4)
            #expect(flow.uploadedBytes == 1234)
            #expect(try await store.uploads(flowId: "F.1") == [upload])
            #expect(try await store.uploads(flowId: "F.9").isEmpty)
            #expect(try await store.logs(flowId: "F.1") == ["{\"msg\":\"a\"}", "{\"msg\":\"b\"}"])
            let sources = try await store.resultSources(huntId: nil, flowId: "F.1")
            #expect(sources.map { "\($0.artifact)/\($0.source)=\($0.rows)" } == ["A/S=3", "A/T=1"])
            #expect(try await store.flowCounts() == [.running: 1])
        }
    }

    /// Rows come back byte for byte, whatever they hold (and however the engine ships them).
    @Test(arguments: Engine.allCases) func rowsRoundTripExactly(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: request, creator: "a", createdAt: 1))
            let odd = [
                "{\"s\":\"tab\\there\"}", "{\n  \"pretty\": true\n}", "{\"u\":\"Grüße ✓ 𝄞\"}", "", "{}",
                "{\"backslash\":\"\\\\\", \"quote\":\"\\\"\"}", "x\ty\r\n", "'; DROP TABLE results; --",
            ]
            let separated = ["{\"a\":1}", "raw\u{1E}separator", "{\"b\":2}"]
            let batches = [
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .rows(artifact: "A", source: "S", rows: odd)),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 2, payload: .rows(artifact: "A", source: "S", rows: [""])),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 3, payload: .rows(artifact: "A", source: "S", rows: separated)),
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 4, payload: .rows(artifact: "Ä/ß", source: "", rows: ["", ""])),
            ]
            #expect(try await store.ingest(batches) == Array(repeating: .stored, count: batches.count))
            let stored = try await store.results(ResultQuery(flowId: "F.1"))
            #expect(stored.map(\.json) == odd + [""] + separated + ["", ""])
            #expect(stored.last?.artifact == "Ä/ß")
            #expect(try await store.flow("F.1")?.rows == odd.count + 1 + separated.count + 2)
        }
    }

    @Test(arguments: Engine.allCases) func finalStatusNeverGoesBackToRunning(engine: Engine) async throws {
        try await withStore(engine) { store in
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

            // Two final statuses in one call apply in order: errors add up, the last state wins.
            try await store.addFlow(FlowRecord(flowId: "F.2", clientId: "C.1", request: request, creator: "alice", createdAt: 2))
            _ = try await store.ingest([
                IngestBatch(clientId: "C.1", flowId: "F.2", seq: 1, payload: .status(FlowStatus(state: .running, time: 3))),
                IngestBatch(clientId: "C.1", flowId: "F.2", seq: 2, payload: .status(FlowStatus(state: .timedOut, errors: ["late"], droppedBatches: 1, time: 40))),
                IngestBatch(clientId: "C.1", flowId: "F.2", seq: 3, payload: .status(FlowStatus(state: .finished, errors: ["done"], time: 41))),
            ])
            let f2 = try #require(try await store.flow("F.2"))
            #expect(f2.state == .finished && f2.startedAt == 3 && f2.endedAt == 41)
            #expect(f2.errors == ["late", "1 batch was lost: the agent's queue dropped them before the server acknowledged them", "done"])
        }
    }

    @Test(arguments: Engine.allCases) func resultsFilteredByHuntRoundSourceAndClientWithFQDN(engine: Engine) async throws {
        try await withStore(engine) { store in
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
            #expect(try await numbers(ResultQuery(huntId: "H.1", limit: 0)).isEmpty)
            #expect(try await numbers(ResultQuery(huntId: "H.1", offset: 6)) == [22])
            #expect(try await numbers(ResultQuery(huntId: "H.2")).isEmpty)

            let row = try #require(try await store.results(ResultQuery(flowId: "F.r2", limit: 1)).first)
            #expect(row == ResultRow(clientId: "C.1", flowId: "F.r2", fqdn: "web1.example.com", huntId: "H.1", round: 2, artifact: "B", source: "", json: "{\"n\":20}", seq: 1, index: 0))
            #expect(try await store.results(ResultQuery(clientId: "C.2")).first?.fqdn == "")
            #expect(try await store.results(ResultQuery(flowId: "F.direct")).first?.huntId == nil)

            let sources = try await store.resultSources(huntId: "H.1", flowId: nil)
            #expect(sources.map { "\($0.artifact)/\($0.source)=\($0.rows)" } == ["A/S=5", "A/T=1", "B/=1"])
            #expect(try await store.resultSources(huntId: nil, flowId: nil).map(\.rows) == [6, 1, 1])
        }
    }

    /// Pages after a cursor, of any size, put together give exactly the rows of one read, for every
    /// filter (flows of the same creation time included); streaming gives them too, a chunk at a time.
    @Test(arguments: Engine.allCases) func resultsPageByCursorAndStream(engine: Engine) async throws {
        try await withStore(engine) { store in
            let flows = [
                FlowRecord(flowId: "F.b", clientId: "C.1", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 10),
                FlowRecord(flowId: "F.a", clientId: "C.2", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 10),
                FlowRecord(flowId: "F.c", clientId: "C.1", huntId: "H.1", round: 2, request: request, creator: "a", createdAt: 20),
                FlowRecord(flowId: "F.empty", clientId: "C.3", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 15),
                FlowRecord(flowId: "F.d", clientId: "C.3", request: request, creator: "a", createdAt: 5),
            ]
            for flow in flows { try await store.addFlow(flow) }
            _ = try await store.ingest([
                IngestBatch(clientId: "C.1", flowId: "F.b", seq: 1, payload: rows("A", "S", [1, 2, 3])),
                IngestBatch(clientId: "C.1", flowId: "F.b", seq: 2, payload: rows("B", "", [4])),
                IngestBatch(clientId: "C.1", flowId: "F.b", seq: 3, payload: rows("A", "S", [5, 6])),
                IngestBatch(clientId: "C.2", flowId: "F.a", seq: 1, payload: rows("A", "S", [7])),
                IngestBatch(clientId: "C.2", flowId: "F.a", seq: 2, payload: rows("A", "T", [8, 9])),
                IngestBatch(clientId: "C.1", flowId: "F.c", seq: 1, payload: rows("A", "S", [10, 11, 12, 13])),
                IngestBatch(clientId: "C.3", flowId: "F.d", seq: 1, payload: rows("A", "S", [14])),
            ])
            let queries = [
                ResultQuery(), ResultQuery(huntId: "H.1"), ResultQuery(huntId: "H.1", round: 1), ResultQuery(huntId: "H.1", artifact: "A"),
                ResultQuery(artifact: "A", source: "S"), ResultQuery(clientId: "C.1"), ResultQuery(flowId: "F.b"),
            ]
            for query in queries {
                let whole = try await store.results(query)
                for size in [1, 2, 3, 100] {
                    var paged: [ResultRow] = []
                    var page = query
                    page.limit = size
                    while true {
                        let rows = try await store.results(page)
                        #expect(rows.count <= size)
                        paged += rows
                        guard rows.count == size, let last = rows.last else { break }
                        page.after = last.cursor
                    }
                    #expect(paged == whole, "\(query) in pages of \(size)")
                }
                var chunks: [[ResultRow]] = []
                try await store.streamResults(query, chunk: 2) { chunks.append($0) }
                #expect(chunks.allSatisfy { !$0.isEmpty && $0.count <= 2 })
                #expect(chunks.flatMap { $0 } == whole, "\(query) streamed")
            }
            // Same creation time: flow ID decides (F.a before F.b), and a cursor inside F.a goes on into F.b.
            let all = try await store.results(ResultQuery())
            #expect(all.map { Int($0.json.filter(\.isNumber)) ?? -1 } == [14, 7, 8, 9, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13])
            #expect(all.map(\.seq) == [1, 1, 2, 2, 1, 1, 1, 2, 3, 3, 1, 1, 1, 1])
            #expect(all.map(\.index) == [0, 0, 0, 1, 0, 1, 2, 0, 0, 1, 0, 1, 2, 3])
            let afterA = try await store.results(ResultQuery(limit: 2, after: ResultCursor(flowId: "F.a", seq: 2, index: 0)))
            #expect(afterA.map(\.json) == ["{\"n\":9}", "{\"n\":1}"])
            // A limited stream stops at its limit; a cursor past the end gives nothing.
            var streamed: [ResultRow] = []
            try await store.streamResults(ResultQuery(huntId: "H.1", limit: 5), chunk: 3) { streamed += $0 }
            #expect(streamed == Array(try await store.results(ResultQuery(huntId: "H.1")).prefix(5)))
            #expect(try await store.results(ResultQuery(after: ResultCursor(flowId: "F.c", seq: 1, index: 3))).isEmpty)
        }
    }
}

extension FlowsContractTests {
    /// The console's column filter: a text found in one top-level column, case aside, applied by
    /// the engine so that pages (by cursor) and streams hold only matching rows.
    @Test(arguments: Engine.allCases) func resultsFilteredByAColumnsText(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 10))
            try await store.addFlow(FlowRecord(flowId: "F.2", clientId: "C.2", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 20))
            let texts = [
                #"{"Name":"sshd","Cmd":"/usr/sbin/sshd -D","Pid":1}"#, #"{"Name":"bash","Cmd":"-bash","Pid":22}"#,
                #"{"Name":"SSH-agent","Cmd":"ssh-agent -s","Pid":333}"#, #"{"Name":"cron","Cmd":"/usr/sbin/cron -f","Pid":4}"#,
                #"{"Name":"x","Cmd":"sshd in Cmd only","Pid":5,"Odd \"name":"sshd"}"#, #"{"Other":"sshd"}"#,
            ]
            _ = try await store.ingest([
                IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .rows(artifact: "A", source: "", rows: Array(texts[0..<3]))),
                IngestBatch(clientId: "C.2", flowId: "F.2", seq: 1, payload: .rows(artifact: "A", source: "", rows: Array(texts[3...]))),
            ])
            func names(_ query: ResultQuery) async throws -> [String] {
                try await store.results(query).map { row in
                    ((try? JSONSerialization.jsonObject(with: Data(row.json.utf8))) as? [String: Any])?["Name"] as? String ?? "-"
                }
            }
            var query = ResultQuery(huntId: "H.1", filter: ResultFilter(column: "Name", contains: "ssh"))
            #expect(try await names(query) == ["sshd", "SSH-agent"])
            query.filter = ResultFilter(column: "Cmd", contains: "SBIN")
            #expect(try await names(query) == ["sshd", "cron"])
            // Numbers match by their text; a column a row lacks never matches.
            query.filter = ResultFilter(column: "Pid", contains: "33")
            #expect(try await names(query) == ["SSH-agent"])
            query.filter = ResultFilter(column: "Nope", contains: "s")
            #expect(try await names(query).isEmpty)
            // Pages by cursor and streams see only matching rows.
            query.filter = ResultFilter(column: "Cmd", contains: "s")
            let whole = try await store.results(query)
            #expect(whole.count == 5)
            var paged: [ResultRow] = []
            var page = query
            page.limit = 2
            while true {
                let rows = try await store.results(page)
                paged += rows
                guard rows.count == 2, let last = rows.last else { break }
                page.after = last.cursor
            }
            #expect(paged == whole)
            var streamed: [ResultRow] = []
            try await store.streamResults(query, chunk: 2) { streamed += $0 }
            #expect(streamed == whole)
            // SQL and JSON-path syntax in the text or the column is only text.
            query.filter = ResultFilter(column: "Name", contains: "%' OR 1=1 --")
            #expect(try await names(query).isEmpty)
            query.filter = ResultFilter(column: "Name') OR 1=1 --", contains: "s")
            #expect(try await names(query).isEmpty)
            #expect(ResultFilter(column: "Odd \"name", contains: "s").problem != nil)
            #expect(ResultFilter(column: "Name", contains: "").problem != nil)
        }
    }
}
