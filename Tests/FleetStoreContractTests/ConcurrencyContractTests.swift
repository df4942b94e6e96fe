import Foundation
import Testing

@testable import FleetCore

/// Many writers at once — tasks of one server, and several servers on one database — and the
/// ingestion rate, on every engine.
@Suite struct ConcurrencyContractTests {
    @Test(arguments: Engine.allCases) func concurrentIngestionIntoDifferentFlowsAllLands(engine: Engine) async throws {
        try await withStore(engine) { store in
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
            #expect(try await store.flowCounts() == [.scheduled: tasks])
        }
    }

    /// Two server processes (two stores, two connection pools) receive the same batches — an agent
    /// that resent them to another frontend — in different groupings and orders, all at once, with
    /// statuses and uploads mixed in: each batch is stored exactly once, and no call fails.
    @Test(arguments: Engine.allCases) func twoFrontendsIngestingTheSameBatchesStoreEachOnce(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let frontends = [try await database.migrated(), try await database.migrated()]
            let flows = 6, batchesPerFlow = 30, perBatch = 20
            for f in 0..<flows {
                try await frontends[0].addFlow(FlowRecord(flowId: "F.\(f)", clientId: "C.\(f)", huntId: "H", round: 1, request: request, creator: "a", createdAt: Double(f)))
            }
            var all: [IngestBatch] = []
            for f in 0..<flows {
                for seq in 1...batchesPerFlow {
                    let payload: IngestBatch.Payload
                    switch seq {
                    case 1: payload = .status(FlowStatus(state: .running, time: 100))
                    case 2: payload = .upload(UploadRecord(flowId: "F.\(f)", name: "/f\(f)", size: 10, sha256: "s\(f)", md5: "m\(f)"))
                    case 3: payload = .log(["{\"line\":\(f)}"])
                    default: payload = rows("A", "S", Array(0..<perBatch).map { seq * 1000 + $0 })
                    }
                    all.append(IngestBatch(clientId: "C.\(f)", flowId: "F.\(f)", seq: seq, payload: payload))
                }
            }
            // Each frontend gets every batch, in calls of 1 to 7 batches spanning several flows.
            func calls(_ seed: UInt64) -> [[IngestBatch]] {
                var generator = SeededGenerator(seed: seed)
                var batches = all.shuffled(using: &generator)
                var calls: [[IngestBatch]] = []
                while !batches.isEmpty {
                    let count = min(batches.count, Int.random(in: 1...7, using: &generator))
                    calls.append(Array(batches.prefix(count)))
                    batches.removeFirst(count)
                }
                return calls
            }
            let outcomes = try await withThrowingTaskGroup(of: [IngestOutcome].self) { group in
                for (index, frontend) in frontends.enumerated() {
                    let work = calls(UInt64(index + 1))
                    // Two tasks per frontend, each with half of its calls.
                    for half in 0..<2 {
                        group.addTask {
                            var outcomes: [IngestOutcome] = []
                            for (n, call) in work.enumerated() where n % 2 == half {
                                outcomes += try await frontend.ingest(call)
                            }
                            return outcomes
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(outcomes.count == 2 * all.count)
            #expect(outcomes.filter { $0 == .stored }.count == all.count)
            #expect(outcomes.filter { $0 == .duplicate }.count == all.count)

            let rowsPerFlow = (batchesPerFlow - 3) * perBatch
            for f in 0..<flows {
                let flow = try #require(try await frontends[1].flow("F.\(f)"))
                #expect(flow.rows == rowsPerFlow)
                #expect(flow.uploadedBytes == 10)
                #expect(flow.state == .running && flow.startedAt == 100)
                #expect(try await frontends[1].uploads(flowId: "F.\(f)").count == 1)
                #expect(try await frontends[1].logs(flowId: "F.\(f)") == ["{\"line\":\(f)}"])
                let values = try await frontends[0].results(ResultQuery(flowId: "F.\(f)")).map(\.json)
                #expect(values.count == rowsPerFlow)
                #expect(Set(values).count == rowsPerFlow)
            }
            #expect(try await frontends[0].results(ResultQuery(huntId: "H")).count == flows * rowsPerFlow)
        }
    }

    /// Not a pass/fail check: prints the ingestion rate of 100,000 rows in batches of 1000, sent as one
    /// call of 100 batches, then as 100 calls of one batch; best of three rounds (the other tests run
    /// alongside at first, on the same cores).
    @Test(.serialized, arguments: Engine.allCases) func ingestionRate(engine: Engine) async throws {
        try await withStore(engine) { store in
            let row = #"{"Pid":1234,"Name":"sshd","CommandLine":"/usr/sbin/sshd -D","Username":"root","CreateTime":"2024-01-01T00:00:00Z"}"#
            func batches(_ flowId: String) -> [IngestBatch] {
                (1...100).map { seq in
                    IngestBatch(clientId: "C.1", flowId: flowId, seq: seq, payload: .rows(artifact: "Linux.Sys.Pslist", source: "", rows: Array(repeating: row, count: 1000)))
                }
            }
            let clock = ContinuousClock()
            var oneCall: [Double] = [], manyCalls: [Double] = []
            for round in 1...3 {
                let (one, many) = ("F.one.\(round)", "F.many.\(round)")
                try await store.addFlow(FlowRecord(flowId: one, clientId: "C.1", huntId: "H", round: round, request: request, creator: "a", createdAt: Double(round)))
                try await store.addFlow(FlowRecord(flowId: many, clientId: "C.1", huntId: "H2", round: round, request: request, creator: "a", createdAt: Double(round) + 0.5))
                var start = clock.now
                let outcomes = try await store.ingest(batches(one))
                oneCall.append(seconds(clock.now - start))
                #expect(outcomes.allSatisfy { $0 == .stored })

                start = clock.now
                for batch in batches(many) { #expect(try await store.ingest(batch) == .stored) }
                manyCalls.append(seconds(clock.now - start))
                #expect(try await store.flow(one)?.rows == 100_000)
                #expect(try await store.flow(many)?.rows == 100_000)
            }
            func rates(_ times: [Double]) -> String {
                let all = times.map { Int(100_000 / max($0, 1e-9)) }
                return "\(all.max() ?? 0) rows/s (rounds: \(all.map(String.init).joined(separator: ", ")))"
            }
            print("\(engine) ingest of 100,000 rows in batches of 1000: in one call \(rates(oneCall)); in 100 calls \(rates(manyCalls))")

            let readStart = clock.now
            let page = try await store.results(ResultQuery(huntId: "H", limit: 100, offset: 99_000))
            print("\(engine) results: a 100-row page at offset 99,000 of a hunt in \(clock.now - readStart)")
            #expect(page.count == 100)
        }
    }
}

/// A small deterministic random number generator (SplitMix64), so that failures repeat.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
