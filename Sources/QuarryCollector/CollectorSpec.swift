import Foundation

/// What an offline collector does when someone on site runs it: the artifacts and parameters the
/// investigator chose, limits, where the container goes and how it is protected. It is built into
/// the collector file (see `EmbeddedSpec`), so the person running it needs no argument and cannot
/// get one wrong.
public struct CollectorSpec: Codable, Sendable, Equatable {
    /// How the container is protected.
    public enum Encryption: Codable, Sendable, Equatable {
        /// A plain container (the evidence is readable by whoever holds the file).
        case none
        /// A random key encrypts the content; the key is wrapped to this PEM certificate or RSA
        /// public key, so only the holder of the private key can read the collection.
        case x509(certificatePEM: String)
        /// The content is encrypted with this password (WinZip AES-256, which 7-Zip opens).
        /// The password travels inside the collector: it protects the container in transit, not
        /// from the person who runs the collector.
        case password(String)
    }

    /// Where the collector sends its container when done: the fleet server, its CA (the TLS
    /// connection is pinned to it) and a one-time upload token.
    public struct Upload: Codable, Sendable, Equatable {
        public var serverURL: String
        public var caCertificate: String
        public var token: String
        public init(serverURL: String, caCertificate: String, token: String) {
            self.serverURL = serverURL
            self.caCertificate = caCertificate
            self.token = token
        }
    }

    /// Artifacts to collect, in order.
    public var artifacts: [String]
    /// Parameter values by name (applied to every artifact that declares the name).
    public var parameters: [String: String] = [:]
    /// YAML of artifact definitions that are not built in (custom ones the artifacts need).
    public var definitions: [String] = []
    /// Cancel the collection after this many seconds.
    public var timeout: Double?
    /// Percent of one CPU core the collection may use.
    public var cpuLimit: Double?
    /// At most this many rows per source.
    public var maxRows: Int?
    /// At most this many bytes of uploaded files.
    public var maxUploadBytes: Int64?
    /// Folder for the container (default: the folder holding the collector).
    public var outputDirectory: String?
    public var encryption: Encryption = .none
    public var upload: Upload?
    /// Who built it and when, for the person running it and for the record in the container.
    public var builtBy: String = ""
    public var builtAt: Date = Date(timeIntervalSince1970: 0)
    /// The quarry version that built it.
    public var version: String = ""

    public init(artifacts: [String]) {
        self.artifacts = artifacts
    }

    /// The file name for a collection of `hostname` at `date`: Collection-HOST-YYYYMMDDTHHMMSSZ.zip
    /// (the host name reduced to characters every file system accepts).
    public static func containerName(hostname: String, date: Date) -> String {
        let host = String(hostname.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }.prefix(64))
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        let stamp = String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        return "Collection-\(host.isEmpty ? "host" : host)-\(stamp).zip"
    }

    /// What the collector will do, in words, for `--help` and the build summary.
    public var explanation: String {
        var lines = ["This Quarry offline collector collects, on the computer it runs on:"]
        for name in artifacts { lines.append("  - \(name)") }
        for (key, value) in parameters.sorted(by: { $0.key < $1.key }) { lines.append("    with \(key) = \(value)") }
        if let timeout { lines.append("It stops after \(Int(timeout)) seconds.") }
        if let cpuLimit { lines.append("It uses at most \(Int(cpuLimit))% of one CPU core.") }
        lines.append("It writes one file, Collection-HOSTNAME-TIMESTAMP.zip, in \(outputDirectory ?? "the folder holding the collector").")
        switch encryption {
        case .none: lines.append("The file is not encrypted.")
        case .x509: lines.append("The file is encrypted: only the investigator's private key can open it.")
        case .password: lines.append("The file is encrypted with a password the investigator holds.")
        }
        if let upload { lines.append("When done it sends the collection to \(upload.serverURL) (and keeps the file).") }
        lines.append("Run it with no argument (as root to see everything). Built \(ISO8601DateFormatter().string(from: builtAt))\(builtBy.isEmpty ? "" : " by \(builtBy)"), quarry \(version).")
        return lines.joined(separator: "\n")
    }
}
