import Artifacts
import CZlib
import Crypto
import Foundation
import PrivateFiles
import QuarryDetect

/// An encrypted collection, in the layout Velociraptor's offline collector uses: an outer zip
/// holding `metadata.json` (in clear: the scheme and, for X509, the wrapped key) and `data.zip`,
/// the ordinary collection container, as one WinZip-AES-256 member. Nothing of the evidence shows
/// from outside, not even file names: the inner container is encrypted as a whole. With the
/// password (given, or unwrapped with the investigator's RSA key), `unzip`-style tools and 7-Zip
/// open `data.zip`, and `quarry collection decrypt` writes it back out.
public enum SealedContainer {
    /// The clear part: how the key was protected and what the container is.
    public struct Metadata: Codable, Sendable, Equatable {
        /// "X509" (key wrapped to a certificate) or "Password".
        public var Scheme: String
        /// The content password, RSA-OAEP-SHA256-encrypted to the certificate, base64 (X509 only).
        public var EncryptedPass: String?
        /// SHA-256 of the certificate's DER, hex: which key opens it.
        public var CertificateSHA256: String?
        /// The certificate itself (PEM), as Velociraptor records it.
        public var PublicKey: String?
        public var Hostname: String?
        public var Created: String?
        public var Tool: String?

        /// "X509, collected on web1 at 2026-… by quarry 0.5.0", with what is known.
        public var summary: String {
            [Scheme, Hostname.map { "collected on \($0)" }, Created.map { "at \($0)" }, Tool.map { "by \($0)" }].compactMap { $0 }.joined(separator: ", ")
        }
    }

    /// Why sealing or opening failed.
    public struct SealError: Error, CustomStringConvertible {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// The metadata and content password for `encryption` (nil when it is `.none`): a random
    /// password wrapped to the certificate for X509, the given one otherwise.
    public static func keying(_ encryption: CollectorSpec.Encryption, hostname: String, created: Date) throws -> (metadata: Metadata, password: [UInt8])? {
        var metadata = Metadata(
            Scheme: "Password", EncryptedPass: nil, CertificateSHA256: nil, Hostname: hostname,
            Created: ISO8601DateFormatter().string(from: created), Tool: "quarry \(QuarryVersion.current)")
        switch encryption {
        case .none:
            return nil
        case .password(let text):
            return (metadata, Array(text.utf8))
        case .x509(let pem):
            let password = randomPassword()
            metadata.Scheme = "X509"
            metadata.EncryptedPass = try wrap(password: password, certificatePEM: pem)
            metadata.CertificateSHA256 = PublicKeyBox.fingerprint(pem)
            metadata.PublicKey = pem
            return (metadata, password)
        }
    }

    /// A fresh random content password (64 hex digits: printable, for 7-Zip's prompt).
    public static func randomPassword() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return Array((0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined().utf8)
    }

    /// The password wrapped to `certificatePEM` (a certificate or RSA public key), base64.
    public static func wrap(password: [UInt8], certificatePEM: String) throws -> String {
        do {
            return Data(try PublicKeyBox.wrapKey(password, publicKeyPEM: certificatePEM)).base64EncodedString()
        } catch {
            throw SealError("cannot encrypt to the certificate: \(error)")
        }
    }

    /// The password of an X509 container, unwrapped with the PEM RSA private key.
    public static func unwrap(_ metadata: Metadata, privateKeyPEM: String) throws -> [UInt8] {
        guard metadata.Scheme == "X509", let text = metadata.EncryptedPass, let wrapped = Data(base64Encoded: text) else {
            throw SealError("the container is not encrypted to a certificate (scheme \(metadata.Scheme))")
        }
        do {
            // Quarry wraps with OAEP over SHA-256; other tools' collections may use SHA-1.
            if let password = try? PublicKeyBox.unwrapKey(Array(wrapped), privateKeyPEM: privateKeyPEM, sha1: true) { return password }
            return try PublicKeyBox.unwrapKey(Array(wrapped), privateKeyPEM: privateKeyPEM)
        } catch {
            throw SealError("this key does not open the container (it was encrypted to certificate SHA-256 \(metadata.CertificateSHA256 ?? "unknown")): \(error)")
        }
    }

