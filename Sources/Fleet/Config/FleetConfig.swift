import Crypto
import FleetCore
import Foundation
import PrivateFiles
import Yams

/// A config or credentials file that cannot be read or written.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The server's config (`server.yaml`, 0600): where it listens, its datastore, its CA and certificate,
/// and the enrolment secret agents must present.
public struct ServerConfig: Codable, Sendable {
    /// The URL agents and analysts use, e.g. https://127.0.0.1:8443.
    public var serverURL: String
    public var bindAddress: String
    public var port: Int
    /// Where uploads, the SQLite datastore and other server state live.
    public var dataDir: String
    /// `sqlite:PATH` (default `sqlite:DATA_DIR/fleet.db`) or, later, `postgres://…`.
    public var datastore: String
    public var enrollmentSecret: String
    public var ca: PEMIdentity
    public var server: PEMIdentity
    /// Seconds a flow may run past its own timeout before the server records it as lost.
    public var flowGraceSeconds: Double = 60
    /// Default collection timeout for requests that give none.
    public var defaultTimeoutSeconds: Double = 600
    /// The first administrator, added to an empty datastore at start (only the key's SHA-256 is kept).
    public var initialAdmin: String?
    public var initialAdminKeySHA256: String?
    /// Most bytes a flow may upload when its request names no limit (the server refuses parts past it).
    public var maxUploadBytes: Int64 = 64 << 30
    /// Days of client event rows kept; older days are deleted by the scheduler.
    public var eventRetentionDays: Int = 30
    /// What the server accepts from the network: connections, timeouts, sizes, rates, pages.
    public var limits = ServerLimits()
    /// Where alerts are also posted as JSON (e.g. a chat or SOAR hook); none when nil.
    public var alertWebhook: String?
    /// Response actions (artifacts needing REMEDIATION) wait for a second analyst's approval.
    public var responseApprovals = false
    /// Server monitoring artifacts (rules) whose `collect_client()` calls run at once — automatic
    /// response; any other rule's request waits for an analyst as a `Server.Response.Pending` alert.
    public var automaticResponse: [String] = []

    enum CodingKeys: String, CodingKey {
        case serverURL = "server_url", bindAddress = "bind_address", port, dataDir = "data_dir", datastore
        case enrollmentSecret = "enrollment_secret", ca, server, flowGraceSeconds = "flow_grace_seconds"
        case defaultTimeoutSeconds = "default_timeout_seconds", initialAdmin = "initial_admin"
        case initialAdminKeySHA256 = "initial_admin_key_sha256", maxUploadBytes = "max_upload_bytes", limits
        case alertWebhook = "alert_webhook"
        case eventRetentionDays = "event_retention_days"
        case responseApprovals = "response_approvals"
        case automaticResponse = "automatic_response"
    }

    public init(serverURL: String, bindAddress: String, port: Int, dataDir: String, datastore: String, enrollmentSecret: String, ca: PEMIdentity, server: PEMIdentity) {
        self.serverURL = serverURL
        self.bindAddress = bindAddress
        self.port = port
        self.dataDir = dataDir
        self.datastore = datastore
        self.enrollmentSecret = enrollmentSecret
        self.ca = ca
        self.server = server
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverURL = try c.decode(String.self, forKey: .serverURL)
        bindAddress = try c.decodeIfPresent(String.self, forKey: .bindAddress) ?? "127.0.0.1"
        port = try c.decode(Int.self, forKey: .port)
        dataDir = try c.decode(String.self, forKey: .dataDir)
        datastore = try c.decodeIfPresent(String.self, forKey: .datastore) ?? "sqlite:" + dataDir + "/fleet.db"
        enrollmentSecret = try c.decode(String.self, forKey: .enrollmentSecret)
        ca = try c.decode(PEMIdentity.self, forKey: .ca)
        server = try c.decode(PEMIdentity.self, forKey: .server)
        flowGraceSeconds = try c.decodeIfPresent(Double.self, forKey: .flowGraceSeconds) ?? 60
        defaultTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .defaultTimeoutSeconds) ?? 600
        initialAdmin = try c.decodeIfPresent(String.self, forKey: .initialAdmin)
        initialAdminKeySHA256 = try c.decodeIfPresent(String.self, forKey: .initialAdminKeySHA256)
        maxUploadBytes = try c.decodeIfPresent(Int64.self, forKey: .maxUploadBytes) ?? 64 << 30
        limits = try c.decodeIfPresent(ServerLimits.self, forKey: .limits) ?? ServerLimits()
        alertWebhook = try c.decodeIfPresent(String.self, forKey: .alertWebhook)
        eventRetentionDays = try c.decodeIfPresent(Int.self, forKey: .eventRetentionDays) ?? 30
        responseApprovals = try c.decodeIfPresent(Bool.self, forKey: .responseApprovals) ?? false
        automaticResponse = try c.decodeIfPresent([String].self, forKey: .automaticResponse) ?? []
        guard eventRetentionDays >= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .eventRetentionDays, in: c, debugDescription: "event_retention_days must be at least 1")
        }
    }
}

