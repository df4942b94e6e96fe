import Foundation
import Testing

@testable import FleetCore

/// A fresh database file in its own temporary directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleetstore-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

/// A migrated store on a fresh file.
func withStore<T>(_ body: (SQLiteFleetStore) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { directory in
        let store = try SQLiteFleetStore(path: directory + "/fleet.db")
        try await store.migrate()
        return try await body(store)
    }
}

@Suite struct SQLiteStoreTests {
    @Test func migrateTwiceIsIdempotent() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteFleetStore(path: directory + "/fleet.db")
            #expect(try await store.schemaVersion() == 0)
            try await store.migrate()
            try await store.migrate()
            #expect(try await store.schemaVersion() == FleetSchema.migrations.count)
            #expect(FleetSchema.latestVersion == FleetSchema.migrations.count)
            #expect(FleetSchema.migrations.map(\.version) == Array(1...FleetSchema.migrations.count))
        }
    }

    @Test func laterMigrationsApplyOnTopAndFailuresRollBack() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/fleet.db"
            try await SQLiteFleetStore(path: path).migrate()
            let next = SchemaMigration(
                version: FleetSchema.latestVersion + 1, name: "notes",
                statements: ["CREATE TABLE notes (id TEXT NOT NULL PRIMARY KEY)", "CREATE INDEX notes_by_id ON notes (id)"])
            let upgraded = try SQLiteFleetStore(path: path, migrations: FleetSchema.migrations + [next])
            try await upgraded.migrate()
            try await upgraded.migrate()
            #expect(try await upgraded.schemaVersion() == next.version)

            let broken = SchemaMigration(
                version: next.version + 1, name: "broken",
                statements: ["CREATE TABLE more_notes (id TEXT)", "CREATE TABLE notes (id TEXT)"])
            let failing = try SQLiteFleetStore(path: path, migrations: FleetSchema.migrations + [next, broken])
            let error = await #expect(throws: StoreError.self) { try await failing.migrate() }
            #expect(error?.message.contains("broken") == true)
            #expect(error?.message.contains("already exists") == true)
            #expect(try await failing.schemaVersion() == next.version)
            // The failed step left nothing behind: it applies once fixed.
            let fixed = SchemaMigration(version: broken.version, name: "fixed", statements: ["CREATE TABLE more_notes (id TEXT)"])
            let repaired = try SQLiteFleetStore(path: path, migrations: FleetSchema.migrations + [next, fixed])
            try await repaired.migrate()
            #expect(try await repaired.schemaVersion() == fixed.version)
        }
    }

    @Test func fileIsPrivateAndInWALMode() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/fleet.db"
            let store = try SQLiteFleetStore(path: path)
            try await store.migrate()
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
            let mode = try store.run("test") { db in try db.queryFirst("PRAGMA journal_mode", [], { $0.text(0) }) }
            #expect(mode == "wal")
            let foreignKeys = try store.run("test") { db in try db.queryFirst("PRAGMA foreign_keys", [], { $0.int(0) }) }
            #expect(foreignKeys == 1)
        }
    }

    @Test func inMemoryDatabase() async throws {
        let store = try SQLiteFleetStore(path: ":memory:")
        try await store.migrate()
        try await store.addClient(ClientRecord(clientId: "C.1", enrolledAt: 1))
        #expect(try await store.clients().count == 1)
    }

    @Test func openingInAMissingDirectoryFails() {
        #expect(throws: StoreError.self) { try SQLiteFleetStore(path: "/nonexistent-\(UUID().uuidString)/fleet.db") }
    }

    @Test func users() async throws {
        try await withStore { store in
            try await store.addUser(UserRecord(name: "bob", role: .reader, apiKeySHA256: "b0b", createdAt: 2))
            try await store.addUser(UserRecord(name: "alice", role: .administrator, apiKeySHA256: "a11ce", createdAt: 1))
            #expect(try await store.user(apiKeySHA256: "a11ce")?.name == "alice")
            #expect(try await store.user(apiKeySHA256: "a11ce")?.role == .administrator)
            #expect(try await store.user(apiKeySHA256: "nope") == nil)
            #expect(try await store.users().map(\.name) == ["alice", "bob"])
            let error = await #expect(throws: StoreError.self) {
                try await store.addUser(UserRecord(name: "alice", role: .reader, apiKeySHA256: "other", createdAt: 3))
            }
            #expect(error?.message.contains("addUser alice") == true)
            #expect(error?.message.contains("UNIQUE") == true)
        }
    }

    @Test func clientsAndLabels() async throws {
        try await withStore { store in
            var client = ClientRecord(clientId: "C.1", enrolledAt: 100, certificateSerial: "0a")
            client.labels = ["web", "db", "web"]
            try await store.addClient(client)
            try await store.addClient(ClientRecord(clientId: "C.2", enrolledAt: 200))
            await #expect(throws: StoreError.self) { try await store.addClient(ClientRecord(clientId: "C.1", enrolledAt: 1)) }

            var stored = try #require(try await store.client("C.1"))
            #expect(stored.labels == ["db", "web"])
            #expect(stored.certificateSerial == "0a")
            #expect(stored.lastSeen == 100)
            #expect(try await store.client("C.9") == nil)

            try await store.setClientFacts("C.1", ClientFacts(hostname: "web1", fqdn: "web1.example.com", os: "linux", kernel: "6.1", ips: ["10.0.0.1", "fe80::1"]))
            try await store.touchClient("C.1", lastSeen: 150)
            #expect(try await store.labelClient("C.1", add: ["prod", "db", "canary"], remove: ["web"]) == ["canary", "db", "prod"])
            #expect(try await store.labelClient("C.1", add: [], remove: ["canary", "missing"]) == ["db", "prod"])
            try await store.revokeClient("C.2")

            stored = try #require(try await store.client("C.1"))
            #expect(stored.hostname == "web1")
            #expect(stored.fqdn == "web1.example.com")
            #expect(stored.os == "linux" && stored.kernel == "6.1")
            #expect(stored.ips == ["10.0.0.1", "fe80::1"])
            #expect(stored.lastSeen == 150)
            #expect(stored.labels == ["db", "prod"])
            #expect(!stored.revoked)

            let all = try await store.clients()
            #expect(all.map(\.clientId) == ["C.1", "C.2"])
            #expect(all.map(\.labels) == [["db", "prod"], []])
            #expect(all.map(\.revoked) == [false, true])

            await #expect(throws: StoreError.self) { try await store.labelClient("C.9", add: ["x"], remove: []) }
            await #expect(throws: StoreError.self) { try await store.touchClient("C.9", lastSeen: 1) }
        }
    }

    @Test func huntsNewestFirstAndReplaced() async throws {
        try await withStore { store in
            let request = CollectionRequest(artifacts: ["Linux.Sys.Users"], parameters: ["A": "1"], timeout: 60, maxRows: 10)
            var old = HuntRecord(
                huntId: "H.1", request: request, conditions: HuntConditions(labels: ["web"], os: "linux"),
                state: .paused, creator: "alice", createdAt: 10, expiresAt: 1000)
            old.description = "first"
            let new = HuntRecord(huntId: "H.2", request: request, conditions: HuntConditions(), state: .running, creator: "bob", createdAt: 20, expiresAt: 2000)
            try await store.addHunt(old)
            try await store.addHunt(new)
            #expect(try await store.hunts().map(\.huntId) == ["H.2", "H.1"])
            #expect(try await store.hunt("H.1") == old)

            old.state = .running
            old.startedAt = 11
            old.round = 3
            old.schedule = "@every 30s"
            old.roundStartedAt = 12
            old.nextRoundAt = 42
            old.clientLimit = 5
            old.ratePerMinute = 100
            old.conditions.excludeLabels = ["canary"]
            try await store.updateHunt(old)
            #expect(try await store.hunt("H.1") == old)
            #expect(try await store.hunt("H.3") == nil)
            var missing = new
            missing.huntId = "H.3"
            await #expect(throws: StoreError.self) { try await store.updateHunt(missing) }
        }
    }

    @Test func auditNewestFirst() async throws {
        try await withStore { store in
            for i in 0..<5 {
                try await store.audit(AuditEntry(time: Double(i / 2), user: "alice", action: "act\(i)", target: "C.1", details: "{}", remote: "127.0.0.1"))
            }
            #expect(try await store.auditLog(limit: 3).map(\.action) == ["act4", "act3", "act2"])
            #expect(try await store.auditLog(limit: 10).count == 5)
            #expect(try await store.auditLog(limit: 0).isEmpty)
        }
    }

    @Test func reopeningKeepsData() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/fleet.db"
            do {
                let store = try SQLiteFleetStore(path: path)
                try await store.migrate()
                try await store.addClient(ClientRecord(clientId: "C.1", enrolledAt: 1))
                try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: CollectionRequest(artifacts: ["A"]), creator: "alice", createdAt: 1))
                _ = try await store.ingest(IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .rows(artifact: "A", source: "", rows: ["{\"x\":1}"])))
            }
            let reopened = try SQLiteFleetStore(path: path)
            try await reopened.migrate()
            #expect(try await reopened.schemaVersion() == FleetSchema.latestVersion)
            #expect(try await reopened.client("C.1") != nil)
            #expect(try await reopened.flow("F.1")?.rows == 1)
            #expect(try await reopened.results(ResultQuery(flowId: "F.1")).map(\.json) == ["{\"x\":1}"])
            // The batch is still known: a resend is a duplicate.
            let again = try await reopened.ingest(IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .rows(artifact: "A", source: "", rows: ["{\"x\":1}"])))
            #expect(again == .duplicate)
        }
    }
}
