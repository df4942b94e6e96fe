import FleetCore
import Foundation
import PostgresNIO

// Ingestion of agents' batches: the hot path. A call of any number of batches is one transaction of a
// handful of statements, whatever the number of rows: every table gets one multi-row INSERT of
// arrays (`unnest`), not one round trip per row.
//
// Several frontends may ingest into the same database at once, even the same batch (an agent that
// reconnected elsewhere resends it). The first statement locks the flows the call writes to, in
// flow ID order, so that calls writing to the same flow run one after the other (never in a cycle):
// the later call then finds the batch in `flow_batches` and stores nothing (a duplicate).
extension PostgresFleetStore {
    /// Rows sent in one INSERT at most (larger calls use several statements of the same transaction).
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

    /// Inserts the batches into `flow_batches` (those not there yet); returns the keys it inserted.
    private static func recordBatches(_ connection: PostgresConnection, _ batches: [IngestBatch]) async throws -> Set<BatchKey> {
        if batches.isEmpty { return [] }
        var flowIds: [String] = [], seqs: [Int] = [], kinds: [String] = [], artifacts: [String] = [], sources: [String] = []
        var rowCounts: [Int] = []
        for batch in batches {
            flowIds.append(batch.flowId)
            seqs.append(batch.seq)
            var kind = "", artifact = "", source = "", rowCount = 0
            switch batch.payload {
            case .rows(let a, let s, let rows): (kind, artifact, source, rowCount) = ("rows", a, s, rows.count)
            case .upload: kind = "upload"
            case .uploadPart: kind = "uploadPart"
            case .log: kind = "log"
            case .status: kind = "status"
            }
            kinds.append(kind)
            artifacts.append(artifact)
            sources.append(source)
            rowCounts.append(rowCount)
        }
        // Only a rows batch names an artifact and source (NULL otherwise, as SQLite stores them).
        let rows = try await connection.fetchAll(
            """
            INSERT INTO flow_batches (flow_id, seq, kind, artifact, source, row_count)
            SELECT v.flow_id, v.seq, v.kind, CASE WHEN v.kind = 'rows' THEN v.artifact END,
                CASE WHEN v.kind = 'rows' THEN v.source END, v.row_count
            FROM unnest(\(flowIds)::text[], \(seqs)::bigint[], \(kinds)::text[], \(artifacts)::text[], \(sources)::text[],
                        \(rowCounts)::bigint[]) AS v(flow_id, seq, kind, artifact, source, row_count)
            ON CONFLICT DO NOTHING
            RETURNING flow_id, seq
            """)
        var inserted = Set<BatchKey>()
        for row in rows {
            let (flowId, seq) = try row.decode((String, Int).self)
            inserted.insert(BatchKey(flowId: flowId, seq: seq))
        }
        return inserted
    }

    /// Stores the payloads of newly recorded batches: rows, uploads, log lines, then statuses in order.
    private static func store(_ connection: PostgresConnection, _ batches: [IngestBatch]) async throws {
        var rows = RowColumns()
        var uploads = UploadColumns()
        var logFlows: [String] = [], logSeqs: [Int] = [], logIndexes: [Int] = [], logLines: [String] = []
        var added: [String: (rows: Int, bytes: Int64)] = [:]
        var statuses: [(flowId: String, status: FlowStatus)] = []

        for batch in batches {
            switch batch.payload {
            case .rows(let artifact, let source, let lines):
                for (index, line) in lines.enumerated() {
                    rows.append(batch, index: index, artifact: artifact, source: source, json: line)
                    if rows.count >= rowsPerStatement {
                        try await rows.insert(connection)
                        rows = RowColumns()
                    }
                }
                if !lines.isEmpty { added[batch.flowId, default: (0, 0)].rows += lines.count }
            case .upload(let upload):
                uploads.append(batch, upload)
                added[batch.flowId, default: (0, 0)].bytes += upload.size
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
        if !added.isEmpty {
            let flowIds = added.keys.sorted()
            let rowCounts = flowIds.map { added[$0]?.rows ?? 0 }
            let bytes = flowIds.map { added[$0]?.bytes ?? 0 }
            try await connection.perform(
                """
                UPDATE flows f SET row_count = f.row_count + v.row_count, uploaded_bytes = f.uploaded_bytes + v.bytes
                FROM unnest(\(flowIds)::text[], \(rowCounts)::bigint[], \(bytes)::bigint[]) AS v(flow_id, row_count, bytes)
                WHERE f.flow_id = v.flow_id
                """)
        }
        for (flowId, status) in statuses {
            try await applyStatus(connection, flowId, status)
        }
    }

    /// Running moves a scheduled flow to running (and nothing else); a final status ends the flow
    /// whatever its state, appends its errors, and gives the flow a start time if it had none.
    private static func applyStatus(_ connection: PostgresConnection, _ flowId: String, _ status: FlowStatus) async throws {
        if status.state == .running {
            try await connection.perform(
                """
                UPDATE flows SET state = \(FlowState.running.rawValue), started_at = \(status.time)
                WHERE flow_id = \(flowId) AND state = \(FlowState.scheduled.rawValue)
                """)
            return
        }
        guard status.state.isFinal else { return }
        let stored = try await connection.fetchAll("SELECT errors FROM flows WHERE flow_id = \(flowId)")
        var errors = try decode([String].self, try stored.first?.decode(String.self) ?? "[]", "errors of flow \(flowId)") + status.errors
        if status.droppedBatches > 0 {
            let count = status.droppedBatches == 1 ? "1 batch was" : "\(status.droppedBatches) batches were"
            errors.append("\(count) lost: the agent's queue dropped them before the server acknowledged them")
        }
        let errorsJSON = try json(errors)
        try await connection.perform(
            """
            UPDATE flows SET state = \(status.state.rawValue), ended_at = \(status.time),
                started_at = COALESCE(started_at, \(status.time)), errors = \(errorsJSON)
            WHERE flow_id = \(flowId)
            """)
    }
}

/// Result rows as column arrays, for one `INSERT … SELECT FROM unnest(…)`.
private struct RowColumns {
    var flowIds: [String] = [], seqs: [Int] = [], indexes: [Int] = [], artifacts: [String] = [], sources: [String] = []
    var json: [String] = []
    var count: Int { json.count }

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
