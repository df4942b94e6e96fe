import Foundation
import Testing

@testable import FleetCore

/// The `FleetStore` contract for the schema, users, clients, hunts and the audit log, checked on
/// every engine.
@Suite struct RecordsContractTests {
    @Test(arguments: Engine.allCases) func migrateTwiceIsIdempotent(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let store = try database.open()
            #expect(try await store.schemaVersion() == 0)
            try await store.migrate()
            try await store.migrate()
            #expect(try await store.schemaVersion() == FleetSchema.latestVersion)
            #expect(FleetSchema.migrations.map(\.version) == Array(1...FleetSchema.migrations.count))
            // Another process starting on the same database finds nothing to do.
            let other = try database.open()
            try await other.migrate()
            #expect(try await other.schemaVersion() == FleetSchema.latestVersion)
        }
    }

    /// Server processes starting together: each migration is applied exactly once, nothing fails.
    @Test(arguments: Engine.allCases) func concurrentMigrationsApplyOnce(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let stores = try (0..<4).map { _ in try database.open(poolSize: 2) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            for store in stores { #expect(try await store.schemaVersion() == FleetSchema.latestVersion) }
            try await stores[0].addClient(ClientRecord(clientId: "C.1", enrolledAt: 1))
            #expect(try await stores[3].clients().map(\.clientId) == ["C.1"])
        }
    }

    @Test(arguments: Engine.allCases) func laterMigrationsApplyOnTopAndFailuresRollBack(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            try await database.open().migrate()
            let next = SchemaMigration(
                version: FleetSchema.latestVersion + 1, name: "notes",
                statements: ["CREATE TABLE notes (id TEXT NOT NULL PRIMARY KEY)", "CREATE INDEX notes_by_id ON notes (id)"])
            let upgraded = try database.open(migrations: FleetSchema.migrations + [next])
            try await upgraded.migrate()
            try await upgraded.migrate()
            #expect(try await upgraded.schemaVersion() == next.version)

            let broken = SchemaMigration(
                version: next.version + 1, name: "broken",
                statements: ["CREATE TABLE more_notes (id TEXT)", "CREATE TABLE notes (id TEXT)"])
            let failing = try database.open(migrations: FleetSchema.migrations + [next, broken])
            let error = await #expect(throws: StoreError.self) { try await failing.migrate() }
            #expect(error?.message.contains("broken") == true)
            #expect(error?.message.contains("already exists") == true)
            #expect(try await failing.schemaVersion() == next.version)
            // The failed step left nothing behind: it applies once fixed.
            let fixed = SchemaMigration(version: broken.version, name: "fixed", statements: ["CREATE TABLE more_notes (id TEXT)"])
            let repaired = try database.open(migrations: FleetSchema.migrations + [next, fixed])
            try await repaired.migrate()
            #expect(try await repaired.schemaVersion() == fixed.version)
        }
    }

    @Test(arguments: Engine.allCases) func users(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.addUser(UserRecord(name: "bob", role: .reader, apiKeySHA256: "b0b", createdAt: 2))
            try await store.addUser(UserRecord(name: "alice", role: .administrator, apiKeySHA256: "a11ce", createdAt: 1))
            try await store.addUser(UserRecord(name: "Zed", role: .investigator, apiKeySHA256: "2ed", createdAt: 3))
            #expect(try await store.user(apiKeySHA256: "a11ce")?.name == "alice")
            #expect(try await store.user(apiKeySHA256: "a11ce")?.role == .administrator)
            #expect(try await store.user(apiKeySHA256: "a11ce")?.createdAt == 1)
            #expect(try await store.user(apiKeySHA256: "nope") == nil)
            // Byte order, whatever the database's collation: upper case first.
            #expect(try await store.users().map(\.name) == ["Zed", "alice", "bob"])
            let error = await #expect(throws: StoreError.self) {
                try await store.addUser(UserRecord(name: "alice", role: .reader, apiKeySHA256: "other", createdAt: 3))
            }
            #expect(error?.message.contains("addUser alice") == true)
            // The engine's own words.
            #expect(error?.message.contains(engine == .sqlite ? "UNIQUE" : "duplicate key value violates unique constraint") == true)
            await #expect(throws: StoreError.self) {
                try await store.addUser(UserRecord(name: "carol", role: .reader, apiKeySHA256: "b0b", createdAt: 3))
            }
        }
    }

    @Test(arguments: Engine.allCases) func clientsAndLabels(engine: Engine) async throws {
        try await withStore(engine) { store in
            var client = ClientRecord(clientId: "C.1", enrolledAt: 100, certificateSerial: "0a")
            client.labels = ["web", "db", "web", ""]
            try await store.addClient(client)
            try await store.addClient(ClientRecord(clientId: "C.2", enrolledAt: 200))
            let duplicate = await #expect(throws: StoreError.self) { try await store.addClient(ClientRecord(clientId: "C.1", enrolledAt: 1)) }
            #expect(duplicate?.message.contains("addClient C.1") == true)

            var stored = try #require(try await store.client("C.1"))
            #expect(stored.labels == ["db", "web"])
            #expect(stored.certificateSerial == "0a")
            #expect(stored.enrolledAt == 100 && stored.lastSeen == 100)
            #expect(try await store.client("C.9") == nil)

            try await store.setClientFacts("C.1", ClientFacts(hostname: "web1", fqdn: "web1.example.com", os: "linux", kernel: "6.1", ips: ["10.0.0.1", "fe80::1"]))
            try await store.touchClient("C.1", lastSeen: 150.25)
            #expect(try await store.labelClient("C.1", add: ["prod", "db", "canary", ""], remove: ["web"]) == ["canary", "db", "prod"])
            #expect(try await store.labelClient("C.1", add: [], remove: ["canary", "missing"]) == ["db", "prod"])
            try await store.revokeClient("C.2")

            stored = try #require(try await store.client("C.1"))
            #expect(stored.hostname == "web1")
            #expect(stored.fqdn == "web1.example.com")
            #expect(stored.os == "linux" && stored.kernel == "6.1")
            #expect(stored.ips == ["10.0.0.1", "fe80::1"])
            #expect(stored.lastSeen == 150.25)
            #expect(stored.labels == ["db", "prod"])
            #expect(!stored.revoked)

            let all = try await store.clients()
            #expect(all.map(\.clientId) == ["C.1", "C.2"])
            #expect(all.map(\.labels) == [["db", "prod"], []])
            #expect(all.map(\.revoked) == [false, true])

            for (name, call) in [
                ("labelClient", { try await store.labelClient("C.9", add: ["x"], remove: []) }),
                ("touchClient", { try await store.touchClient("C.9", lastSeen: 1) }),
                ("revokeClient", { try await store.revokeClient("C.9") }),
                ("setClientFacts", { try await store.setClientFacts("C.9", ClientFacts(hostname: "", fqdn: "", os: "", kernel: "", ips: [])) }),
            ] as [(String, () async throws -> Void)] {
                let error = await #expect(throws: StoreError.self) { try await call() }
                #expect(error?.message == "\(name): no client C.9")
            }
        }
    }

    @Test(arguments: Engine.allCases) func huntsNewestFirstAndReplaced(engine: Engine) async throws {
        try await withStore(engine) { store in
            let request = CollectionRequest(artifacts: ["Linux.Sys.Users"], parameters: ["A": "1"], timeout: 60, maxRows: 10)
            var old = HuntRecord(
                huntId: "H.1", request: request, conditions: HuntConditions(labels: ["web"], os: "linux"),
                state: .paused, creator: "alice", createdAt: 10, expiresAt: 1000)
            old.description = "first"
            let new = HuntRecord(huntId: "H.2", request: request, conditions: HuntConditions(), state: .running, creator: "bob", createdAt: 20, expiresAt: 2000)
            let tie = HuntRecord(huntId: "H.0", request: request, conditions: HuntConditions(), state: .archived, creator: "bob", createdAt: 20, expiresAt: 2000)
            try await store.addHunt(old)
            try await store.addHunt(new)
            try await store.addHunt(tie)
            await #expect(throws: StoreError.self) { try await store.addHunt(old) }
            #expect(try await store.hunts().map(\.huntId) == ["H.2", "H.0", "H.1"])
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
            let error = await #expect(throws: StoreError.self) { try await store.updateHunt(missing) }
            #expect(error?.message == "updateHunt: no hunt H.3")
        }
    }

    @Test(arguments: Engine.allCases) func auditNewestFirst(engine: Engine) async throws {
        try await withStore(engine) { store in
            for i in 0..<5 {
                try await store.audit(AuditEntry(time: Double(i / 2), user: "alice", action: "act\(i)", target: "C.1", details: "{}", remote: "127.0.0.1"))
            }
            #expect(try await store.auditLog(limit: 3).map(\.action) == ["act4", "act3", "act2"])
            #expect(try await store.auditLog(limit: 10).count == 5)
            #expect(try await store.auditLog(limit: 0).isEmpty)
            var last = try #require(try await store.auditLog(limit: 1).first)
            #expect(last.id != nil)
            last.id = nil
            #expect(last == AuditEntry(time: 2, user: "alice", action: "act4", target: "C.1", details: "{}", remote: "127.0.0.1"))
        }
    }

    /// Pages below an entry's id go on in the same order, whatever the times; entries are stored
    /// cut to their bounds.
    @Test(arguments: Engine.allCases) func auditPagesAndBounds(engine: Engine) async throws {
        try await withStore(engine) { store in
            // Times out of insertion order, and ties.
            let times: [Double] = [5, 1, 3, 3, 9, 2, 3, 7, 7, 0]
            for (i, time) in times.enumerated() {
                try await store.audit(AuditEntry(time: time, user: "u", action: "act\(i)", target: "t", details: "{}", remote: "r"))
            }
            let whole = try await store.auditLog(limit: 100)
            #expect(whole.map(\.action) == ["act4", "act8", "act7", "act0", "act6", "act3", "act2", "act5", "act1", "act9"])
            for size in [1, 3, 4] {
                var paged: [AuditEntry] = []
                var before: Int64?
                while true {
                    let page = try await store.auditLog(limit: size, before: before)
                    paged += page
                    guard page.count == size, let last = page.last?.id else { break }
                    before = last
                }
                #expect(paged == whole, "pages of \(size)")
            }
            let huge = String(repeating: "x", count: 1 << 20)
            try await store.audit(AuditEntry(time: 10, user: huge, action: "enrol-refused", target: huge, details: huge, remote: huge))
            let stored = try #require(try await store.auditLog(limit: 1).first)
            #expect(stored.target.utf8.count <= AuditEntry.maxFieldBytes && stored.user.utf8.count <= AuditEntry.maxFieldBytes)
            #expect(stored.remote.utf8.count <= AuditEntry.maxFieldBytes && stored.details.utf8.count <= AuditEntry.maxDetailsBytes)
            #expect(stored.target.hasPrefix("xxx") && stored.target.hasSuffix("(1048576 bytes)"))
        }
    }

    /// Users are found by name, removed, and given a new key with an expiry; the old key is gone.
    @Test(arguments: Engine.allCases) func usersRemovedAndRekeyed(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.addUser(UserRecord(name: "rita", role: .reader, apiKeySHA256: "k1", createdAt: 1, expiresAt: 100))
            try await store.addUser(UserRecord(name: "ivan", role: .investigator, apiKeySHA256: "k2", createdAt: 2))
            #expect(try await store.user(named: "rita") == UserRecord(name: "rita", role: .reader, apiKeySHA256: "k1", createdAt: 1, expiresAt: 100))
            #expect(try await store.user(named: "ivan")?.expiresAt == nil)
            #expect(try await store.user(named: "nobody") == nil)
            #expect(try await store.replaceUserKey("rita", apiKeySHA256: "k3", expiresAt: nil))
            #expect(try await store.user(apiKeySHA256: "k1") == nil)
            #expect(try await store.user(apiKeySHA256: "k3")?.name == "rita")
            #expect(try await store.user(named: "rita")?.expiresAt == nil)
            #expect(try await store.replaceUserKey("nobody", apiKeySHA256: "k4", expiresAt: 5) == false)
            // Console passwords: set, replaced, cleared; never for a user that does not exist.
            #expect(try await store.userPasswordHash(named: "rita") == nil)
            #expect(try await store.setUserPasswordHash("rita", hash: "scrypt$a"))
            #expect(try await store.setUserPasswordHash("rita", hash: "scrypt$b"))
            #expect(try await store.userPasswordHash(named: "rita") == "scrypt$b")
            #expect(try await store.userPasswordHash(named: "ivan") == nil)
            #expect(try await store.setUserPasswordHash("nobody", hash: "scrypt$c") == false)
            #expect(try await store.userPasswordHash(named: "nobody") == nil)
            #expect(try await store.setUserPasswordHash("ivan", hash: "scrypt$d"))
            #expect(try await store.setUserPasswordHash("ivan", hash: nil))
            #expect(try await store.userPasswordHash(named: "ivan") == nil)
            // Roles change; the key keeps working and now carries the new role.
            #expect(try await store.setUserRole("rita", role: .administrator))
            #expect(try await store.user(apiKeySHA256: "k3")?.role == .administrator)
            #expect(try await store.setUserRole("nobody", role: .reader) == false)
            #expect(try await store.removeUser("rita"))
            #expect(try await store.removeUser("rita") == false)
            #expect(try await store.user(apiKeySHA256: "k3") == nil)
            #expect(try await store.users().map(\.name) == ["ivan"])
            #expect(UserRecord(name: "x", role: .reader, apiKeySHA256: "", createdAt: 0, expiresAt: 10).isExpired(at: 10))
            #expect(!UserRecord(name: "x", role: .reader, apiKeySHA256: "", createdAt: 0, expiresAt: 10).isExpired(at: 9.9))
        }
    }

    @Test(arguments: Engine.allCases) func reopeningKeepsData(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            do {
                let store = try await database.migrated()
                try await store.addClient(ClientRecord(clientId: "C.1", enrolledAt: 1))
                try await store.addFlow(FlowRecord(flowId: "F.1", clientId: "C.1", request: CollectionRequest(artifacts: ["A"]), creator: "alice", createdAt: 1))
                _ = try await store.ingest(IngestBatch(clientId: "C.1", flowId: "F.1", seq: 1, payload: .rows(artifact: "A", source: "", rows: ["{\"x\":1}"])))
            }
            let reopened = try await database.migrated()
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
