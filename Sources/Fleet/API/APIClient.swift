import FleetCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An analyst's view of the server: JSON calls to the API with the user's key, over TLS pinned to
/// the fleet's CA. Used by the CLI commands and the server-side VQL plugins.
public struct APIClient: Sendable {
    public let config: APIConfig
    let tls: NIOSSLContext
    let group: EventLoopGroup

    public init(config: APIConfig, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.config = config
        self.group = group
        tls = try TLSSetup.clientContext(caCertificate: config.caCertificate, identity: nil)
    }

    public func get<T: Decodable>(_ path: String, query: [String: String?] = [:], as type: T.Type) async throws -> T {
        try await call(.GET, path, query: query, body: nil, as: type)
    }

    public func post<T: Decodable, B: Encodable>(_ path: String, body: B, as type: T.Type) async throws -> T {
        try await call(.POST, path, query: [:], body: try JSONEncoder().encode(body), as: type)
    }

    public func call<T: Decodable>(_ method: HTTPMethod, _ path: String, query: [String: String?], body: Data?, as type: T.Type) async throws -> T {
        let data = try await raw(method, path, query: query, body: body)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw APIError(status: 200, message: "unexpected answer from the server: \(error)")
        }
    }

    /// One call's answer body; an answer other than 200 is thrown as an `APIError` with the server's message.
    func raw(_ method: HTTPMethod, _ path: String, query: [String: String?], body: Data?) async throws -> Data {
        try await raw(method, path, query: query, body: body, accepting: [200]).body
    }

    /// One call's status and body; a status outside `accepting` is thrown as an `APIError`.
    func raw(_ method: HTTPMethod, _ path: String, query: [String: String?], body: Data?, accepting: Set<Int>) async throws -> (status: Int, body: Data) {
        var components = URLComponents()
        components.path = "/api/v1" + path
        let items = query.compactMap { key, value in value.map { URLQueryItem(name: key, value: $0) } }.sorted { $0.name < $1.name }
        if !items.isEmpty { components.queryItems = items }
        let (status, data) = try await Connector.request(
            url: config.serverURL, tls: tls, group: group, method: method, path: components.string ?? components.path,
            headers: [("Authorization", "Bearer " + config.apiKey)], body: body)
        guard accepting.contains(status) else {
            let message = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["error"] as? String ?? String(decoding: data, as: UTF8.self)
            throw APIError(status: status, message: message)
        }
        return (status, data)
    }

    /// Starts a collection; a response action the server holds for a second analyst's approval
    /// comes back as `.awaitingApproval`.
    public func collect(_ body: CollectRequestBody) async throws -> CollectOutcome {
        let (status, data) = try await raw(.POST, "/collect", query: [:], body: try JSONEncoder().encode(body), accepting: [200, 202])
        do {
            return status == 202 ? .awaitingApproval(try JSONDecoder().decode(PendingAction.self, from: data))
                : .started(try JSONDecoder().decode(FlowRecord.self, from: data))
        } catch {
            throw APIError(status: status, message: "unexpected answer from the server: \(error)")
        }
    }

    public func delete<T: Decodable>(_ path: String, query: [String: String?] = [:], as type: T.Type) async throws -> T {
        try await call(.DELETE, path, query: query, body: nil, as: type)
    }

    /// Rows per page when reading every row of a query.
    public static let resultPageRows = 20_000

    /// One page of a results query (JSON lines from the server): up to `rows` rows after `after`
    /// (from the first row when nil). A page shorter than `rows` is the last.
    public func resultsPage(_ query: [String: String?], after: ResultCursor?, rows: Int = APIClient.resultPageRows) async throws -> [ResultRow] {
        var page = query
        page["limit"] = String(rows)
        page["after"] = after?.description
        let data = try await raw(.GET, "/results", query: page, body: nil)
        let decoder = JSONDecoder()
        do {
            return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map { try decoder.decode(ResultRow.self, from: Data($0)) }
        } catch {
            throw APIError(status: 200, message: "unexpected answer from the server: \(error)")
        }
    }

    /// Every row of a results query, page by page.
    public func allResults(_ query: [String: String?]) async throws -> [ResultRow] {
        var all: [ResultRow] = []
        var after: ResultCursor?
        while true {
            let page = try await resultsPage(query, after: after)
            all += page
            guard page.count >= Self.resultPageRows, let last = page.last else { return all }
            after = last.cursor
        }
    }

    /// GET /metrics (Prometheus text).
    public func metrics() async throws -> String {
        let (_, data) = try await Connector.request(url: config.serverURL, tls: tls, group: group, method: .GET, path: "/metrics", headers: [], body: nil)
        return String(decoding: data, as: UTF8.self)
    }
}

/// A refusal or failure reported by the server's API, with its HTTP status.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var message: String
    public var description: String { "server answered \(status): \(message)" }
}
