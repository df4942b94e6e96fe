import Foundation

/// One line of the client monitoring table: an event (CLIENT_EVENT) artifact that agents run
/// continuously, with its parameters, for every client (no label) or only for clients carrying
/// `label`. The table is the server's; agents receive the entries that apply to them.
public struct MonitoringEntry: Codable, Sendable, Equatable, Hashable {
    public var artifact: String
    public var parameters: [String: String]
    /// Empty: every client.
    public var label: String
    public var creator: String
    public var updatedAt: Double

    public init(artifact: String, parameters: [String: String] = [:], label: String = "", creator: String = "", updatedAt: Double = 0) {
        self.artifact = artifact
        self.parameters = parameters
        self.label = label
        self.creator = creator
        self.updatedAt = updatedAt
    }

    /// Most entries the table holds, and most parameters (and bytes of each) an entry holds.
    public static let maxEntries = 256
    public static let maxParameters = 64
    public static let maxTextBytes = 4096

    /// Why the entry cannot be stored, or nil.
    public var problem: String? {
        func bad(_ text: String, _ limit: Int) -> Bool { text.utf8.contains(0) || text.utf8.count > limit }
        if artifact.isEmpty || bad(artifact, IngestBatch.maxNameBytes) { return "the artifact name is empty, too long or holds a NUL byte" }
        if bad(label, IngestBatch.maxNameBytes) { return "the label is too long or holds a NUL byte" }
        if parameters.count > Self.maxParameters { return "more than \(Self.maxParameters) parameters" }
        if parameters.contains(where: { bad($0.key, IngestBatch.maxNameBytes) || $0.key.isEmpty || bad($0.value, Self.maxTextBytes) }) {
            return "a parameter name or value is empty, too long or holds a NUL byte"
        }
        return nil
    }

    /// The entries that apply to a client with these labels: one per artifact (an entry for one of
    /// the client's labels wins over the unlabelled one; between labels, the first label in order).
    public static func applicable(_ table: [MonitoringEntry], labels: [String]) -> [MonitoringEntry] {
        let held = Set(labels)
        var chosen: [String: MonitoringEntry] = [:]
        for entry in table.sorted(by: { ($0.artifact, $0.label) < ($1.artifact, $1.label) }) where entry.label.isEmpty || held.contains(entry.label) {
            if let current = chosen[entry.artifact], !current.label.isEmpty { continue }
            chosen[entry.artifact] = entry
        }
        return chosen.values.sorted { $0.artifact < $1.artifact }
    }
}

/// Event streams travel in the agents' ordinary numbered batches, under a stream ID in place of a
/// flow ID: `E.` and the artifact's name. Batches are numbered per client and stream from 1.
public enum EventStream {
    public static let prefix = "E."
    /// The client ID under which the server's own event artifacts store their rows.
    public static let serverClientId = "server"
    public static func id(artifact: String) -> String { prefix + artifact }
    /// The artifact of a stream ID; nil for a flow ID.
    public static func artifact(of id: String) -> String? {
        id.hasPrefix(prefix) ? String(id.dropFirst(prefix.count)) : nil
    }
}

/// One batch of event rows from one client: stored at most once per (client, artifact, seq).
public struct EventBatch: Sendable, Equatable {
    public var clientId: String
    public var artifact: String
    public var source: String
    public var seq: Int
    public var rows: [String]
    /// When the server received it (seconds since 1970): the rows' time for reads and retention.
    public var receivedAt: Double

    public init(clientId: String, artifact: String, source: String, seq: Int, rows: [String], receivedAt: Double) {
        self.clientId = clientId
        self.artifact = artifact
        self.source = source
        self.seq = seq
        self.rows = rows
        self.receivedAt = receivedAt
    }

    /// Why the batch cannot be stored, or nil.
    public var problem: String? {
        IngestBatch(clientId: clientId, flowId: EventStream.id(artifact: artifact), seq: seq, payload: .rows(artifact: artifact, source: source, rows: rows)).problem
    }

    /// Days since 1970 (UTC) of a time: the unit of retention.
    public static func day(_ time: Double) -> Int { Int((time / 86_400).rounded(.down)) }
}

/// One stored event row.
public struct EventRow: Codable, Sendable, Equatable {
    public var clientId: String
    public var artifact: String
    public var source: String
    /// When the server received the row (seconds since 1970).
    public var time: Double
    public var seq: Int
    public var index: Int
    /// The row, a JSON object text as the agent produced it.
    public var json: String

    public init(clientId: String, artifact: String, source: String, time: Double, seq: Int, index: Int, json: String) {
        self.clientId = clientId
        self.artifact = artifact
        self.source = source
        self.time = time
        self.seq = seq
        self.index = index
        self.json = json
    }

    /// Where a read continues after this row.
    public var cursor: EventCursor { EventCursor(time: time, clientId: clientId, seq: seq, index: index) }
}

/// A place in the (time, client, seq, index) order of event rows: reads continue after it.
public struct EventCursor: Sendable, Equatable, CustomStringConvertible {
    public var time: Double
    public var clientId: String
    public var seq: Int
    public var index: Int

    public init(time: Double, clientId: String, seq: Int, index: Int) {
        self.time = time
        self.clientId = clientId
        self.seq = seq
        self.index = index
    }

    /// `TIME/CLIENT/SEQ/INDEX` (the time with full precision).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, let time = Double(parts[0]), time.isFinite, !parts[1].isEmpty, let seq = Int(parts[2]), let index = Int(parts[3]) else { return nil }
        self.init(time: time, clientId: String(parts[1]), seq: seq, index: index)
    }

    public var description: String { "\(time)/\(clientId)/\(seq)/\(index)" }
}

/// A read of event rows: one artifact, optionally one source and client, a time range
/// [since, until), in (time, client, seq, index) order, after a cursor, at most `limit` rows.
public struct EventQuery: Sendable, Equatable {
    public var artifact: String
    public var source: String?
    public var clientId: String?
    public var since: Double?
    public var until: Double?
    public var after: EventCursor?
    public var limit: Int

    public init(artifact: String, source: String? = nil, clientId: String? = nil, since: Double? = nil, until: Double? = nil, after: EventCursor? = nil, limit: Int = 10_000) {
        self.artifact = artifact
        self.source = source
        self.clientId = clientId
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }
}
