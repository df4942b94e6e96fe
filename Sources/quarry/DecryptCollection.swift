import ArgumentParser
import Foundation
import Fleet
import QuarryCollector

/// `quarry collection decrypt`: writes the clear container out of an encrypted collection, with the
/// investigator's private key (X509) or the password.
struct DecryptCollection: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt", abstract: "Decrypt an encrypted collection into a clear container.",
        discussion: "Example: quarry collection decrypt Collection-web1-20261201T101500Z.zip --key investigator.key --output web1.zip")
    @Argument(help: "The encrypted collection.") var path: String
    @Option(help: "PEM RSA private key matching the certificate the collector encrypted to.") var key: String?
    @Flag(help: "Read the password from standard input (collections encrypted with a password).") var passwordStdin = false
    @Option(help: "The clear container to write (created 0600).") var output: String

    func run() throws {
        guard let metadata = try SealedContainer.metadata(path: path) else {
            throw ValidationError("\(path) is not encrypted; read it with `quarry collection show`")
        }
        let password = try contentPassword(metadata, of: path, key: key, passwordStdin: passwordStdin)
        try SealedContainer.unseal(path: path, password: password, output: output)
        print("\(output): decrypted (\(metadata.summary))")
    }
}

/// `quarry collection encrypt`: seals a clear container (from `artifacts collect`, say) the way an
/// offline collector does, before it leaves the host.
struct EncryptCollection: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt", abstract: "Encrypt a clear container to a certificate or with a password.",
        discussion: "Example: quarry collection encrypt triage.zip --to investigator.pem --output triage.sealed.zip")
    @Argument(help: "The clear container.") var path: String
    @Option(help: "PEM certificate (or RSA public key) to encrypt to.") var to: String?
    @Flag(help: "Read a password from standard input instead.") var passwordStdin = false
    @Option(help: "The encrypted container to write (created 0600).") var output: String

    func run() throws {
        guard try SealedContainer.metadata(path: path) == nil else { throw ValidationError("\(path) is already encrypted") }
        let encryption: CollectorSpec.Encryption
        if let to {
            encryption = .x509(certificatePEM: try String(contentsOfFile: to, encoding: .utf8))
        } else if passwordStdin {
            let password = try PasswordInput.read(prompt: "", fromStdin: true)
            guard password.count >= 8 else { throw ValidationError("the password needs at least 8 characters") }
            encryption = .password(password)
        } else {
            throw ValidationError("give --to CERT.pem or --password-stdin")
        }
        guard let (metadata, password) = try SealedContainer.keying(encryption, hostname: ProcessInfo.processInfo.hostName, created: Date()) else { return }
        try SealedContainer.seal(plainZip: path, output: output, metadata: metadata, password: password)
        print("\(output): encrypted (\(metadata.Scheme))")
    }
}

/// `quarry collection import`: a container carried by hand becomes a flow on the server (an
/// encrypted one is decrypted here first, into a private temporary file, with --key or the password).
struct ImportCollection: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import a collection container (Quarry's or Velociraptor's) into the server as a flow.",
        discussion: "Example: quarry collection import Collection-web1-20261201T101500Z.zip --key investigator.key")
    @Argument(help: "The container.") var path: String
    @Option(help: "PEM RSA private key, for a container encrypted to a certificate.") var key: String?
    @Flag(help: "Read the password of a password-protected container from standard input.") var passwordStdin = false
    @Option(help: "The host it came from (default: what the container or its file name says).") var hostname: String?
    @Option(help: "Attach the flow to this client instead of matching the host name.") var clientId: String?
    @OptionGroup var api: APIOptions

    func run() throws {
        var upload = path
        var hint = hostname
        if let sealed = try SealedContainer.metadata(path: path) {
            let password = try contentPassword(sealed, of: path, key: key, passwordStdin: passwordStdin)
            upload = NSTemporaryDirectory() + "quarry-import-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).zip"
            try SealedContainer.unseal(path: path, password: password, output: upload)
            hint = hint ?? sealed.Hostname
        }
        defer { if upload != path { unlink(upload) } }
        hint = hint ?? Self.hostname(fromFileName: path)
        let client = try api.client()
        let (file, host, id) = (upload, hint, clientId)
        let outcome = try runBlocking { try await client.streamCollection(path: file, hostname: host, clientId: id) }
        print("imported as flow \(outcome.flowId) of \(outcome.clientId) (\(outcome.hostname)\(outcome.createdClient ? ", a new offline client" : ""))")
        for source in outcome.sources { print("  \(source.artifact)\(source.source.isEmpty ? "" : "/" + source.source): \(source.rows) rows") }
        if outcome.uploads > 0 { print("  uploads: \(outcome.uploads) files") }
    }

    /// HOST from Collection-HOST-YYYYMMDDTHHMMSSZ.zip, the name collectors give their containers.
    static func hostname(fromFileName path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        guard name.hasPrefix("Collection-"), name.hasSuffix(".zip") else { return nil }
        let middle = name.dropFirst("Collection-".count).dropLast(".zip".count)
        guard let dash = middle.lastIndex(of: "-"), dash > middle.startIndex else { return nil }
        return String(middle[..<dash])
    }
}

/// The content password of an encrypted collection: unwrapped with the private key (X509), or
/// asked for (a password-protected one).
func contentPassword(_ metadata: SealedContainer.Metadata, of path: String, key: String?, passwordStdin: Bool) throws -> [UInt8] {
    guard metadata.Scheme == "X509" else { return Array(try PasswordInput.read(prompt: "Password: ", fromStdin: passwordStdin).utf8) }
    guard let key else {
        throw ValidationError("\(path) is encrypted to a certificate (SHA-256 \(metadata.CertificateSHA256 ?? "?")): give its private key with --key")
    }
    return try SealedContainer.unwrap(metadata, privateKeyPEM: try String(contentsOfFile: key, encoding: .utf8))
}
