import CSQLite3
import Foundation
import PrivateFiles

/// The embedded `FleetStore` engine: one SQLite file in WAL mode.
///
/// One connection serves every write under a lock, so writes from many tasks run one at a time;
/// each call is one transaction (writes take the write lock at BEGIN). Reads run on a pool of
/// read-only connections (`SQLiteReaderPool`) so that a big read neither stalls writers nor other
/// readers. Other processes may open the same file: the busy timeout makes them wait for each other.
/// Call `migrate()` before anything else.
public final class SQLiteFleetStore: FleetStore, @unchecked Sendable {
    /// The database file.
    public let path: String
    private let lock = NSLock()
    private let connection: SQLiteConnection
    /// Readers on the same file (none for an in-memory database, which one connection owns).
    let readers: SQLiteReaderPool?
    private let migrations: [SchemaMigration]
    let encoder: JSONEncoder
    let decoder = JSONDecoder()

    /// Opens the database at `path`, creating it (mode 0600) when missing; sets WAL mode, a busy
    /// timeout and foreign keys. The schema is created or upgraded by `migrate()`. The path
    /// `:memory:` opens a private in-memory database (for tests).
    public convenience init(path: String) throws {
        try self.init(path: path, migrations: FleetSchema.migrations)
    }

    /// Opens the database with a given list of migrations (tests use it to add steps).
    init(path: String, migrations: [SchemaMigration], busyTimeoutMilliseconds: Int32 = 10_000, readers: Int = 4) throws {
        self.path = path
        self.migrations = migrations
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            let inMemory = path.isEmpty || path == ":memory:"
            if !inMemory { try Self.createPrivateFile(path) }
            connection = try SQLiteConnection(path: path)
            try connection.setBusyTimeout(busyTimeoutMilliseconds)
            try connection.execute("PRAGMA journal_mode = WAL")
            // FULL: with WAL, NORMAL may lose the last commits on a power loss — batches the server
            // had already acknowledged, which the agents then delete. FULL syncs the WAL at every
            // commit; group commit makes that one sync per few thousand batches (bench/README.md).
            try connection.execute("PRAGMA synchronous = FULL")
            try connection.execute("PRAGMA foreign_keys = ON")
            self.readers = inMemory ? nil : try SQLiteReaderPool(path: path, size: readers, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        } catch let error as SQLiteError {
            throw StoreError("open \(path): \(error.message)")
        }
    }

    deinit {
        connection.close()
    }

    /// Creates the file readable and writable by its owner only (SQLite gives its -wal and -shm
    /// files the same mode), and tightens the mode of an existing file.
    private static func createPrivateFile(_ path: String) throws {
        let files = FileManager.default
        if !files.fileExists(atPath: path) {
            do {
                close(try PrivateFile.create(path))
            } catch {
                throw StoreError("open \(path): cannot create the database file: \(error)")
            }
        }
        do {
            try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch {
            throw StoreError("open \(path): cannot set the file's permissions: \(error.localizedDescription)")
        }
    }

    // MARK: running calls

    /// Runs `body` under the lock; SQLite errors become `StoreError`s naming `operation`.
    @discardableResult
    func run<T>(_ operation: String, _ body: (SQLiteConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try Self.named(operation) { try body(connection) }
    }

    /// `body`'s SQLite errors as `StoreError`s naming `operation`.
    static func named<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            // Constraint, type mismatch, too big, bad parameter: the data, not the database.
            throw StoreError("\(operation): \(error.message)", refusesData: [18, 19, 20, 25].contains(error.code & 0xFF))
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("\(operation): \(error)")
        }
    }

    /// Runs `body` in a write transaction.
    @discardableResult
    func write<T>(_ operation: String, _ body: (SQLiteConnection) throws -> T) throws -> T {
        try run(operation) { db in try db.transaction { try body(db) } }
    }

    /// Runs `body` in a read transaction (one consistent snapshot for several statements), on a free
    /// reader, or on the writer's connection when every reader is busy.
    @discardableResult
    func read<T>(_ operation: String, _ body: (SQLiteConnection) throws -> T) throws -> T {
        if let readers, let reader = readers.tryTake() {
            defer { readers.giveBack(reader) }
            return try Self.named(operation) { try reader.transaction(immediate: false) { try body(reader) } }
        }
        return try run(operation) { db in try db.transaction(immediate: false) { try body(db) } }
    }

