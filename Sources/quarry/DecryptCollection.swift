import ArgumentParser
import Foundation
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
        let password: [UInt8]
        switch (metadata.Scheme, key) {
        case ("X509", let key?):
            password = try SealedContainer.unwrap(metadata, privateKeyPEM: try String(contentsOfFile: key, encoding: .utf8))
        case ("X509", nil):
            throw ValidationError("\(path) is encrypted to a certificate (SHA-256 \(metadata.CertificateSHA256 ?? "?")): give its private key with --key")
        default:
            password = Array(try PasswordInput.read(prompt: "Password: ", fromStdin: passwordStdin).utf8)
        }
        try SealedContainer.unseal(path: path, password: password, output: output)
        print("\(output): decrypted (\(metadata.Scheme), collected on \(metadata.Hostname) at \(metadata.Created))")
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
