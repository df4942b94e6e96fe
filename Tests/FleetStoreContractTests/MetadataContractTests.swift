import Foundation
import Testing

@testable import FleetCore

/// The `FleetStore` contract for metadata notes and for deleting hunts and flows, on every engine.
@Suite struct MetadataContractTests {
    @Test(arguments: Engine.allCases) func notesAreSetReplacedAndRemovedPerOwner(engine: Engine) async throws {
        try await withStore(engine) { store in
            #expect(try await store.metadata("C.1").isEmpty)
            #expect(try await store.setMetadata("C.1", ["owner": "ops", "room": "12"]) == ["owner": "ops", "room": "12"])
            #expect(try await store.setMetadata(MetadataOwner.server, ["contact": "soc"]) == ["contact": "soc"])
            // A new value replaces the old; nil removes; other owners are untouched.
            #expect(try await store.setMetadata("C.1", ["owner": "dev", "room": nil, "gone": nil]) == ["owner": "dev"])
            #expect(try await store.metadata("C.1") == ["owner": "dev"])
            #expect(try await store.metadata(MetadataOwner.server) == ["contact": "soc"])
            #expect(try await store.metadata("C.2").isEmpty)
            // Text any engine stores faithfully round-trips (quotes, newlines, non-ASCII).
            let text = "it's \"quoted\"\nand ünïcode ✓"
            try await store.setMetadata("C.1", ["note": text])
            #expect(try await store.metadata("C.1")["note"] == text)
        }
    }

    @Test(arguments: Engine.allCases) func deletingAClientRemovesEverythingAboutItAndNothingElse(engine: Engine) async throws {
        try await withStore(engine) { store in
            for id in ["C.1", "C.2"] {
                try await store.addClient(ClientRecord(clientId: id, enrolledAt: 1))
                _ = try await store.labelClient(id, add: ["web"], remove: [])
                try await store.setMetadata(id, ["owner": "ops"])
                try await store.setMetadata(MetadataOwner.isolation(id), ["isolated": "true"])
                try await store.addFlow(FlowRecord(flowId: "F.\(id)", clientId: id, request: request, creator: "a", createdAt: 1))
                _ = try await store.ingest([
                    IngestBatch(clientId: id, flowId: "F.\(id)", seq: 1, payload: rows("A", "", [1, 2])),
                    IngestBatch(clientId: id, flowId: "F.\(id)", seq: 2, payload: .log(["{\"message\":\"hi\"}"])),
                ])
                _ = try await store.ingestEvents([EventBatch(clientId: id, artifact: "E", source: "", seq: 1, rows: ["{\"n\":1}", "{\"n\":2}"], receivedAt: 100)])
            }
            try await store.setMetadata(MetadataOwner.server, ["contact": "soc"])
            let gone = try await store.deleteClient("C.1")
            #expect(gone == ClientDeletion(flows: ["F.C.1"], eventRows: 2, notes: 2))
            #expect(try await store.client("C.1") == nil)
            #expect(try await store.flow("F.C.1") == nil)
            #expect(try await store.results(ResultQuery(flowId: "F.C.1")).isEmpty)
            #expect(try await store.logs(flowId: "F.C.1").isEmpty)
            #expect(try await store.events(EventQuery(artifact: "E", clientId: "C.1")).isEmpty)
            #expect(try await store.metadata("C.1").isEmpty)
            #expect(try await store.metadata(MetadataOwner.isolation("C.1")).isEmpty)
            // The other client and the server's notes keep everything.
            #expect(try await store.client("C.2")?.labels == ["web"])
            #expect(try await store.results(ResultQuery(flowId: "F.C.2")).count == 2)
            #expect(try await store.events(EventQuery(artifact: "E", clientId: "C.2")).count == 2)
            #expect(try await store.metadata("C.2") == ["owner": "ops"])
            #expect(try await store.metadata(MetadataOwner.server) == ["contact": "soc"])
            #expect(try await store.deleteClient("C.1") == nil)
            // The ID may be enrolled again from scratch.
            try await store.addClient(ClientRecord(clientId: "C.1", enrolledAt: 5))
            #expect(try await store.client("C.1")?.labels == [])
        }
    }

    @Test(arguments: Engine.allCases) func deletingAHuntRemovesItsFlowsAndTheirData(engine: Engine) async throws {
        try await withStore(engine) { store in
            let hunt = HuntRecord(huntId: "H.1", request: request, conditions: HuntConditions(), state: .running, creator: "a", createdAt: 1, expiresAt: 100)
            try await store.addHunt(hunt)
            try await store.addHunt(HuntRecord(huntId: "H.2", request: request, conditions: HuntConditions(), state: .running, creator: "a", createdAt: 2, expiresAt: 100))
            try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 1))
            try await store.addFlow(FlowRecord(flowId: "F.2", clientId: "C.2", huntId: "H.1", round: 1, request: request, creator: "a", createdAt: 1))
            try await store.addFlow(FlowRecord(flowId: "F.3", clientId: "C.1", huntId: "H.2", round: 1, request: request, creator: "a", createdAt: 1))
            try await store.addFlow(FlowRecord(flowId: "F.4", clientId: "C.1", request: request, creator: "a", createdAt: 1))
            for (flow, client) in [("F.1", "C.1"), ("F.2", "C.2"), ("F.3", "C.1"), ("F.4", "C.1")] {
                _ = try await store.ingest([
                    IngestBatch(clientId: client, flowId: flow, seq: 1, payload: rows("A", "", [1, 2])),
                    IngestBatch(clientId: client, flowId: flow, seq: 2, payload: .log(["{\"message\":\"hi\"}"])),
                    IngestBatch(clientId: client, flowId: flow, seq: 3, payload: .upload(UploadRecord(flowId: flow, name: "f", size: 1, sha256: String(repeating: "a", count: 64), md5: String(repeating: "b", count: 32)))),
                ])
            }
            #expect(Set(try await store.deleteHunt("H.1")) == ["F.1", "F.2"])
            #expect(try await store.hunt("H.1") == nil)
            #expect(try await store.flows(clientId: nil, huntId: "H.1").isEmpty)
            #expect(try await store.results(ResultQuery(huntId: "H.1")).isEmpty)
            #expect(try await store.results(ResultQuery(flowId: "F.1")).isEmpty)
            #expect(try await store.logs(flowId: "F.2").isEmpty)
            #expect(try await store.uploads(flowId: "F.2").isEmpty)
            // The other hunt and the direct flow keep everything.
            #expect(try await store.results(ResultQuery(huntId: "H.2")).count == 2)
            #expect(try await store.uploads(flowId: "F.3").count == 1)
            let missing = await #expect(throws: StoreError.self) { try await store.deleteHunt("H.1") }
            #expect(missing?.message == "deleteHunt: no hunt H.1")

            #expect(try await store.deleteFlow("F.4"))
            #expect(try await store.flow("F.4") == nil)
            #expect(try await store.results(ResultQuery(flowId: "F.4")).isEmpty)
            #expect(try await store.logs(flowId: "F.4").isEmpty)
            #expect(try await !store.deleteFlow("F.4"))
            // A deleted flow's ID may carry a new flow (its batches start again at 1).
            try await store.addFlow(FlowRecord(flowId: "F.4", clientId: "C.1", request: request, creator: "a", createdAt: 5))
            #expect(try await store.ingest([IngestBatch(clientId: "C.1", flowId: "F.4", seq: 1, payload: rows("A", "", [7]))]) == [.stored])
        }
    }
}