/// What an agent needs to enrol and connect (`client.yaml`): the server URL, the CA certificate it
/// pins (no system trust store is consulted) and the enrolment secret.
public struct ClientConfig: Codable, Sendable {
    public var serverURL: String
    public var caCertificate: String
    public var enrollmentSecret: String
    /// Further frontends sharing the same datastore; the agent moves to the next one when a
    /// connection fails.
    public var extraServerURLs: [String] = []
    /// Labels the agent asks for at enrolment (e.g. from a deployment tool).
    public var labels: [String] = []
    /// Most bytes of unacknowledged results kept on disk; past it the oldest batches are dropped (and reported).
    public var maxQueueBytes: Int64 = 512 << 20
    /// The agent's limits on itself: memory ceiling, CPU budget, cool-down of repeated offenders.
    public var limits = AgentLimits()

    enum CodingKeys: String, CodingKey {
        case serverURL = "server_url", caCertificate = "ca_certificate", enrollmentSecret = "enrollment_secret", labels
        case maxQueueBytes = "max_queue_bytes", extraServerURLs = "extra_server_urls", limits
    }

    /// Every frontend the agent may use, the main one first.
    public var serverURLs: [String] { [serverURL] + extraServerURLs }

    public init(serverURL: String, caCertificate: String, enrollmentSecret: String) {
        self.serverURL = serverURL
        self.caCertificate = caCertificate
        self.enrollmentSecret = enrollmentSecret
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverURL = try c.decode(String.self, forKey: .serverURL)
        caCertificate = try c.decode(String.self, forKey: .caCertificate)
        enrollmentSecret = try c.decode(String.self, forKey: .enrollmentSecret)
        labels = try c.decodeIfPresent([String].self, forKey: .labels) ?? []
        extraServerURLs = try c.decodeIfPresent([String].self, forKey: .extraServerURLs) ?? []
        maxQueueBytes = try c.decodeIfPresent(Int64.self, forKey: .maxQueueBytes) ?? 512 << 20
        limits = try c.decodeIfPresent(AgentLimits.self, forKey: .limits) ?? AgentLimits()
    }
}

/// An analyst's credentials for the API (`api.yaml`, 0600): server URL, pinned CA, user and API key.
public struct APIConfig: Codable, Sendable {
    public var serverURL: String
    public var caCertificate: String
    public var user: String
    public var apiKey: String

    enum CodingKeys: String, CodingKey {
        case serverURL = "server_url", caCertificate = "ca_certificate", user, apiKey = "api_key"
    }

    public init(serverURL: String, caCertificate: String, user: String, apiKey: String) {
        self.serverURL = serverURL
        self.caCertificate = caCertificate
        self.user = user
        self.apiKey = apiKey
    }
}

/// Reading and writing the YAML config files; secrets are written 0600.
public enum ConfigFile {
    public static func load<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("cannot read \(path)")
        }
        do {
            return try YAMLDecoder().decode(T.self, from: text)
        } catch {
            throw ConfigError("\(path): \(error)")
        }
    }

    public static func yaml<T: Encodable>(_ value: T) throws -> String {
        try YAMLEncoder().encode(value)
    }

    /// Writes atomically with mode 0600 (the file holds keys or secrets).
    public static func save<T: Encodable>(_ value: T, to path: String) throws {
        try writeSecret(Data(yaml(value).utf8), to: path)
    }

    /// Created 0600 under a temporary name by the call that makes it, fsynced, renamed into place,
    /// the folder fsynced: no other user can read it at any moment, and a crash leaves a whole file.
    public static func writeSecret(_ data: Data, to path: String) throws {
        do {
            try PrivateFile.write(data, to: path)
        } catch {
            throw ConfigError("\(error)")
        }
    }

    /// A random secret: 32 bytes as lower-case hex.
    public static func randomSecret() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    public static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// Parses `https://host:port` into its parts (the fleet speaks only https).
public struct ServerAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "https", let host = components.host, !host.isEmpty else {
            throw ConfigError("'\(url)' is not an https://HOST:PORT URL")
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 443
    }

    /// Whether the host is an IP literal (then it goes in the certificate as an IP address).
    public var isIPAddress: Bool { CertificateAuthority.addressBytes(host) != nil }
}