    func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    func decode<T: Decodable>(_ type: T.Type, _ text: String, _ what: String) throws -> T {
        do {
            return try decoder.decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError("stored \(what) is not valid JSON: \(error)")
        }
    }

    // MARK: schema

    public func migrate() async throws {
        try run("migrate") { db in
            try db.execute(FleetSchema.bootstrap)
            for migration in migrations {
                try db.transaction {
                    // Checked inside the transaction: another process may have applied it meanwhile.
                    let applied = try db.queryFirst(
                        "SELECT 1 FROM schema_migrations WHERE version = ?", [migration.version]) { _ in true } ?? false
                    if applied { return }
                    for statement in migration.statements(for: .sqlite) {
                        do {
                            try db.execute(statement)
                        } catch let error as SQLiteError {
                            throw StoreError("migrate to version \(migration.version) (\(migration.name)): \(error.message)")
                        }
                    }
                    try db.run(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        migration.version, migration.name, Date().timeIntervalSince1970)
                }
            }
        }
    }

    public func schemaVersion() async throws -> Int {
        try run("schemaVersion") { db in
            try db.execute(FleetSchema.bootstrap)
            return try db.queryFirst("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") { $0.int(0) } ?? 0
        }
    }

    // MARK: users

    public func addUser(_ user: UserRecord) async throws {
        try write("addUser \(user.name)") { db in
            try db.run(
                "INSERT INTO users (name, role, api_key_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                user.name, user.role.rawValue, user.apiKeySHA256, user.createdAt, user.expiresAt)
        }
    }

    public func user(apiKeySHA256: String) async throws -> UserRecord? {
        try read("user") { db in
            try db.queryFirst("SELECT \(Self.userColumns) FROM users WHERE api_key_sha256 = ?", [apiKeySHA256], userRecord)
        }
    }

    public func user(named name: String) async throws -> UserRecord? {
        try read("user \(name)") { db in
            try db.queryFirst("SELECT \(Self.userColumns) FROM users WHERE name = ?", [name], userRecord)
        }
    }

    public func users() async throws -> [UserRecord] {
        try read("users") { db in try db.query("SELECT \(Self.userColumns) FROM users ORDER BY name", [], userRecord) }
    }

    public func removeUser(_ name: String) async throws -> Bool {
        try write("removeUser \(name)") { db in try db.run("DELETE FROM users WHERE name = ?", name) > 0 }
    }

    public func replaceUserKey(_ name: String, apiKeySHA256: String, expiresAt: Double?) async throws -> Bool {
        try write("replaceUserKey \(name)") { db in
            try db.run("UPDATE users SET api_key_sha256 = ?, expires_at = ? WHERE name = ?", apiKeySHA256, expiresAt, name) > 0
        }
    }

    public func setUserPasswordHash(_ name: String, hash: String?) async throws -> Bool {
        try write("setUserPasswordHash \(name)") { db in try db.run("UPDATE users SET password_hash = ? WHERE name = ?", hash, name) > 0 }
    }

    public func setUserRole(_ name: String, role: Role) async throws -> Bool {
        try write("setUserRole \(name)") { db in try db.run("UPDATE users SET role = ? WHERE name = ?", role.rawValue, name) > 0 }
    }

    public func userPasswordHash(named name: String) async throws -> String? {
        try read("userPasswordHash \(name)") { db in
            try db.queryFirst("SELECT password_hash FROM users WHERE name = ? AND password_hash IS NOT NULL", [name]) { $0.text(0) }
        }
    }

    private static let userColumns = "name, role, api_key_sha256, created_at, expires_at"

    private func userRecord(_ row: SQLiteStatement) throws -> UserRecord {
        guard let role = Role(rawValue: row.text(1)) else { throw StoreError("user \(row.text(0)): unknown role \(row.text(1))") }
        return UserRecord(name: row.text(0), role: role, apiKeySHA256: row.text(2), createdAt: row.double(3), expiresAt: row.optionalDouble(4))
    }

    // MARK: clients

    public func addClient(_ client: ClientRecord) async throws {
        try write("addClient \(client.clientId)") { db in
            try db.run(
                """
                INSERT INTO clients (client_id, hostname, fqdn, os, kernel, ips, enrolled_at, last_seen, revoked, certificate_serial)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                client.clientId, client.hostname, client.fqdn, client.os, client.kernel, try json(client.ips),
                client.enrolledAt, client.lastSeen, client.revoked, client.certificateSerial)
            for label in Set(client.labels) where !label.isEmpty {
                try db.run("INSERT INTO client_labels (client_id, label) VALUES (?, ?)", client.clientId, label)
            }
        }
    }

    public func client(_ clientId: String) async throws -> ClientRecord? {
        try read("client \(clientId)") { db in
            guard var client = try db.queryFirst("SELECT \(Self.clientColumns) FROM clients WHERE client_id = ?", [clientId], clientRecord) else {
                return nil
            }
            client.labels = try labels(db, clientId)
            return client
        }
    }

    public func clients() async throws -> [ClientRecord] {
        try read("clients") { db in
            var labels: [String: [String]] = [:]
            for (clientId, label) in try db.query("SELECT client_id, label FROM client_labels", [], { ($0.text(0), $0.text(1)) }) {
                labels[clientId, default: []].append(label)
            }
            return try db.query("SELECT \(Self.clientColumns) FROM clients ORDER BY client_id", []) { row in
                var client = try clientRecord(row)
                client.labels = (labels[client.clientId] ?? []).sorted()
                return client
            }
        }
    }

    public func setClientFacts(_ clientId: String, _ facts: ClientFacts) async throws {
        try write("setClientFacts \(clientId)") { db in
            let changed = try db.run(
                "UPDATE clients SET hostname = ?, fqdn = ?, os = ?, kernel = ?, ips = ? WHERE client_id = ?",
                facts.hostname, facts.fqdn, facts.os, facts.kernel, try json(facts.ips), clientId)
            if changed == 0 { throw StoreError("setClientFacts: no client \(clientId)") }
        }
    }

    public func touchClient(_ clientId: String, lastSeen: Double) async throws {
        try write("touchClient \(clientId)") { db in
            let changed = try db.run("UPDATE clients SET last_seen = ? WHERE client_id = ?", lastSeen, clientId)
            if changed == 0 { throw StoreError("touchClient: no client \(clientId)") }
        }
    }

    @discardableResult
    public func labelClient(_ clientId: String, add: [String], remove: [String]) async throws -> [String] {
        try write("labelClient \(clientId)") { db in
            guard try db.queryFirst("SELECT 1 FROM clients WHERE client_id = ?", [clientId], { _ in true }) ?? false else {
                throw StoreError("labelClient: no client \(clientId)")
            }
            for label in add where !label.isEmpty {
                try db.run("INSERT INTO client_labels (client_id, label) VALUES (?, ?) ON CONFLICT DO NOTHING", clientId, label)
            }
            for label in remove {
                try db.run("DELETE FROM client_labels WHERE client_id = ? AND label = ?", clientId, label)
            }
            return try labels(db, clientId)
        }
    }

    public func revokeClient(_ clientId: String) async throws {
        try write("revokeClient \(clientId)") { db in
            let changed = try db.run("UPDATE clients SET revoked = 1 WHERE client_id = ?", clientId)
            if changed == 0 { throw StoreError("revokeClient: no client \(clientId)") }
        }
    }

    private static let clientColumns =
        "client_id, hostname, fqdn, os, kernel, ips, enrolled_at, last_seen, revoked, certificate_serial"

    private func clientRecord(_ row: SQLiteStatement) throws -> ClientRecord {
        var client = ClientRecord(clientId: row.text(0), enrolledAt: row.double(6), certificateSerial: row.text(9))
        client.hostname = row.text(1)
        client.fqdn = row.text(2)
        client.os = row.text(3)
        client.kernel = row.text(4)
        client.ips = try decode([String].self, row.text(5), "IP list of client \(client.clientId)")
        client.lastSeen = row.double(7)
        client.revoked = row.bool(8)
        return client
    }

    private func labels(_ db: SQLiteConnection, _ clientId: String) throws -> [String] {
        try db.query("SELECT label FROM client_labels WHERE client_id = ?", [clientId]) { $0.text(0) }.sorted()
    }

    // MARK: hunts

    public func addHunt(_ hunt: HuntRecord) async throws {
        try write("addHunt \(hunt.huntId)") { db in
            try db.run(
                "INSERT INTO hunts (\(Self.huntColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                bindings: try huntValues(hunt))
        }
    }

    public func hunt(_ huntId: String) async throws -> HuntRecord? {
        try read("hunt \(huntId)") { db in
            try db.queryFirst("SELECT \(Self.huntColumns) FROM hunts WHERE hunt_id = ?", [huntId], huntRecord)
        }
    }

    public func hunts() async throws -> [HuntRecord] {
        try read("hunts") { db in
            try db.query("SELECT \(Self.huntColumns) FROM hunts ORDER BY created_at DESC, hunt_id DESC", [], huntRecord)
        }
    }

    public func updateHunt(_ hunt: HuntRecord) async throws {
        if try !replaceHunt(hunt, ifRound: nil) { throw StoreError("updateHunt: no hunt \(hunt.huntId)") }
    }

    /// Replaces the stored hunt, only if its round is still `ifRound` when given; false if no row changed.
    func replaceHunt(_ hunt: HuntRecord, ifRound: Int?) throws -> Bool {
        try write("updateHunt \(hunt.huntId)") { db in
            let assignments = Self.huntColumns.split(separator: ",").dropFirst()
                .map { "\($0.trimmingCharacters(in: .whitespaces)) = ?" }.joined(separator: ", ")
            var values = try huntValues(hunt)
            values.append(values.removeFirst())
            var condition = "hunt_id = ?"
            if let ifRound {
                condition += " AND round = ?"
                values.append(ifRound)
            }
            return try db.run("UPDATE hunts SET \(assignments) WHERE \(condition)", bindings: values) > 0
        }
    }

    private static let huntColumns = """
        hunt_id, description, request, conditions, state, creator, created_at, started_at, expires_at, \
        client_limit, rate_per_minute, schedule, round, round_started_at, next_round_at
        """

    private func huntValues(_ hunt: HuntRecord) throws -> [SQLiteBindable?] {
        [
            hunt.huntId, hunt.description, try json(hunt.request), try json(hunt.conditions), hunt.state.rawValue,
            hunt.creator, hunt.createdAt, hunt.startedAt, hunt.expiresAt, hunt.clientLimit, hunt.ratePerMinute,
            hunt.schedule, hunt.round, hunt.roundStartedAt, hunt.nextRoundAt,
        ]
    }

    private func huntRecord(_ row: SQLiteStatement) throws -> HuntRecord {
        let huntId = row.text(0)
        guard let state = HuntState(rawValue: row.text(4)) else { throw StoreError("hunt \(huntId): unknown state \(row.text(4))") }
        var hunt = HuntRecord(
            huntId: huntId, request: try decode(CollectionRequest.self, row.text(2), "request of hunt \(huntId)"),
            conditions: try decode(HuntConditions.self, row.text(3), "conditions of hunt \(huntId)"),
            state: state, creator: row.text(5), createdAt: row.double(6), expiresAt: row.double(8))
        hunt.description = row.text(1)
        hunt.startedAt = row.optionalDouble(7)
        hunt.clientLimit = row.optionalInt(9)
        hunt.ratePerMinute = row.optionalInt(10)
        hunt.schedule = row.optionalText(11)
        hunt.round = row.int(12)
        hunt.roundStartedAt = row.optionalDouble(13)
        hunt.nextRoundAt = row.optionalDouble(14)
        return hunt
    }

    // MARK: audit

    public func audit(_ entry: AuditEntry) async throws {
        let entry = entry.bounded()
        try write("audit") { db in
            try db.run(
                "INSERT INTO audit (logged_at, user_name, action, target, details, remote) VALUES (?, ?, ?, ?, ?, ?)",
                entry.time, entry.user, entry.action, entry.target, entry.details, entry.remote)
        }
    }

    /// Newest first by (time, rowid); a page after `before` starts below that entry's place, walking
    /// the (logged_at, rowid) index.
    public func auditLog(limit: Int, before: Int64?) async throws -> [AuditEntry] {
        guard limit > 0 else { return [] }
        var condition = ""
        var values: [SQLiteBindable?] = []
        if let before {
            condition = "WHERE (logged_at, rowid) < (SELECT logged_at, rowid FROM audit WHERE rowid = ?)"
            values.append(before)
        }
        values.append(limit)
        return try read("auditLog") { db in
            try db.query(
                """
                SELECT rowid, logged_at, user_name, action, target, details, remote FROM audit \(condition)
                ORDER BY logged_at DESC, rowid DESC LIMIT ?
                """, values
            ) { row in
                AuditEntry(
                    id: Int64(row.int(0)), time: row.double(1), user: row.text(2), action: row.text(3), target: row.text(4),
                    details: row.text(5), remote: row.text(6))
            }
        }
    }
}