    /// The metadata of a sealed container; nil for an ordinary (clear) container. Velociraptor
    /// writes metadata.json as a list of one object, and none at all for a password-protected
    /// collection (only the encrypted data.zip): both are understood.
    public static func metadata(path: String) throws -> Metadata? {
        let reader = try ZipReader(path: path)
        guard let data = reader.member("data.zip"), try reader.rawLocation(data).encrypted else { return nil }
        guard reader.member("metadata.json") != nil else {
            return Metadata(Scheme: "Password", EncryptedPass: nil, CertificateSHA256: nil, Hostname: nil, Created: nil, Tool: nil)
        }
        let text = try reader.read("metadata.json", limit: 1 << 20)
        if let list = try? JSONDecoder().decode([Metadata].self, from: text), let first = list.first { return first }
        do {
            return try JSONDecoder().decode(Metadata.self, from: text)
        } catch {
            throw SealError("\(path): metadata.json does not decode: \(error)")
        }
    }

    /// Writes `output` (private, atomically) from the clear container at `plainZip`.
    public static func seal(plainZip: String, output: String, metadata: Metadata, password: [UInt8], mode: mode_t = PrivateFile.privateMode) throws {
        try seal(plainZip: plainZip, output: output, metadata: metadata, password: password, mode: mode, zip64Threshold: 0xFFFF_FFFF)
    }

    static func seal(plainZip: String, output: String, metadata: Metadata, password: [UInt8], mode: mode_t, zip64Threshold: UInt64) throws {
        let input = open(plainZip, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw SealError("cannot read \(plainZip): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0 else { throw SealError("cannot read \(plainZip)") }
        let plainSize = UInt64(info.st_size)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        // A list of one object, as Velociraptor writes it.
        let metadataBytes = Array(try encoder.encode([metadata]))

        let temporary = output + ".partial-\(getpid())"
        let fd = try PrivateFile.replace(temporary, mode: mode)
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temporary) }
        }
        var writer = MemberWriter(fd: fd, path: temporary, zip64Threshold: zip64Threshold)
        // metadata.json, stored in clear.
        let metadataEntry = try writer.addStored(name: "metadata.json", bytes: metadataBytes)
        // data.zip, the whole clear container as one encrypted member.
        var aes = try WinZipAESStream.encrypting(password: password)
        let dataEntry = try writer.beginEncrypted(name: "data.zip", plainSize: plainSize, header: aes.header)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var remaining = plainSize
        var offset: off_t = 0
        while remaining > 0 {
            let n = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, Int(min(UInt64($0.count), remaining)), offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SealError("cannot read \(plainZip): it changed while being encrypted") }
            try aes.encrypt(&buffer, count: n)
            try writer.append(buffer, count: n)
            remaining -= UInt64(n)
            offset += off_t(n)
        }
        try writer.append(aes.authenticationCode(), count: 10)
        try writer.finish(entries: [metadataEntry, dataEntry])
        guard fsync(fd) == 0, rename(temporary, output) == 0 else {
            throw SealError("cannot write \(output): \(String(cString: strerror(errno)))")
        }
        ok = true
    }

    /// Decrypts the `data.zip` of the sealed container at `path` into `output` (private), checking
    /// the authentication code: a container altered after it was written is refused (and nothing
    /// is left at `output`).
    public static func unseal(path: String, password: [UInt8], output: String) throws {
        let reader = try ZipReader(path: path)
        guard let member = reader.member("data.zip") else { throw SealError("\(path) is not an encrypted collection (no data.zip)") }
        let raw = try reader.rawLocation(member)
        guard raw.encrypted, raw.length >= Int64(WinZipAESStream.overhead) else {
            throw SealError("\(path): data.zip is not encrypted; open the container directly")
        }
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw SealError("cannot read \(path)") }
        defer { close(input) }
        let header = try EmbeddedSpec.readExactly(input, at: raw.offset, count: WinZipAESStream.saltLength + 2)
        var aes = try WinZipAESStream(
            password: password, salt: Array(header[0..<WinZipAESStream.saltLength]),
            expectedCheck: Array(header[WinZipAESStream.saltLength...]))
        let fd = try PrivateFile.replace(output)
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(output) }
        }
        var position = raw.offset + Int64(header.count)
        var remaining = raw.length - Int64(WinZipAESStream.overhead)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let n = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, Int(min(Int64($0.count), remaining)), off_t(position)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SealError("\(path) is truncated") }
            try aes.decrypt(&buffer, count: n)
            try PrivateFile.writeAll(fd, buffer[0..<n], path: output)
            position += Int64(n)
            remaining -= Int64(n)
        }
        let code = try EmbeddedSpec.readExactly(input, at: position, count: 10)
        guard code == aes.authenticationCode() else {
            throw SealError("\(path): the encrypted data was altered or damaged (authentication code mismatch); nothing was written")
        }
        guard fsync(fd) == 0 else { throw SealError("cannot write \(output)") }
        ok = true
    }
}
