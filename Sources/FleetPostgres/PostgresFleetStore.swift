import FleetCore
import Foundation
import PostgresNIO

/// The `FleetStore` engine for several server processes ("frontends") sharing one PostgreSQL database.
///
/// Same schema (`FleetSchema.migrations`), same rules and same results as `SQLiteFleetStore`. Each
/// call is one transaction on a connection leased from a pool (`PostgresClient`, at most `poolSize`
/// connections), so calls run in parallel. Writers that may collide — ingestion from several
/// frontends, concurrent migrations — lock what they change first, in a fixed order; a transaction
/// that PostgreSQL still aborts as a deadlock or serialization failure is retried a few times.
///
/// The URL forms are those of `PostgresURL`: `postgres://user[:password]@host[:port]/database`, or for
/// a Unix socket `postgres:///database?host=/path/to/socketdir&user=NAME`. The pool runs in a task
/// the store starts; call `shutdown()` when done (it closes the connections). Call `migrate()` before
/// anything else.
public final class PostgresFleetStore: FleetStore {
    /// Where the store connects (with the password, if any).
    public let location: PostgresURL
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let migrations: [SchemaMigration]

    /// Key of the advisory lock that serialises migrations across processes ("QuarryFM").
    static let migrationLockKey: Int64 = 0x5175_6172_7279_464D
    /// How many times a transaction that PostgreSQL aborted as a deadlock or serialization failure runs.
    static let maxAttempts = 6

    /// Connects lazily to the database at `url` (see the type's documentation for its forms) with a
    /// pool of at most `poolSize` connections. Throws a `StoreError` for a malformed URL; connection
    /// failures surface in the first calls.
    public convenience init(url: String, poolSize: Int = 8) throws {
        try self.init(url: url, poolSize: poolSize, migrations: FleetSchema.migrations)
    }

    /// Connects with a given list of migrations (tests use it to add steps).
    init(url: String, poolSize: Int, migrations: [SchemaMigration]) throws {
        location = try PostgresURL(url)
        self.migrations = migrations
        client = PostgresClient(configuration: location.clientConfiguration(poolSize: poolSize))
        runner = Task { [client] in await client.run() }
    }

    deinit {
        runner.cancel()
    }

    /// Closes the pool's connections and waits for its task to end; later calls fail.
    public func shutdown() async {
        runner.cancel()
        await runner.value
    }

    // MARK: running calls

    /// Runs one statement outside an explicit transaction and returns its rows, mapped.
    func fetch<T>(_ operation: String, _ query: PostgresQuery, _ map: (PostgresRow) throws -> T) async throws -> [T] {
        do {
            return try await client.query(query).collect().map(map)
        } catch {
            throw Self.storeError(operation, error)
        }
    }

