import Foundation

/// The server's datastore. One interface, several engines: SQLite (embedded, the default) and, for
/// several frontends, PostgreSQL. Every method is safe to call from many tasks at once; each call is
/// one transaction. Errors are `StoreError`s whose text says what failed.
public protocol FleetStore: FleetCoordination {
    /// Creates or upgrades the schema to the newest version; safe to call on every start.
    func migrate() async throws
    /// The schema version now in the database.
    func schemaVersion() async throws -> Int

    // MARK: users
    func addUser(_ user: UserRecord) async throws
    func user(apiKeySHA256: String) async throws -> UserRecord?
    func user(named name: String) async throws -> UserRecord?
    func users() async throws -> [UserRecord]
    /// Deletes the user (their key stops working); false if there was none.
    func removeUser(_ name: String) async throws -> Bool
    /// Replaces the user's key (only its SHA-256 is given) and its expiry; false if there is no such user.
    func replaceUserKey(_ name: String, apiKeySHA256: String, expiresAt: Double?) async throws -> Bool
    /// Sets (or, with nil, clears) the hash of the user's console password; false if there is no such user.
    func setUserPasswordHash(_ name: String, hash: String?) async throws -> Bool
    /// The hash of the user's console password; nil if the user has none (or does not exist).
    func userPasswordHash(named name: String) async throws -> String?
    /// Gives the user another role; false if there is no such user.
    func setUserRole(_ name: String, role: Role) async throws -> Bool

    // MARK: clients
    /// Records a newly enrolled client. Fails if the ID exists.
    func addClient(_ client: ClientRecord) async throws
    func client(_ clientId: String) async throws -> ClientRecord?
    func clients() async throws -> [ClientRecord]
    func setClientFacts(_ clientId: String, _ facts: ClientFacts) async throws
    func touchClient(_ clientId: String, lastSeen: Double) async throws
    /// Adds and removes labels; returns the labels afterwards (sorted, unique).
    @discardableResult
    func labelClient(_ clientId: String, add: [String], remove: [String]) async throws -> [String]
    func revokeClient(_ clientId: String) async throws

    // MARK: flows
    func addFlow(_ flow: FlowRecord) async throws
    func flow(_ flowId: String) async throws -> FlowRecord?
    /// Flows of one client and/or one hunt (nil = any), newest first.
    func flows(clientId: String?, huntId: String?) async throws -> [FlowRecord]
    /// Flows of this client still to be delivered (state scheduled), oldest first.
    func scheduledFlows(clientId: String) async throws -> [FlowRecord]
    /// Running flows started before `startedBefore` (for the server to time them out).
    func runningFlows(startedBefore: Double) async throws -> [FlowRecord]
    /// Sets a flow's state and, when given, its start or end time and errors (appended).
    func updateFlow(_ flowId: String, state: FlowState, startedAt: Double?, endedAt: Double?, errors: [String]) async throws
    func requestCancel(_ flowId: String) async throws
    /// How many flows are in each state (for metrics).
    func flowCounts() async throws -> [FlowState: Int]

    // MARK: ingestion
    /// Stores one batch in one transaction: rejected unless the flow exists and belongs to
    /// `batch.clientId` and the batch is valid (`IngestBatch.problem`); a duplicate (same flow and seq) stores nothing. Rows add to the flow's row
    /// count; an upload record adds to its uploaded bytes; a final status sets the flow's state,
    /// end time and errors (a status never moves a flow back from a final state to running).
    func ingest(_ batch: IngestBatch) async throws -> IngestOutcome
    /// Many batches in one transaction (same rules, one outcome each, in order).
    func ingest(_ batches: [IngestBatch]) async throws -> [IngestOutcome]
    func results(_ query: ResultQuery) async throws -> [ResultRow]
    /// The rows `results` would return, handed to `body` at most `chunk` at a time, in order. The
    /// next chunk is read only when `body` has returned, so memory holds one chunk however many rows
    /// there are; the read is one snapshot, on a connection that does not hold up writers.
    func streamResults(_ query: ResultQuery, chunk: Int, _ body: ([ResultRow]) async throws -> Void) async throws
    /// Sources that have rows for a hunt or flow: (artifact, source, rows).
    func resultSources(huntId: String?, flowId: String?) async throws -> [(artifact: String, source: String, rows: Int)]
    func uploads(flowId: String) async throws -> [UploadRecord]
    func logs(flowId: String) async throws -> [String]

    // MARK: hunts
    func addHunt(_ hunt: HuntRecord) async throws
    func hunt(_ huntId: String) async throws -> HuntRecord?
    /// All hunts, newest first (archived ones too).
    func hunts() async throws -> [HuntRecord]
    func updateHunt(_ hunt: HuntRecord) async throws

    /// Deletes a hunt with its flows and everything they stored (rows, uploads records, logs);
    /// returns the IDs of the flows deleted. Fails if there is no such hunt.
    func deleteHunt(_ huntId: String) async throws -> [String]

    /// Deletes one flow with everything it stored; false if there was none.
    func deleteFlow(_ flowId: String) async throws -> Bool

