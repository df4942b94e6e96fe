import Foundation
import PostgresNIO
import Testing

@testable import FleetCore
@testable import FleetPostgres

/// One agent's bad batch never holds back another's: invalid rows are rejected per batch with a
/// reason, and when a group-committed transaction fails anyway each batch is stored alone.
@Suite struct IngestIsolationContractTests {
    static func flows(_ store: any FleetStore) async throws {
        try await store.addFlow(FlowRecord(flowId: "F.good", clientId: "C.good", request: request, creator: "alice", createdAt: 1))
        try await store.addFlow(FlowRecord(flowId: "F.bad", clientId: "C.bad", request: request, creator: "alice", createdAt: 2))
    }

    static func batch(_ client: String, _ flow: String, _ seq: Int, _ rows: [String]) -> IngestBatch {
        IngestBatch(clientId: client, flowId: flow, seq: seq, payload: .rows(artifact: "A", source: "", rows: rows))
    }

    /// The issue's reproduction: a NUL byte in one agent's row, grouped with another agent's
    /// batches. Before, the whole transaction failed (PostgreSQL refuses NUL in text).
    @Test(arguments: Engine.allCases) func nulBytesAreRejectedPerBatch(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await Self.flows(store)
            let groups = [
                [Self.batch("C.good", "F.good", 1, [#"{"n":1}"#, #"{"n":2}"#])],
                [Self.batch("C.bad", "F.bad", 1, [#"{"n":"a\#u{0}b"}"#]), Self.batch("C.bad", "F.bad", 2, [#"{"n":3}"#])],
                [IngestBatch(clientId: "C.bad", flowId: "F.bad", seq: 3, payload: .log(["x\u{0}"]))],
            ]
            let results = await store.ingest(groups: groups)
            #expect(try results[0].get() == [.stored])
            let bad = try results[1].get()
            #expect(bad.count == 2)
            guard case .rejected(let reason) = bad[0] else {
                Issue.record("the NUL row was not rejected: \(bad[0])")
                return
            }
            #expect(reason.contains("NUL"))
            #expect(bad[1] == .stored)
            guard case .rejected? = try results[2].get().first else {
                Issue.record("the NUL log line was not rejected")
                return
            }
            #expect(try await store.results(ResultQuery(flowId: "F.good")).map(\.json) == [#"{"n":1}"#, #"{"n":2}"#])
            #expect(try await store.results(ResultQuery(flowId: "F.bad")).map(\.json) == [#"{"n":3}"#])
            // A rejected batch is not recorded: the same (flow, seq) with good rows is stored later.
            #expect(try await store.ingest([Self.batch("C.bad", "F.bad", 1, [#"{"n":0}"#])]) == [.stored])
        }
    }

    /// A batch the database itself refuses (here a trigger stands for any data error the checks do
    /// not foresee): the group's transaction fails, then every batch is stored alone, the refused
    /// one is rejected with the database's reason and the others are stored.
    @Test(arguments: Engine.allCases) func aFailedGroupIsStoredBatchByBatch(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await Self.flows(store)
            switch store {
            case let sqlite as SQLiteFleetStore:
                try sqlite.run("trigger") { db in
                    try db.execute("""
                        CREATE TRIGGER poison BEFORE INSERT ON results WHEN NEW.json LIKE '%poison%'
                        BEGIN SELECT RAISE(ABORT, 'poisoned row'); END
                        """)
                }
            case let postgres as PostgresFleetStore:
                try await postgres.transaction("trigger") { connection in
                    try await connection.perform("""
                        CREATE FUNCTION poison() RETURNS trigger AS $$
                        BEGIN IF NEW.json LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned row' USING ERRCODE = '22000'; END IF; RETURN NEW; END
                        $$ LANGUAGE plpgsql
                        """)
                    try await connection.perform("CREATE TRIGGER poison BEFORE INSERT ON results FOR EACH ROW EXECUTE FUNCTION poison()")
                }
            default:
                Issue.record("unknown engine")
                return
            }
            let groups = [
                [Self.batch("C.good", "F.good", 1, [#"{"n":1}"#]), Self.batch("C.good", "F.good", 2, [#"{"n":2}"#])],
                [Self.batch("C.bad", "F.bad", 1, [#"{"n":"poison"}"#]), Self.batch("C.bad", "F.bad", 2, [#"{"n":3}"#])],
            ]
            // The group alone fails.
            await #expect(throws: StoreError.self) { _ = try await store.ingest(groups.flatMap { $0 }) }
            let results = await store.ingest(groups: groups)
            #expect(try results[0].get() == [.stored, .stored])
            let bad = try results[1].get()
            guard case .rejected(let reason) = bad.first else {
                Issue.record("the poisoned batch was not rejected: \(bad)")
                return
            }
            #expect(reason.contains("poisoned row"))
            #expect(bad.last == .stored)
            #expect(try await store.results(ResultQuery(flowId: "F.good")).count == 2)
            #expect(try await store.results(ResultQuery(flowId: "F.bad")).map(\.json) == [#"{"n":3}"#])
        }
    }
}
