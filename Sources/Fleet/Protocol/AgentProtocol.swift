import FleetCore
import Foundation

// The agent channel: JSON messages, one per WebSocket text frame, over mutual TLS.
// The agent holds one connection open; the server pushes work down it at once.
//
// Reliability: every batch an agent sends about a flow carries (flow, seq), seq from 1 per flow.
// The agent keeps each batch on disk until the server acknowledges it; the server stores a batch
// at most once (the datastore's (flow, seq) key) and acknowledges duplicates again. Collection
// requests are re-sent on every reconnect until the agent's "running" status arrives; the agent
// ignores requests for flows it already knows.

/// What an agent says to the server.
public enum AgentMessage: Codable, Sendable, Equatable {
    /// On a connection without a client certificate: the enrolment secret and a CSR.
    case enroll(secret: String, csr: String, hostname: String, labels: [String])
    /// First message on a mutually authenticated connection. `isolated` is whether the host is
    /// cut off by Quarry's network isolation now (nil from agents that do not say): the server
    /// keeps it in the client's info, so an isolation the dead man's switch lifted shows as lifted.
    case hello(version: String, queuedBatches: Int, droppedBatches: Int, isolated: Bool? = nil)
    /// One batch about one flow (results, upload parts, log lines, status).
    case batch(WireBatch)
}

/// What the server says to an agent.
public enum ServerMessage: Codable, Sendable, Equatable {
    case enrolled(clientId: String, certificate: String)
    /// The connection is refused (wrong secret, revoked client, …); the agent logs the reason.
    case refused(reason: String)
    /// Run a collection. `definitions` holds the YAML of requested artifacts the server has but
    /// agents may lack (custom ones); built-in artifacts are not sent.
    case collect(flowId: String, request: CollectionRequest, definitions: [String])
    case cancel(flowId: String)
    /// The batch (flow, seq) is stored (or was before); the agent may delete it. A rejected batch is
    /// acknowledged too, with the reason, so a bad batch cannot block the queue.
    case ack(flowId: String, seq: Int, rejected: String?)
    /// The client's monitoring table (the entries that apply to it), sent on connect and on every
    /// change: the agent runs exactly these event artifacts. `definitions` as in `collect`.
    case monitoring(entries: [MonitoringEntry], definitions: [String])
}

/// A batch as it crosses the wire: `IngestBatch` without the client ID (the server takes that from
/// the connection's certificate, never from the message).
public struct WireBatch: Codable, Sendable, Equatable {
    public var flowId: String
    public var seq: Int
    public var payload: WirePayload
    public init(flowId: String, seq: Int, payload: WirePayload) {
        self.flowId = flowId
        self.seq = seq
        self.payload = payload
    }
}

/// Payloads of a wire batch. Upload bytes travel in parts (base64 in JSON); the last part carries
/// the file's digests, which the server checks before it files the upload under its SHA-256.
public enum WirePayload: Codable, Sendable, Equatable {
    case rows(artifact: String, source: String, rows: [String])
    case uploadPart(index: Int, name: String, offset: Int64, data: Data, last: Bool, size: Int64, sha256: String, md5: String)
    case log([String])
    case status(FlowStatus)
}

/// Encodes and decodes channel messages (compact JSON).
public enum Wire {
    public static func encode<T: Encodable>(_ message: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(message)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try JSONDecoder().decode(T.self, from: data)
    }

    /// The protocol version agents announce.
    public static let version = "quarry-agent/1"

    /// The largest WebSocket frame either side sends or accepts. A longer message travels as a
    /// first frame and continuation frames; the server caps whole messages by what it knows of the
    /// peer (small before enrolment). Small frames mean the server never buffers much of a frame
    /// before it can refuse it.
    public static let maxFrameBytes = 64 << 10
}
