import FleetCore
import Foundation
import VQL

extension APIClient {
    /// One page of event rows (GET /events): up to `rows` rows after `after`. A page shorter than
    /// `rows` is the last stored so far.
    public func eventsPage(_ query: [String: String?], after: EventCursor?, rows: Int = 20_000) async throws -> [EventRow] {
        var page = query
        page["limit"] = String(rows)
        page["after"] = after?.description
        let data = try await raw(.GET, "/events", query: page, body: nil)
        let decoder = JSONDecoder()
        do {
            return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map { try decoder.decode(EventRow.self, from: Data($0)) }
        } catch {
            throw APIError(status: 200, message: "unexpected answer from the server: \(error)")
        }
    }

    /// The monitoring table.
    public func monitoringTable() async throws -> [MonitoringEntry] {
        try await get("/monitoring", as: [MonitoringEntry].self)
    }

    /// The server monitoring table.
    public func serverMonitoringTable() async throws -> [MonitoringEntry] {
        try await get("/server-monitoring", as: [MonitoringEntry].self)
    }

    /// How the server monitoring table's artifacts fare on the frontend that answers.
    public func serverMonitoringStatus() async throws -> [ServerMonitorStatus] {
        try await get("/server-monitoring/status", as: [ServerMonitorStatus].self)
    }
}

/// Event rows as VQL values: the row's own columns after `ClientId` and `_ts` (when the server
/// received it), as Velociraptor's monitoring() shows them. Rows of the server's own event
/// artifacts (stored under the client ID `server`) keep their own ClientId column when they have
/// one: a detection's row names the client it is about.
public enum EventRows {
    public static func value(_ row: EventRow) -> Value {
        let parsed = try? JSONParser.parse(row.json)
        var client = Value.string(row.clientId)
        if row.clientId == EventStream.serverClientId, case .dict(let dict)? = parsed, let own = dict["ClientId"], case .string = own { client = own }
        var pairs: [(String, Value)] = [("ClientId", client), ("_ts", .timestamp(Timestamp(seconds: row.time)))]
        if case .dict(let dict)? = parsed {
            for key in dict.keys where key != "ClientId" && key != "_ts" { pairs.append((key, dict[key] ?? .null)) }
        }
        return .dict(Dict(pairs))
    }

    /// A time given as seconds since 1970, an RFC 3339 / ISO 8601 time, or an age ("90s", "15m",
    /// "2h", "7d": that long before `now`).
    public static func parseTime(_ text: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        if let seconds = Double(text), seconds.isFinite { return seconds }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        if let unit = text.last.flatMap({ units[$0] }), let count = Double(text.dropLast()), count.isFinite, count >= 0 { return now - count * unit }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime], [.withFullDate]] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        }
        return nil
    }
}

extension APIClient {
    /// Imports a clear collection container as a finished flow (`POST /collections/import`). The
    /// file is mapped, not read, into memory before it is sent.
    /// Sends a container of any size in pieces read from disk (memory stays at one piece), with
    /// resume after a lost connection: a one-time upload token bound to `clientId` when given,
    /// then the collectors' upload path.
    public func streamCollection(path: String, hostname: String?, clientId: String?,
                                 progress: @Sendable (Int64, Int64) -> Void = { _, _ in }) async throws -> ImportOutcome {
        struct TokenRequest: Encodable, Sendable { var hours: Double; var client_id: String? }
        let grant = try await post("/collections/upload-tokens", body: TokenRequest(hours: 24, client_id: clientId), as: UploadTokenGrant.self)
        var uploader = try CollectionUploader(serverURL: config.serverURL, caCertificate: config.caCertificate, token: grant.token, group: group)
        uploader.pieceBytes = 2 << 20  // measured: a 160 MiB container peaked at 66 MiB RSS (8 MiB pieces: 104 MiB)
        return try await uploader.upload(path: path, hostname: hostname, progress: progress)
    }

    /// Sends a container in one request (`POST /collections/import`); for small containers and
    /// for tools that speak only the API.
    public func importCollection(path: String, hostname: String?, clientId: String?) async throws -> ImportOutcome {
        let body = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        let data = try await raw(.POST, "/collections/import", query: ["hostname": hostname, "client_id": clientId], body: body)
        do {
            return try JSONDecoder().decode(ImportOutcome.self, from: data)
        } catch {
            throw APIError(status: 200, message: "unexpected answer from the server: \(error)")
        }
    }
}
