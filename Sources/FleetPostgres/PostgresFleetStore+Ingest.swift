import FleetCore
import Foundation
import PostgresNIO

// Ingestion of agents' batches: the hot path. A call of any number of batches is one transaction of a
// handful of statements, whatever the number of rows: every table gets one multi-row INSERT of
// arrays (`unnest`), not one round trip per row. Result rows travel as one text per batch, the rows
// joined with the ASCII record separator (0x1E, which valid JSON never holds unescaped) and split
// again by the server: encoding one large string costs the client a copy, where an array of a
// thousand strings costs it a thousand encodings. A batch whose rows hold that byte goes as arrays.
//
// Several frontends may ingest into the same database at once, even the same batch (an agent that
// reconnected elsewhere resends it). The first statement locks the flows the call writes to, in
// flow ID order, so that calls writing to the same flow run one after the other (never in a cycle):
// the later call then finds the batch in `flow_batches` and stores nothing (a duplicate).
extension PostgresFleetStore {
    /// Rows sent in one INSERT at most (larger calls use several statements of the same transaction;
    /// a single larger batch goes whole).
    static let rowsPerStatement = 25_000

    public func ingest(_ batch: IngestBatch) async throws -> IngestOutcome {
        guard let outcome = try await ingest([batch]).first else { throw StoreError("ingest: no outcome") }
        return outcome
    }

    public func ingest(_ batches: [IngestBatch]) async throws -> [IngestOutcome] {
        if batches.isEmpty { return [] }
        let flowIds = Array(Set(batches.map(\.flowId))).sorted()
        return try await transaction("ingest") { connection in
            // Locks the flows (and reads their owners) in a fixed order: see above.
            let owners = try await connection.fetchAll(
                "SELECT flow_id, client_id FROM flows WHERE flow_id = ANY(\(flowIds)::text[]) ORDER BY flow_id FOR UPDATE")
            var owner: [String: String] = [:]
            for row in owners {
                let (flowId, clientId) = try row.decode((String, String).self)
                owner[flowId] = clientId
            }

            // Which batches may be stored: the flow's own client's, each (flow, seq) once per call.
            var outcomes = [IngestOutcome?](repeating: nil, count: batches.count)
            var candidates: [Int] = []
            var seen = Set<BatchKey>()
            for (index, batch) in batches.enumerated() {
                guard let flowOwner = owner[batch.flowId] else {
                    outcomes[index] = .rejected("no flow \(batch.flowId)")
                    continue
                }
                guard flowOwner == batch.clientId else {
                    outcomes[index] = .rejected("flow \(batch.flowId) does not belong to client \(batch.clientId)")
                    continue
                }
                // Checked here, not left to the database: a NUL byte would fail the whole transaction.
                if let problem = batch.problem {
                    outcomes[index] = .rejected(problem)
                    continue
                }
                if seen.insert(BatchKey(flowId: batch.flowId, seq: batch.seq)).inserted {
                    candidates.append(index)
                } else {
                    outcomes[index] = .duplicate
                }
            }

            // Records the batches; those already recorded (by an earlier call) are duplicates.
            let inserted = try await Self.recordBatches(connection, candidates.map { batches[$0] })
            var stored: [IngestBatch] = []
            for index in candidates {
                let batch = batches[index]
                if inserted.contains(BatchKey(flowId: batch.flowId, seq: batch.seq)) {
                    outcomes[index] = .stored
                    stored.append(batch)
                } else {
                    outcomes[index] = .duplicate
                }
            }
            if !stored.isEmpty { try await Self.store(connection, stored) }
            return outcomes.map { $0 ?? .rejected("not ingested") }
        }
    }

    /// A batch's identity: a batch seen twice is stored once.
    struct BatchKey: Hashable {
        var flowId: String
        var seq: Int
    }

