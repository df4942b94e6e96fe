import FleetCore
import Foundation
import PostgresNIO

// Clients and their labels, hunts and the audit log.
extension PostgresFleetStore {
    // MARK: clients

    public func addClient(_ client: ClientRecord) async throws {
        let ips = try Self.json(client.ips)
        let labels = Set(client.labels).filter { !$0.isEmpty }.sorted()
        try await transaction("addClient \(client.clientId)") { connection in
            try await connection.perform(
                """
                INSERT INTO clients (client_id, hostname, fqdn, os, kernel, ips, enrolled_at, last_seen, revoked, certificate_serial)
                VALUES (\(client.clientId), \(client.hostname), \(client.fqdn), \(client.os), \(client.kernel), \(ips),
                        \(client.enrolledAt), \(client.lastSeen), \(client.revoked ? 1 : 0), \(client.certificateSerial))
                """)
            if !labels.isEmpty {
                try await connection.perform(
                    "INSERT INTO client_labels (client_id, label) SELECT \(client.clientId), unnest(\(labels)::text[])")
            }
        }
    }

    public func client(_ clientId: String) async throws -> ClientRecord? {
        try await fetch("client \(clientId)", "\(unescaped: Self.clientSelect) WHERE c.client_id = \(clientId)", Self.clientRecord).first
    }

    public func clients() async throws -> [ClientRecord] {
        try await fetch("clients", "\(unescaped: Self.clientSelect) ORDER BY c.client_id COLLATE \"C\"", Self.clientRecord)
    }

    public func setClientFacts(_ clientId: String, _ facts: ClientFacts) async throws {
        let ips = try Self.json(facts.ips)
        try await changeOne("setClientFacts", "client", clientId) { connection in
            try await connection.fetchAll(
                """
                UPDATE clients SET hostname = \(facts.hostname), fqdn = \(facts.fqdn), os = \(facts.os),
                    kernel = \(facts.kernel), ips = \(ips)
                WHERE client_id = \(clientId) RETURNING 1
                """)
        }
    }

    public func touchClient(_ clientId: String, lastSeen: Double) async throws {
        try await changeOne("touchClient", "client", clientId) { connection in
            try await connection.fetchAll("UPDATE clients SET last_seen = \(lastSeen) WHERE client_id = \(clientId) RETURNING 1")
        }
    }

    @discardableResult
    public func labelClient(_ clientId: String, add: [String], remove: [String]) async throws -> [String] {
        let added = add.filter { !$0.isEmpty }
        return try await transaction("labelClient \(clientId)") { connection in
            // Locks the client, so that concurrent label changes of one client apply one after the other.
            let exists = try await connection.fetchAll("SELECT 1 FROM clients WHERE client_id = \(clientId) FOR UPDATE")
            if exists.isEmpty { throw StoreError("labelClient: no client \(clientId)") }
            if !added.isEmpty {
                try await connection.perform(
                    """
                    INSERT INTO client_labels (client_id, label) SELECT \(clientId), unnest(\(added)::text[])
                    ON CONFLICT DO NOTHING
                    """)
            }
            if !remove.isEmpty {
                try await connection.perform("DELETE FROM client_labels WHERE client_id = \(clientId) AND label = ANY(\(remove)::text[])")
            }
            let rows = try await connection.fetchAll("SELECT label FROM client_labels WHERE client_id = \(clientId)")
            return try rows.map { try $0.decode(String.self) }.sorted()
        }
    }

    public func revokeClient(_ clientId: String) async throws {
        try await changeOne("revokeClient", "client", clientId) { connection in
            try await connection.fetchAll("UPDATE clients SET revoked = 1 WHERE client_id = \(clientId) RETURNING 1")
        }
    }

    /// Runs an UPDATE … RETURNING in a transaction; fails with "OPERATION: no KIND ID" when it changed nothing.
    func changeOne(_ operation: String, _ kind: String, _ id: String, _ update: (PostgresConnection) async throws -> [PostgresRow]) async throws {
        try await transaction("\(operation) \(id)") { connection in
            if try await update(connection).isEmpty { throw StoreError("\(operation): no \(kind) \(id)") }
        }
    }

    /// One statement reads a client and its labels: one snapshot, one round trip.
    private static let clientSelect = """
        SELECT c.client_id, c.hostname, c.fqdn, c.os, c.kernel, c.ips, c.enrolled_at, c.last_seen, c.revoked,
            c.certificate_serial, ARRAY(SELECT l.label FROM client_labels l WHERE l.client_id = c.client_id)
        FROM clients c
        """

    private static func clientRecord(_ row: PostgresRow) throws -> ClientRecord {
        let (clientId, hostname, fqdn, os, kernel, ips, enrolledAt, lastSeen, revoked, serial, labels) =
            try row.decode((String, String, String, String, String, String, Double, Double, Int, String, [String]).self)
        var client = ClientRecord(clientId: clientId, enrolledAt: enrolledAt, certificateSerial: serial)
        client.hostname = hostname
        client.fqdn = fqdn
        client.os = os
        client.kernel = kernel
        client.ips = try decode([String].self, ips, "IP list of client \(clientId)")
        client.lastSeen = lastSeen
        client.revoked = revoked != 0
        client.labels = labels.sorted()
        return client
    }

    // MARK: hunts

    public func addHunt(_ hunt: HuntRecord) async throws {
        let values = try Self.huntValues(hunt)
        try await transaction("addHunt \(hunt.huntId)") { connection in
            try await connection.perform(PostgresQuery(unsafeSQL: "INSERT INTO hunts (\(Self.huntColumns)) VALUES (\(Self.placeholders(1...15)))", binds: values))
        }
    }

