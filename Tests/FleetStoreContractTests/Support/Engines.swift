import Foundation
import FleetTestSupport
import Testing

@testable import FleetCore
@testable import FleetPostgres

/// The datastore engines every contract test runs against.
enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgresql

    var testDescription: String { rawValue }
}

/// A fresh, empty database of one engine for one test. `open` connects a store to it (several
/// stores on one database play several server processes); they are closed after the test.
final class TestDatabase: @unchecked Sendable {
    let engine: Engine
    /// The SQLite file's path or the PostgreSQL database's URL.
    let location: String
    private let lock = NSLock()
    private var opened: [PostgresFleetStore] = []

    init(engine: Engine, location: String) {
        self.engine = engine
        self.location = location
    }

    /// A store on this database (not migrated).
    func open(migrations: [SchemaMigration] = FleetSchema.migrations, poolSize: Int = 8) throws -> any FleetStore {
        switch engine {
        case .sqlite:
            return try SQLiteFleetStore(path: location, migrations: migrations)
        case .postgresql:
            let store = try PostgresFleetStore(url: location, poolSize: poolSize, migrations: migrations)
            lock.withLock { opened.append(store) }
            return store
        }
    }

    /// A migrated store on this database.
    func migrated() async throws -> any FleetStore {
        let store = try open()
        try await store.migrate()
        return store
    }

    func closeAll() async {
        for store in takeOpened() { await store.shutdown() }
    }

    private func takeOpened() -> [PostgresFleetStore] {
        lock.withLock {
            defer { opened = [] }
            return opened
        }
    }
}

/// Runs `body` with a fresh database of `engine`, removed afterwards. PostgreSQL tests are
/// cancelled (skipped) with a message when no PostgreSQL can be had and none is required.
func withDatabase<T>(_ engine: Engine, _ body: (TestDatabase) async throws -> T) async throws -> T {
    switch engine {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleetstore-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try await body(TestDatabase(engine: engine, location: directory + "/fleet.db"))
    case .postgresql:
        guard let server = try await TestPostgres.shared() else {
            try Test.cancel("PostgreSQL is not installed (no initdb/pg_ctl, no QUARRY_TEST_POSTGRES_URL): skipped")
        }
        let (name, url) = try await server.createDatabase()
        let database = TestDatabase(engine: engine, location: url)
        do {
            let result = try await body(database)
            await database.closeAll()
            await server.dropDatabase(name)
            return result
        } catch {
            await database.closeAll()
            await server.dropDatabase(name)
            throw error
        }
    }
}

/// Runs `body` with a migrated store on a fresh database of `engine`.
func withStore<T>(_ engine: Engine, _ body: (any FleetStore) async throws -> T) async throws -> T {
    try await withDatabase(engine) { database in try await body(try await database.migrated()) }
}

let request = CollectionRequest(artifacts: ["Linux.Sys.Users"])

/// A rows payload whose rows are `{"n":VALUE}`.
func rows(_ artifact: String, _ source: String, _ values: [Int]) -> IngestBatch.Payload {
    .rows(artifact: artifact, source: source, rows: values.map { "{\"n\":\($0)}" })
}

/// Seconds of a duration, as a Double.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
