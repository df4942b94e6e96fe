import Foundation

/// `quarry config generate`: a new CA, the server's certificate, an enrolment secret, server.yaml
/// and the first administrator's api.yaml — everything a fleet needs to start.
public enum FleetSetup {
    public struct Generated: Sendable {
        public var serverConfigPath: String
        public var apiConfigPath: String
    }

    public static func generate(serverURL: String, directory: String, bindAddress: String?, admin: String = "admin") throws -> Generated {
        let address = try ServerAddress(url: serverURL)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let serverPath = directory + "/server.yaml"
        guard !FileManager.default.fileExists(atPath: serverPath) else { throw ConfigError("\(serverPath) exists: refusing to replace a fleet's CA") }
        let ca = try CertificateAuthority.create()
        var hostnames = ["localhost"], addresses = ["127.0.0.1", "::1"]
        if address.isIPAddress { addresses.append(address.host) } else { hostnames.insert(address.host, at: 0) }
        let server = try ca.issueServerCertificate(hostnames: Array(Set(hostnames)).sorted(), ipAddresses: Array(Set(addresses)).sorted())
        let absolute = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        let dataDir = (absolute as NSString).standardizingPath + "/data"
        let bind = bindAddress ?? (address.isIPAddress ? address.host : (address.host == "localhost" ? "127.0.0.1" : "0.0.0.0"))
        var config = ServerConfig(
            serverURL: serverURL, bindAddress: bind, port: address.port, dataDir: dataDir, datastore: "sqlite:" + dataDir + "/fleet.db",
            enrollmentSecret: ConfigFile.randomSecret(), ca: ca.identity, server: server)
        let key = ConfigFile.randomSecret()
        config.initialAdmin = admin
        config.initialAdminKeySHA256 = ConfigFile.sha256Hex(key)
        try ConfigFile.save(config, to: serverPath)
        let apiPath = directory + "/api.yaml"
        try ConfigFile.save(APIConfig(serverURL: serverURL, caCertificate: ca.identity.certificate, user: admin, apiKey: key), to: apiPath)
        return Generated(serverConfigPath: serverPath, apiConfigPath: apiPath)
    }

    /// The agent's config derived from the server's.
    public static func clientConfig(from server: ServerConfig) -> ClientConfig {
        ClientConfig(serverURL: server.serverURL, caCertificate: server.ca.certificate, enrollmentSecret: server.enrollmentSecret)
    }
}