    public func hunt(_ huntId: String) async throws -> HuntRecord? {
        try await fetch("hunt \(huntId)", "SELECT \(unescaped: Self.huntColumns) FROM hunts WHERE hunt_id = \(huntId)", Self.huntRecord).first
    }

    public func hunts() async throws -> [HuntRecord] {
        try await fetch(
            "hunts", "SELECT \(unescaped: Self.huntColumns) FROM hunts ORDER BY created_at DESC, hunt_id COLLATE \"C\" DESC", Self.huntRecord)
    }

    public func updateHunt(_ hunt: HuntRecord) async throws {
        if try await !replaceHunt(hunt, ifRound: nil) { throw StoreError("updateHunt: no hunt \(hunt.huntId)") }
    }

    /// Replaces the stored hunt, only if its round is still `ifRound` when given; false if no row changed.
    func replaceHunt(_ hunt: HuntRecord, ifRound: Int?) async throws -> Bool {
        var values = try Self.huntValues(hunt)
        // $1 is the hunt's ID; every other column is set from its own parameter.
        let columns = Self.huntColumns.split(separator: ",").dropFirst()
        let assignments = columns.enumerated()
            .map { "\($0.element.trimmingCharacters(in: .whitespaces)) = $\($0.offset + 2)" }.joined(separator: ", ")
        var condition = "hunt_id = $1"
        if let ifRound {
            values.append(ifRound)
            condition += " AND round = $\(columns.count + 2)"
        }
        let bindings = values
        return try await transaction("updateHunt \(hunt.huntId)") { connection in
            try await !connection.fetchAll(PostgresQuery(unsafeSQL: "UPDATE hunts SET \(assignments) WHERE \(condition) RETURNING 1", binds: bindings)).isEmpty
        }
    }

    private static let huntColumns = """
        hunt_id, description, request, conditions, state, creator, created_at, started_at, expires_at, \
        client_limit, rate_per_minute, schedule, round, round_started_at, next_round_at
        """

    static func placeholders(_ numbers: ClosedRange<Int>) -> String {
        numbers.map { "$\($0)" }.joined(separator: ", ")
    }

    private static func huntValues(_ hunt: HuntRecord) throws -> PostgresBindings {
        var values = PostgresBindings(capacity: 15)
        values.append(hunt.huntId)
        values.append(hunt.description)
        values.append(try json(hunt.request))
        values.append(try json(hunt.conditions))
        values.append(hunt.state.rawValue)
        values.append(hunt.creator)
        values.append(hunt.createdAt)
        values.append(hunt.startedAt)
        values.append(hunt.expiresAt)
        values.append(hunt.clientLimit)
        values.append(hunt.ratePerMinute)
        values.append(hunt.schedule)
        values.append(hunt.round)
        values.append(hunt.roundStartedAt)
        values.append(hunt.nextRoundAt)
        return values
    }

    private static func huntRecord(_ row: PostgresRow) throws -> HuntRecord {
        let (huntId, description, request, conditions, state, creator, createdAt, startedAt, expiresAt,
             clientLimit, ratePerMinute, schedule, round, roundStartedAt, nextRoundAt) =
            try row.decode((String, String, String, String, String, String, Double, Double?, Double,
                            Int?, Int?, String?, Int, Double?, Double?).self)
        guard let parsedState = HuntState(rawValue: state) else { throw StoreError("hunt \(huntId): unknown state \(state)") }
        var hunt = HuntRecord(
            huntId: huntId, request: try decode(CollectionRequest.self, request, "request of hunt \(huntId)"),
            conditions: try decode(HuntConditions.self, conditions, "conditions of hunt \(huntId)"),
            state: parsedState, creator: creator, createdAt: createdAt, expiresAt: expiresAt)
        hunt.description = description
        hunt.startedAt = startedAt
        hunt.clientLimit = clientLimit
        hunt.ratePerMinute = ratePerMinute
        hunt.schedule = schedule
        hunt.round = round
        hunt.roundStartedAt = roundStartedAt
        hunt.nextRoundAt = nextRoundAt
        return hunt
    }

    // MARK: audit

    public func audit(_ entry: AuditEntry) async throws {
        let entry = entry.bounded()
        try await transaction("audit") { connection in
            try await connection.perform(
                """
                INSERT INTO audit (logged_at, user_name, action, target, details, remote)
                VALUES (\(entry.time), \(entry.user), \(entry.action), \(entry.target), \(entry.details), \(entry.remote))
                """)
        }
    }

    /// Newest first; entries of the same time in reverse insertion order (`entry_id`, migration 2).
    /// A page after `before` starts below that entry's place on the (logged_at, entry_id) index.
    public func auditLog(limit: Int, before: Int64?) async throws -> [AuditEntry] {
        guard limit > 0 else { return [] }
        var sql = QueryBuilder("SELECT entry_id, logged_at, user_name, action, target, details, remote FROM audit")
        if let before {
            let placeholder = sql.bind(before)
            sql.condition("(logged_at, entry_id) < (SELECT logged_at, entry_id FROM audit WHERE entry_id = \(placeholder))")
        }
        sql.append(" ORDER BY logged_at DESC, entry_id DESC LIMIT \(sql.bind(limit))")
        return try await fetch("auditLog", sql.query) { row in
            let (id, time, user, action, target, details, remote) = try row.decode((Int64, Double, String, String, String, String, String).self)
            return AuditEntry(id: id, time: time, user: user, action: action, target: target, details: details, remote: remote)
        }
    }
}