    /// Inserts the batches into `flow_batches` (those not there yet) and adds their rows and upload
    /// bytes to their flows' counts; returns the keys it inserted.
    private static func recordBatches(_ connection: PostgresConnection, _ batches: [IngestBatch]) async throws -> Set<BatchKey> {
        if batches.isEmpty { return [] }
        var flowIds: [String] = [], seqs: [Int] = [], kinds: [String] = [], artifacts: [String] = [], sources: [String] = []
        var rowCounts: [Int] = [], uploadBytes: [Int64] = []
        for batch in batches {
            flowIds.append(batch.flowId)
            seqs.append(batch.seq)
            var kind = "", artifact = "", source = "", rowCount = 0, bytes: Int64 = 0
            switch batch.payload {
            case .rows(let a, let s, let rows): (kind, artifact, source, rowCount) = ("rows", a, s, rows.count)
            case .upload(let upload): (kind, bytes) = ("upload", upload.size)
            case .uploadPart: kind = "uploadPart"
            case .log: kind = "log"
            case .status: kind = "status"
            }
            kinds.append(kind)
            artifacts.append(artifact)
            sources.append(source)
            rowCounts.append(rowCount)
            uploadBytes.append(bytes)
        }
        // Only a rows batch names an artifact and source (NULL otherwise, as SQLite stores them). The
        // flows' row and byte counts grow in the same statement, by what the inserted batches hold.
        let rows = try await connection.fetchAll(
            """
            WITH v AS (
                SELECT * FROM unnest(\(flowIds)::text[], \(seqs)::bigint[], \(kinds)::text[], \(artifacts)::text[],
                                     \(sources)::text[], \(rowCounts)::bigint[], \(uploadBytes)::bigint[])
                    AS v(flow_id, seq, kind, artifact, source, row_count, bytes)),
            inserted AS (
                INSERT INTO flow_batches (flow_id, seq, kind, artifact, source, row_count)
                SELECT flow_id, seq, kind, CASE WHEN kind = 'rows' THEN artifact END, CASE WHEN kind = 'rows' THEN source END,
                    row_count
                FROM v
                ON CONFLICT DO NOTHING
                RETURNING flow_id, seq),
            added AS (
                SELECT v.flow_id, SUM(v.row_count)::bigint AS row_count, SUM(v.bytes)::bigint AS bytes
                FROM inserted JOIN v ON v.flow_id = inserted.flow_id AND v.seq = inserted.seq
                GROUP BY v.flow_id),
            counted AS (
                UPDATE flows f SET row_count = f.row_count + added.row_count, uploaded_bytes = f.uploaded_bytes + added.bytes
                FROM added WHERE f.flow_id = added.flow_id AND (added.row_count > 0 OR added.bytes > 0))
            SELECT flow_id, seq FROM inserted
            """)
        var inserted = Set<BatchKey>()
        for row in rows {
            let (flowId, seq) = try row.decode((String, Int).self)
            inserted.insert(BatchKey(flowId: flowId, seq: seq))
        }
        return inserted
    }

    /// Stores the payloads of newly recorded batches: rows, uploads, log lines, then statuses in order
    /// (the flows' counts already grew with the batches' records).
    private static func store(_ connection: PostgresConnection, _ batches: [IngestBatch]) async throws {
        var rows = RowColumns()
        var uploads = UploadColumns()
        var logFlows: [String] = [], logSeqs: [Int] = [], logIndexes: [Int] = [], logLines: [String] = []
        var statuses: [(flowId: String, status: FlowStatus)] = []

        for batch in batches {
            switch batch.payload {
            case .rows(let artifact, let source, let lines):
                if lines.isEmpty { continue }
                if rows.count > 0 && rows.count + lines.count > rowsPerStatement {
                    try await rows.insert(connection)
                    rows = RowColumns()
                }
                rows.append(batch, artifact: artifact, source: source, rows: lines)
            case .upload(let upload):
                uploads.append(batch, upload)
            case .uploadPart:
                break
            case .log(let lines):
                for (index, line) in lines.enumerated() {
                    logFlows.append(batch.flowId)
                    logSeqs.append(batch.seq)
                    logIndexes.append(index)
                    logLines.append(line)
                }
            case .status(let status):
                statuses.append((batch.flowId, status))
            }
        }
        try await rows.insert(connection)
        try await uploads.insert(connection)
        if !logLines.isEmpty {
            try await connection.perform(
                """
                INSERT INTO flow_logs (flow_id, seq, line_index, line)
                SELECT * FROM unnest(\(logFlows)::text[], \(logSeqs)::bigint[], \(logIndexes)::bigint[], \(logLines)::text[])
                """)
        }
        try await applyStatuses(connection, statuses)
    }

    /// Running moves a scheduled flow to running (and nothing else); a final status ends the flow
    /// whatever its state, appends its errors, and gives the flow a start time if it had none.
    /// All statuses of a call take two statements: the running ones, then the final ones (several
    /// final statuses of one flow merge in order: their errors appended, the last state and time kept).
    private static func applyStatuses(_ connection: PostgresConnection, _ statuses: [(flowId: String, status: FlowStatus)]) async throws {
        var runningIds: [String] = [], runningTimes: [Double] = []
        var finals: [String: (state: FlowState, time: Double, errors: [String])] = [:]
        var order: [String] = []
        for (flowId, status) in statuses {
            if status.state == .running {
                runningIds.append(flowId)
                runningTimes.append(status.time)
                continue
            }
            guard status.state.isFinal else { continue }
            var errors = status.errors
            if status.droppedBatches > 0 {
                let count = status.droppedBatches == 1 ? "1 batch was" : "\(status.droppedBatches) batches were"
                errors.append("\(count) lost: the agent's queue dropped them before the server acknowledged them")
            }
            if let previous = finals[flowId] {
                finals[flowId] = (status.state, status.time, previous.errors + errors)
            } else {
                finals[flowId] = (status.state, status.time, errors)
                order.append(flowId)
            }
        }
        if !runningIds.isEmpty {
            try await connection.perform(
                """
                UPDATE flows f SET state = \(FlowState.running.rawValue), started_at = v.t
                FROM (SELECT DISTINCT ON (id) id, t FROM unnest(\(runningIds)::text[], \(runningTimes)::float8[]) AS u(id, t) ORDER BY id, t) AS v
                WHERE f.flow_id = v.id AND f.state = \(FlowState.scheduled.rawValue)
                """)
        }
        guard !order.isEmpty else { return }
        var states: [String] = [], times: [Double] = [], errors: [String] = []
        for flowId in order {
            guard let final = finals[flowId] else { continue }
            states.append(final.state.rawValue)
            times.append(final.time)
            errors.append(try json(final.errors))
        }
        try await connection.perform(
            """
            UPDATE flows f SET state = v.state, ended_at = v.t, started_at = COALESCE(f.started_at, v.t),
                errors = (f.errors::jsonb || v.errs::jsonb)::text
            FROM unnest(\(order)::text[], \(states)::text[], \(times)::float8[], \(errors)::text[]) AS v(id, state, t, errs)
            WHERE f.flow_id = v.id
            """)
    }
}