    /// Runs `body` in a transaction (READ COMMITTED); retries it when PostgreSQL aborts it as a
    /// deadlock or serialization failure. Errors become `StoreError`s naming `operation`.
    func transaction<T: Sendable>(_ operation: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await client.withConnection { connection in
                    try await connection.perform("BEGIN")
                    do {
                        let value = try await body(connection)
                        try await connection.perform("COMMIT")
                        return value
                    } catch {
                        _ = try? await connection.perform("ROLLBACK")
                        throw error
                    }
                }
            } catch let error as PSQLError where Self.isTransient(error) && attempt < Self.maxAttempts {
                attempt += 1
                try? await Task.sleep(for: .milliseconds(Int.random(in: 2...10) * attempt))
            } catch {
                throw Self.storeError(operation, error)
            }
        }
    }

    /// Deadlocks and serialization failures: the transaction did nothing and may simply run again.
    static func isTransient(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// `error` as a `StoreError` saying what failed; a server error gives PostgreSQL's own message.
    static func storeError(_ operation: String, _ error: any Error) -> StoreError {
        switch error {
        case let error as StoreError:
            return error
        case let error as PSQLError:
            if let info = error.serverInfo, let message = info[.message] {
                var text = "\(operation): \(message)"
                if let detail = info[.detail] { text += " (\(detail))" }
                if let state = info[.sqlState] { text += " [SQLSTATE \(state)]" }
                // Data exceptions (22), integrity constraints (23), program limits (54): the data.
                let state = info[.sqlState] ?? ""
                return StoreError(text, refusesData: state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("54"))
            }
            // Not from the server (connection refused, pool closed…): its description hides the
            // details, the reflection shows them (clipped: it may quote a large query).
            return StoreError("\(operation): \(String(String(reflecting: error).prefix(1_000)))")
        case let error as PostgresDecodingError:
            return StoreError("\(operation): cannot decode column \(error.columnName) (\(error.code)) from \(error.postgresType)")
        default:
            return StoreError("\(operation): \(String(String(reflecting: error).prefix(1_000)))")
        }
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, _ what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError("stored \(what) is not valid JSON: \(error)")
        }
    }

    // MARK: schema

    /// Applies the missing migrations, each in its own transaction that first takes an advisory lock,
    /// so that frontends starting together apply each step once, one after the other.
    public func migrate() async throws {
        try await transaction("migrate") { connection in
            try await connection.perform("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))")
            try await connection.perform(PostgresQuery(unsafeSQL: FleetSchema.bootstrap))
        }
        for migration in migrations {
            try await transaction("migrate to version \(migration.version) (\(migration.name))") { connection in
                try await connection.perform("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))")
                // Checked under the lock: another process may have applied it meanwhile.
                let applied = try await connection.fetchAll("SELECT 1 FROM schema_migrations WHERE version = \(migration.version)")
                if !applied.isEmpty { return }
                for statement in migration.statements(for: .postgresql) {
                    try await connection.perform(PostgresQuery(unsafeSQL: statement))
                }
                try await connection.perform(
                    """
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(migration.version), \(migration.name), \(Date().timeIntervalSince1970))
                    """)
            }
        }
    }

    public func schemaVersion() async throws -> Int {
        try await transaction("schemaVersion") { connection in
            let exists = try await connection.fetchAll("SELECT to_regclass('schema_migrations') IS NOT NULL")
            guard try exists.first?.decode(Bool.self) == true else { return 0 }
            let rows = try await connection.fetchAll("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations")
            return try rows.first?.decode(Int.self) ?? 0
        }
    }

    // MARK: users

    public func addUser(_ user: UserRecord) async throws {
        try await transaction("addUser \(user.name)") { connection in
            try await connection.perform(
                """
                INSERT INTO users (name, role, api_key_sha256, created_at, expires_at)
                VALUES (\(user.name), \(user.role.rawValue), \(user.apiKeySHA256), \(user.createdAt), \(user.expiresAt))
                """)
        }
    }

    public func user(apiKeySHA256: String) async throws -> UserRecord? {
        try await fetch("user", "SELECT \(unescaped: Self.userColumns) FROM users WHERE api_key_sha256 = \(apiKeySHA256)", Self.userRecord).first
    }

    public func user(named name: String) async throws -> UserRecord? {
        try await fetch("user \(name)", "SELECT \(unescaped: Self.userColumns) FROM users WHERE name = \(name)", Self.userRecord).first
    }

    public func users() async throws -> [UserRecord] {
        try await fetch("users", "SELECT \(unescaped: Self.userColumns) FROM users ORDER BY name COLLATE \"C\"", Self.userRecord)
    }

    public func removeUser(_ name: String) async throws -> Bool {
        try await transaction("removeUser \(name)") { connection in
            try await !connection.fetchAll("DELETE FROM users WHERE name = \(name) RETURNING 1").isEmpty
        }
    }

    public func replaceUserKey(_ name: String, apiKeySHA256: String, expiresAt: Double?) async throws -> Bool {
        try await transaction("replaceUserKey \(name)") { connection in
            try await !connection.fetchAll(
                "UPDATE users SET api_key_sha256 = \(apiKeySHA256), expires_at = \(expiresAt) WHERE name = \(name) RETURNING 1"
            ).isEmpty
        }
    }

    public func setUserPasswordHash(_ name: String, hash: String?) async throws -> Bool {
        try await transaction("setUserPasswordHash \(name)") { connection in
            try await !connection.fetchAll("UPDATE users SET password_hash = \(hash) WHERE name = \(name) RETURNING 1").isEmpty
        }
    }

    public func setUserRole(_ name: String, role: Role) async throws -> Bool {
        try await transaction("setUserRole \(name)") { connection in
            try await !connection.fetchAll("UPDATE users SET role = \(role.rawValue) WHERE name = \(name) RETURNING 1").isEmpty
        }
    }

    public func userPasswordHash(named name: String) async throws -> String? {
        try await fetch("userPasswordHash \(name)", "SELECT password_hash FROM users WHERE name = \(name) AND password_hash IS NOT NULL") { row in
            try row.decode(String.self)
        }.first
    }

    private static let userColumns = "name, role, api_key_sha256, created_at, expires_at"

    private static func userRecord(_ row: PostgresRow) throws -> UserRecord {
        let (name, role, key, createdAt, expiresAt) = try row.decode((String, String, String, Double, Double?).self)
        guard let parsed = Role(rawValue: role) else { throw StoreError("user \(name): unknown role \(role)") }
        return UserRecord(name: name, role: parsed, apiKeySHA256: key, createdAt: createdAt, expiresAt: expiresAt)
    }
}

extension PostgresConnection {
    /// Runs a statement and reads every row it returns.
    func fetchAll(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }

    /// Runs a statement, reading (and dropping) whatever rows it returns.
    func perform(_ query: PostgresQuery) async throws {
        _ = try await self.query(query, logger: logger).collect()
    }
}
