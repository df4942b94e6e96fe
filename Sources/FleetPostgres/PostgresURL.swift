import FleetCore
import Foundation
import PostgresNIO

/// Where and how to reach a PostgreSQL database, parsed from a URL.
///
/// Two forms are accepted (scheme `postgres` or `postgresql`):
/// - TCP: `postgres://user[:password]@host[:port]/database` (port 5432 when absent; an IPv6
///   host in brackets);
/// - Unix socket: `postgres:///database?host=/path/to/socketdir&user=NAME` — `host` names the
///   directory holding the server's socket (`.s.PGSQL.<port>`); a `port` parameter picks the
///   socket's number (5432 when absent).
///
/// Query parameters: `user`, `password`, `host`, `port` (each overrides the URL's own part) and
/// `sslmode` = `disable`, `prefer` or `require` (TCP only; `prefer` when absent: TLS when the server
/// offers it, with the certificate verified). User names and passwords may be percent-encoded. The
/// user defaults to `postgres`; the database to the user's name.
public struct PostgresURL: Sendable, Equatable {
    /// How TLS is used on a TCP connection.
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    /// The server's address: a host and port, or the path of a Unix socket.
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public var endpoint: Endpoint
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    /// Parses `url` (see the type's documentation); throws a `StoreError` saying what is wrong.
    public init(_ url: String) throws {
        guard let components = URLComponents(string: url) else { throw StoreError("PostgreSQL URL \(Self.redacted(url)): not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw StoreError("PostgreSQL URL \(Self.redacted(url)): the scheme must be postgres:// or postgresql://")
        }
        var parameters: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard let value = item.value else { throw StoreError("PostgreSQL URL: parameter \(item.name) has no value") }
            parameters[item.name] = value
        }
        let known: Set<String> = ["user", "password", "host", "port", "sslmode"]
        if let unknown = parameters.keys.sorted().first(where: { !known.contains($0) }) {
            throw StoreError("PostgreSQL URL: unknown parameter \(unknown) (known: \(known.sorted().joined(separator: ", ")))")
        }

        user = parameters["user"] ?? components.user?.removingPercentEncoding ?? "postgres"
        password = parameters["password"] ?? components.password?.removingPercentEncoding
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.removingPercentEncoding ?? path
        if database.isEmpty { database = user }
        if database.contains("/") { throw StoreError("PostgreSQL URL: the database name \(database) holds a /") }

        var port = components.port ?? 5432
        if let text = parameters["port"] {
            guard let value = Int(text), (1...65535).contains(value) else { throw StoreError("PostgreSQL URL: port \(text) is not a port number") }
            port = value
        }
        var host = parameters["host"] ?? components.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty {
            throw StoreError("PostgreSQL URL \(Self.redacted(url)): no host (give host@ or ?host=/socket/directory)")
        }
        if host.hasPrefix("/") {
            let directory = host.hasSuffix("/") ? String(host.dropLast()) : host
            endpoint = .unixSocket(path: "\(directory)/.s.PGSQL.\(port)")
        } else {
            endpoint = .tcp(host: host, port: port)
        }

        let mode = parameters["sslmode"] ?? "prefer"
        guard let tls = TLSMode(rawValue: mode) else {
            throw StoreError("PostgreSQL URL: sslmode \(mode) is not one of disable, prefer, require")
        }
        self.tls = tls
    }

    /// The same URL with another database (tests create one database per test this way).
    public func url(database name: String) -> String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.path = "/" + name
        var items = [URLQueryItem(name: "user", value: user)]
        if let password { items.append(URLQueryItem(name: "password", value: password)) }
        switch endpoint {
        case .tcp(let host, let port):
            components.host = host.contains(":") ? "[\(host)]" : host
            components.port = port
        case .unixSocket(let path):
            let directory = (path as NSString).deletingLastPathComponent
            let port = (path as NSString).pathExtension
            items.append(URLQueryItem(name: "host", value: directory))
            items.append(URLQueryItem(name: "port", value: port))
        }
        items.append(URLQueryItem(name: "sslmode", value: tls.rawValue))
        components.queryItems = items
        return components.string ?? ""
    }

    /// The client configuration for PostgresNIO.
    public func clientConfiguration(poolSize: Int) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .tcp(let host, let port):
            let tlsConfiguration: PostgresClient.Configuration.TLS
            switch tls {
            case .disable: tlsConfiguration = .disable
            case .prefer: tlsConfiguration = .prefer(.makeClientConfiguration())
            case .require: tlsConfiguration = .require(.makeClientConfiguration())
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tlsConfiguration)
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: user, password: password, database: database)
        }
        configuration.options.maximumConnections = max(1, poolSize)
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }

    /// `url` with its password replaced, for error messages.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(unparsable)" }
        if components.password != nil { components.password = "xxx" }
        if let items = components.queryItems {
            components.queryItems = items.map { $0.name == "password" ? URLQueryItem(name: "password", value: "xxx") : $0 }
        }
        return components.string ?? "(unparsable)"
    }
}
