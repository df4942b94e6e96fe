import Foundation
import VQL

/// The quarry version, for `--version`, collector specs, package names and the `config` that
/// queries see.
public enum QuarryVersion {
    public static let current = "0.5.0"
}

/// The `config` variable every collection's queries see, shaped like the client configuration
/// Velociraptor puts in scope: its artifacts read `config.server_urls` (Linux.Remediation.Quarantine
/// allows exactly those frontends), `config.Version.Name` and `config.Labels` (Generic.Client.Info).
/// Only what a query may know goes in: the frontends, the labels, the pinned CA certificate and the
/// program's version — never the enrolment secret or a key.
public enum ClientScope {
    /// The variable's name.
    public static let variable = "config"

    /// `config` for an agent of the fleet at `serverURLs` (each given a trailing slash, as
    /// Velociraptor's configurations have, so `URL + 'server.pem'` names the server's certificate),
    /// or for a process with no fleet (`serverURLs` empty).
    /// `caCertificate` is the CA the agent pins: the network functions trust it besides the
    /// system's roots (Velociraptor's clients do the same with theirs).
    /// `localStorage` is the host's private folder for state that artifacts keep between
    /// collections (the local hash database of Generic.Forensic.LocalHashes).
    public static func config(serverURLs: [String] = [], labels: [String] = [], caCertificate: String? = nil, localStorage: String? = nil) -> Value {
        let urls = serverURLs.map { $0.hasSuffix("/") ? $0 : $0 + "/" }
        let version = Value.dict(Dict([
            ("Name", .string("quarry")), ("Version", .string(QuarryVersion.current)),
            ("BuildTime", .null), ("Commit", .null),
        ]))
        return .dict(Dict([
            ("server_urls", .list(urls.map(Value.string))),
            ("Labels", .list(labels.map(Value.string))),
            ("ca_certificate", caCertificate.map(Value.string) ?? .null),
            ("local_storage", localStorage.map(Value.string) ?? .null),
            ("Version", version),
        ]))
    }

    /// `base` made a private folder (0700) when missing; nil (the artifacts needing it say so)
    /// when it cannot be made or is not a folder owned by this user.
    public static func localStorage(_ base: String) -> String? {
        if mkdir(base, 0o700) != 0, errno != EEXIST { return nil }
        var info = stat()
        guard lstat(base, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid() else { return nil }
        return base
    }
}