/// Result rows of several batches, for one INSERT: per batch its rows joined with `separator`, or
/// (for a batch whose rows hold the separator) one array element per row.
private struct RowColumns {
    static let separator: UInt8 = 0x1E

    var flowIds: [String] = [], seqs: [Int] = [], artifacts: [String] = [], sources: [String] = []
    var counts: [Int] = [], joined: [String] = []
    var plain = PlainRows()
    private(set) var count = 0

    mutating func append(_ batch: IngestBatch, artifact: String, source: String, rows: [String]) {
        count += rows.count
        if rows.contains(where: Self.holdsSeparator) {
            for (index, row) in rows.enumerated() { plain.append(batch, index: index, artifact: artifact, source: source, json: row) }
            return
        }
        flowIds.append(batch.flowId)
        seqs.append(batch.seq)
        artifacts.append(artifact)
        sources.append(source)
        counts.append(rows.count)
        joined.append(rows.joined(separator: "\u{1E}"))
    }

    static func holdsSeparator(_ row: String) -> Bool {
        var row = row
        return row.withUTF8 { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return false }
            return memchr(base, Int32(separator), bytes.count) != nil
        }
    }

    /// Inserts the rows; checks that the server split them back into as many as were sent.
    func insert(_ connection: PostgresConnection) async throws {
        if !joined.isEmpty {
            // A batch of one row is not split (a lone empty row would otherwise vanish).
            let result = try await connection.fetchAll(
                """
                WITH inserted AS (
                    INSERT INTO results (flow_id, seq, row_index, artifact, source, json)
                    SELECT b.flow_id, b.seq, r.row_index - 1, b.artifact, b.source, r.json
                    FROM unnest(\(flowIds)::text[], \(seqs)::bigint[], \(artifacts)::text[], \(sources)::text[],
                                \(counts)::bigint[], \(joined)::text[]) AS b(flow_id, seq, artifact, source, row_count, joined)
                    CROSS JOIN LATERAL unnest(CASE WHEN b.row_count = 1 THEN ARRAY[b.joined]
                                                   ELSE string_to_array(b.joined, chr(30)) END) WITH ORDINALITY AS r(json, row_index)
                    RETURNING 1)
                SELECT COUNT(*) FROM inserted
                """)
            let sent = counts.reduce(0, +)
            let stored = try result.first?.decode(Int.self) ?? 0
            if stored != sent { throw StoreError("ingest: \(sent) rows sent but \(stored) stored") }
        }
        try await plain.insert(connection)
    }
}

/// Result rows as column arrays, one element per row.
private struct PlainRows {
    var flowIds: [String] = [], seqs: [Int] = [], indexes: [Int] = [], artifacts: [String] = [], sources: [String] = []
    var json: [String] = []

    mutating func append(_ batch: IngestBatch, index: Int, artifact: String, source: String, json line: String) {
        flowIds.append(batch.flowId)
        seqs.append(batch.seq)
        indexes.append(index)
        artifacts.append(artifact)
        sources.append(source)
        json.append(line)
    }

    func insert(_ connection: PostgresConnection) async throws {
        if json.isEmpty { return }
        try await connection.perform(
            """
            INSERT INTO results (flow_id, seq, row_index, artifact, source, json)
            SELECT * FROM unnest(\(flowIds)::text[], \(seqs)::bigint[], \(indexes)::bigint[], \(artifacts)::text[],
                                 \(sources)::text[], \(json)::text[])
            """)
    }
}

/// Upload records as column arrays.
private struct UploadColumns {
    var flowIds: [String] = [], seqs: [Int] = [], names: [String] = [], sizes: [Int64] = [], sha256: [String] = [], md5: [String] = []

    mutating func append(_ batch: IngestBatch, _ upload: UploadRecord) {
        flowIds.append(batch.flowId)
        seqs.append(batch.seq)
        names.append(upload.name)
        sizes.append(upload.size)
        sha256.append(upload.sha256)
        md5.append(upload.md5)
    }

    func insert(_ connection: PostgresConnection) async throws {
        if flowIds.isEmpty { return }
        try await connection.perform(
            """
            INSERT INTO uploads (flow_id, seq, name, size, sha256, md5)
            SELECT * FROM unnest(\(flowIds)::text[], \(seqs)::bigint[], \(names)::text[], \(sizes)::bigint[],
                                 \(sha256)::text[], \(md5)::text[])
            """)
    }
}
