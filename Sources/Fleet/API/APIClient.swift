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
        var components = URLComponents()
        components.path = "/api/v1" + path
        let items = query.compactMap { key, value in value.map { URLQueryItem(name: key, value: $0) } }.sorted { $0.name < $1.name }
        if !items.isEmpty { components.queryItems = items }
        let (status, data) = try await Connector.request(
            url: config.serverURL, tls: tls, group: group, method: method, path: components.string ?? components.path,
            headers: [("Authorization", "Bearer " + config.apiKey)], body: body)
        guard status == 200 else {
            let message = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["error"] as? String ?? String(decoding: data, as: UTF8.self)
            throw APIError(status: status, message: message)
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw APIError(status: status, message: "unexpected answer from the server: \(error)")
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
