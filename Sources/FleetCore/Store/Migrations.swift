// The fleet datastore's schema, as data: an ordered list of migrations shared by every SQL engine.
//
// Portability rules (the PostgreSQL engine runs these same statements):
// - types are TEXT, INTEGER, BIGINT and DOUBLE PRECISION only; booleans are INTEGER 0/1;
//   times are DOUBLE PRECISION seconds since 1970; lists and nested records are JSON text;
// - no engine-specific syntax (no AUTOINCREMENT/SERIAL, no STRICT, no WITHOUT ROWID);
// - no column named after a reserved word (`user`, `rows`…);
// - primary-key columns are declared NOT NULL (SQLite would otherwise allow NULL in them, and its
//   planner only trusts NOT NULL unique keys to skip sorting across joins).
// - never edit a released migration: append a new one;
// - a step that cannot be written portably gives its engine-specific statements in `variants`
//   (keep those rare: the point is one schema).

/// The SQL engines the fleet datastore runs on.
public enum SQLDialect: String, Sendable, CaseIterable {
    case sqlite, postgresql
}

/// One step of the schema: applied once, in a transaction, in version order.
public struct SchemaMigration: Sendable, Equatable {
    /// 1 for the initial schema, then 2, 3, … without gaps.
    public var version: Int
    public var name: String
    /// Statements run in order; each is one SQL statement without a trailing semicolon.
    public var statements: [String]
    /// Statements that replace `statements` on one engine (for what no portable SQL can say).
    public var variants: [SQLDialect: [String]]

    public init(version: Int, name: String, statements: [String], variants: [SQLDialect: [String]] = [:]) {
        self.version = version
        self.name = name
        self.statements = statements
        self.variants = variants
    }

    /// The statements this step runs on `dialect`.
    public func statements(for dialect: SQLDialect) -> [String] {
        variants[dialect] ?? statements
    }
}