    /// Deletes a client with everything stored about it — its flows and what they stored, its
    /// events, labels and metadata notes (its own and `MetadataOwner.isolation`) — in one
    /// transaction; nil if there is no such client. Alerts and the audit log are history and stay.
    func deleteClient(_ clientId: String) async throws -> ClientDeletion?

    // MARK: metadata
    /// The key/value notes of one owner (`MetadataOwner.server` or a client ID).
    func metadata(_ owner: String) async throws -> [String: String]
    /// Sets (or, for a nil value, removes) notes of one owner in one transaction; returns them all afterwards.
    @discardableResult
    func setMetadata(_ owner: String, _ changes: [String: String?]) async throws -> [String: String]

    // MARK: client monitoring
    /// The monitoring table, by artifact then label.
    func monitoringTable() async throws -> [MonitoringEntry]
    /// Adds the entry or replaces the one of the same artifact and label.
    func setMonitoring(_ entry: MonitoringEntry) async throws
    /// Removes the entry of this artifact and label; false if there was none.
    func removeMonitoring(artifact: String, label: String) async throws -> Bool
    /// Stores event batches in one transaction, each at most once per (client, artifact, seq); one
    /// outcome each, in order (a batch with a `problem` is rejected).
    func ingestEvents(_ batches: [EventBatch]) async throws -> [IngestOutcome]
    /// Event rows of one artifact in (time, client, seq, index) order (see `EventQuery`).
    func events(_ query: EventQuery) async throws -> [EventRow]
    /// Deletes the event rows (and batch records) of days before `day`; returns the rows deleted.
    func deleteEvents(beforeDay day: Int) async throws -> Int

    // MARK: audit
    /// Appends an entry (its fields cut to `AuditEntry`'s bounds).
    func audit(_ entry: AuditEntry) async throws
    /// Up to `limit` entries, newest first (same time: last written first), each with its `id`;
    /// with `before`, only entries older than the entry with that id (the previous page's last).
    func auditLog(limit: Int, before: Int64?) async throws -> [AuditEntry]

    // MARK: alerts
    /// Stores an alert (its fields cut to `AlertRecord.bounded()`); returns its id.
    @discardableResult
    func addAlert(_ alert: AlertRecord) async throws -> Int64
    /// Alerts matching `query`, newest first (same time: last stored first), each with its id.
    func alerts(_ query: AlertQuery) async throws -> [AlertRecord]
    /// Marks an alert seen by `user` (the first acknowledgement stays); nil if there is no such alert.
    func acknowledgeAlert(_ id: Int64, by user: String, at time: Double) async throws -> AlertRecord?
}

extension FleetStore {
    /// The newest `limit` entries.
    public func auditLog(limit: Int) async throws -> [AuditEntry] {
        try await auditLog(limit: limit, before: nil)
    }
}

extension FleetStore {
    /// Group commit: several connections' batches in one transaction. When that fails, each batch is
    /// stored alone, so one bad batch never holds back another agent's: a batch the datastore
    /// refuses for its data is rejected (acknowledged, with the reason, and dropped by its agent);
    /// any other failure leaves that connection's remaining batches unacknowledged (sent again).
    public func ingest(groups jobs: [[IngestBatch]]) async -> [Result<[IngestOutcome], any Error>] {
        let all = jobs.flatMap { $0 }
        do {
            let outcomes = try await ingest(all)
            var offset = 0
            return jobs.map { batches in
                defer { offset += batches.count }
                return .success(Array(outcomes[offset..<offset + batches.count]))
            }
        } catch let error as StoreError where all.count == 1 && error.refusesData {
            return [.success([.rejected("the datastore refused the batch: \(error.message)")])]
        } catch {
            if all.count == 1 { return [.failure(error)] }
        }
        var results: [Result<[IngestOutcome], any Error>] = []
        for batches in jobs {
            var outcomes: [IngestOutcome] = []
            do {
                for batch in batches {
                    do {
                        outcomes.append(try await ingest([batch]).first ?? .rejected("not ingested"))
                    } catch let error as StoreError where error.refusesData {
                        outcomes.append(.rejected("the datastore refused the batch: \(error.message)"))
                    }
                }
                results.append(.success(outcomes))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }
}

/// What deleting a client removed.
public struct ClientDeletion: Codable, Sendable, Equatable {
    public var flows: [String]
    public var eventRows: Int
    public var notes: Int
    public init(flows: [String], eventRows: Int, notes: Int) {
        self.flows = flows
        self.eventRows = eventRows
        self.notes = notes
    }
}

/// Owners of metadata notes other than clients (whose notes are kept under their client ID).
public enum MetadataOwner {
    /// The server's own notes (`server_metadata`).
    public static let server = "server"

    /// What the server knows of a client's network isolation (`isolated`, `isolation_reported`,
    /// `isolation_source`), apart from the notes analysts set on the client.
    public static func isolation(_ clientId: String) -> String { "isolation:" + clientId }
}

/// A datastore failure with the engine's own message.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The datastore refused the data itself (an invalid value, a constraint, a limit): the same
    /// call would fail again, unlike a lost connection or a full disk.
    public var refusesData: Bool
    public init(_ message: String, refusesData: Bool = false) {
        self.message = message
        self.refusesData = refusesData
    }
    public var description: String { message }
}
