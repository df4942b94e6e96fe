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
            // Acknowledged batches must survive a power loss: every commit is synced (2 = FULL).
            let synchronous = try store.run("test") { db in try db.queryFirst("PRAGMA synchronous", [], { $0.int(0) }) }
            #expect(synchronous == 2)
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

}