/// The schema of the fleet datastore and the bookkeeping table that records which migrations ran.
public enum FleetSchema {
    /// Creates the table that records applied migrations; run before reading the version.
    public static let bootstrap = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT NOT NULL PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at DOUBLE PRECISION NOT NULL
        )
        """

    /// The newest schema version.
    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Every migration, oldest first.
    public static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, name: "initial schema", statements: initialSchema),
        // The audit log lists entries of the same second newest first, so it needs their insertion
        // order: SQLite's rowid gives it (and `audit_by_time` already ends with it); PostgreSQL has no
        // such column, so there the entries get one from an identity sequence.
        SchemaMigration(
            version: 2, name: "audit insertion order", statements: [],
            variants: [
                .postgresql: [
                    "ALTER TABLE audit ADD COLUMN entry_id BIGINT GENERATED ALWAYS AS IDENTITY",
                    "CREATE INDEX audit_by_time_and_entry ON audit (logged_at, entry_id)",
                ]
            ]),
        // Several frontends fan hunts out at once: at most one flow per client and hunt round, kept
        // by the database whatever the frontends do; and the delivery poll reads new scheduled flows.
        SchemaMigration(
            version: 3, name: "one flow per hunt round and client",
            statements: [
                "CREATE UNIQUE INDEX flows_one_per_hunt_round ON flows (hunt_id, round, client_id) WHERE hunt_id IS NOT NULL",
                "CREATE INDEX flows_by_state_and_creation ON flows (state, created_at)",
            ]),
        // API keys may expire; users are looked up by name to remove them or replace their key.
        SchemaMigration(
            version: 4, name: "api key expiry",
            statements: ["ALTER TABLE users ADD COLUMN expires_at DOUBLE PRECISION"]),
        // The web console's sign-in: a slow salted hash of the user's password (never the password).
        SchemaMigration(
            version: 5, name: "console passwords",
            statements: ["ALTER TABLE users ADD COLUMN password_hash TEXT"]),
        // Free-form key/value notes that server VQL reads and writes: the server's own
        // (owner "server") and each client's (owner = client ID).
        SchemaMigration(
            version: 6, name: "server and client metadata",
            statements: [
                """
                CREATE TABLE metadata (
                    owner TEXT NOT NULL,
                    name TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (owner, name)
                )
                """
            ]),
        // Client event monitoring: the table of event artifacts agents run (label '' = every
        // client), the event rows they send (per client, artifact and day; read by artifact and
        // time, or client, artifact and time; deleted by day), and the batches stored (at most once).
        SchemaMigration(
            version: 7, name: "client event monitoring",
            statements: [
                """
                CREATE TABLE client_monitoring (
                    artifact TEXT NOT NULL,
                    label TEXT NOT NULL,
                    parameters TEXT NOT NULL,
                    creator TEXT NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (artifact, label)
                )
                """,
                """
                CREATE TABLE event_batches (
                    client_id TEXT NOT NULL,
                    artifact TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    day BIGINT NOT NULL,
                    PRIMARY KEY (client_id, artifact, seq)
                )
                """,
                "CREATE INDEX event_batches_by_day ON event_batches (day)",
                """
                CREATE TABLE events (
                    client_id TEXT NOT NULL,
                    artifact TEXT NOT NULL,
                    source TEXT NOT NULL,
                    day BIGINT NOT NULL,
                    received_at DOUBLE PRECISION NOT NULL,
                    seq BIGINT NOT NULL,
                    row_index BIGINT NOT NULL,
                    json TEXT NOT NULL,
                    PRIMARY KEY (client_id, artifact, seq, row_index)
                )
                """,
                "CREATE INDEX events_by_artifact_time ON events (artifact, received_at, client_id, seq, row_index)",
                "CREATE INDEX events_by_client_time ON events (client_id, artifact, received_at, seq, row_index)",
                "CREATE INDEX events_by_day ON events (day)",
            ]),
        // Alerts raised by detections, listed newest first and by client; the id orders alerts
        // of the same second and pages the list.
        SchemaMigration(
            version: 8, name: "alerts", statements: [],
            variants: [
                .sqlite: [alertsTable("alert_id INTEGER PRIMARY KEY AUTOINCREMENT")] + alertIndexes,
                .postgresql: [alertsTable("alert_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")] + alertIndexes,
            ]),
    ]

    static func alertsTable(_ idColumn: String) -> String {
        """
        CREATE TABLE alerts (
            \(idColumn),
            raised_at DOUBLE PRECISION NOT NULL,
            name TEXT NOT NULL,
            severity TEXT NOT NULL,
            severity_rank INTEGER NOT NULL,
            client_id TEXT NOT NULL,
            flow_id TEXT NOT NULL,
            artifact TEXT NOT NULL,
            details TEXT NOT NULL,
            acknowledged_by TEXT,
            acknowledged_at DOUBLE PRECISION
        )
        """
    }

    static let alertIndexes = [
        "CREATE INDEX alerts_by_time ON alerts (raised_at, alert_id)",
        "CREATE INDEX alerts_by_client ON alerts (client_id, raised_at)",
    ]

    static let initialSchema: [String] = [
        """
        CREATE TABLE users (
            name TEXT NOT NULL PRIMARY KEY,
            role TEXT NOT NULL,
            api_key_sha256 TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL
        )
        """,
        """
        CREATE TABLE clients (
            client_id TEXT NOT NULL PRIMARY KEY,
            hostname TEXT NOT NULL DEFAULT '',
            fqdn TEXT NOT NULL DEFAULT '',
            os TEXT NOT NULL DEFAULT '',
            kernel TEXT NOT NULL DEFAULT '',
            ips TEXT NOT NULL DEFAULT '[]',
            enrolled_at DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0,
            certificate_serial TEXT NOT NULL DEFAULT ''
        )
        """,
        """
        CREATE TABLE client_labels (
            client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            PRIMARY KEY (client_id, label)
        )
        """,
        "CREATE INDEX client_labels_by_label ON client_labels (label)",
        """
        CREATE TABLE hunts (
            hunt_id TEXT NOT NULL PRIMARY KEY,
            description TEXT NOT NULL DEFAULT '',
            request TEXT NOT NULL,
            conditions TEXT NOT NULL,
            state TEXT NOT NULL,
            creator TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            expires_at DOUBLE PRECISION NOT NULL,
            client_limit BIGINT,
            rate_per_minute BIGINT,
            schedule TEXT,
            round BIGINT NOT NULL DEFAULT 0,
            round_started_at DOUBLE PRECISION,
            next_round_at DOUBLE PRECISION
        )
        """,
        "CREATE INDEX hunts_by_creation ON hunts (created_at, hunt_id)",
        // A flow's client and hunt are not foreign keys: results of a flow outlive the client's record.
        """
        CREATE TABLE flows (
            flow_id TEXT NOT NULL PRIMARY KEY,
            client_id TEXT NOT NULL,
            hunt_id TEXT,
            round BIGINT NOT NULL DEFAULT 0,
            request TEXT NOT NULL,
            state TEXT NOT NULL,
            creator TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            ended_at DOUBLE PRECISION,
            row_count BIGINT NOT NULL DEFAULT 0,
            uploaded_bytes BIGINT NOT NULL DEFAULT 0,
            errors TEXT NOT NULL DEFAULT '[]',
            cancel_requested INTEGER NOT NULL DEFAULT 0
        )
        """,
        // Unique (flow_id is) so that reading results in (flow creation, flow, seq, row) order walks
        // these indexes and the results' primary key without sorting.
        "CREATE UNIQUE INDEX flows_by_creation ON flows (created_at, flow_id)",
        "CREATE UNIQUE INDEX flows_by_client ON flows (client_id, created_at, flow_id)",
        "CREATE UNIQUE INDEX flows_by_hunt ON flows (hunt_id, created_at, flow_id)",
        "CREATE INDEX flows_by_state ON flows (state, started_at)",
        // Every batch stored, for deduplication; a rows batch also says which source it holds, so
        // that reads filtered by artifact or source skip other sources' rows a batch at a time.
        """
        CREATE TABLE flow_batches (
            flow_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            kind TEXT NOT NULL,
            artifact TEXT,
            source TEXT,
            row_count BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (flow_id, seq)
        )
        """,
        """
        CREATE TABLE results (
            flow_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            row_index BIGINT NOT NULL,
            artifact TEXT NOT NULL,
            source TEXT NOT NULL,
            json TEXT NOT NULL,
            PRIMARY KEY (flow_id, seq, row_index)
        )
        """,
        """
        CREATE TABLE uploads (
            flow_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            name TEXT NOT NULL,
            size BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            md5 TEXT NOT NULL,
            PRIMARY KEY (flow_id, seq)
        )
        """,
        "CREATE INDEX uploads_by_sha256 ON uploads (sha256)",
        """
        CREATE TABLE flow_logs (
            flow_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            line_index BIGINT NOT NULL,
            line TEXT NOT NULL,
            PRIMARY KEY (flow_id, seq, line_index)
        )
        """,
        """
        CREATE TABLE audit (
            logged_at DOUBLE PRECISION NOT NULL,
            user_name TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            details TEXT NOT NULL,
            remote TEXT NOT NULL
        )
        """,
        "CREATE INDEX audit_by_time ON audit (logged_at)",
    ]
}
