import Crypto
import Foundation
import _CryptoExtras

/// The encrypted local storage file of write_crypto_file() and read_crypto_file(): rows kept on a
/// host (events buffered while the server is unreachable, evidence staged for later pickup) that
/// only the holder of one private key can read — not the host's users, not its root, not whoever
/// copies the disk later.
///
/// Layout: the magic `QCRYPT1\n`, then frames of `[type u8][length u32 big-endian][payload]`.
/// A key frame (type 1) starts a segment: JSON naming the scheme and carrying a fresh AES-256
/// content key wrapped to the recipient (RSA-OAEP-SHA256, or ECDH P-256 with HKDF-SHA256 and
/// AES-GCM — the fleet's own keys are P-256). Row frames (type 2) that follow are AES-256-GCM
/// sealed JSON lines (nonce, ciphertext, tag), authenticated with their sequence number in the
/// segment, so frames cannot be reordered or swapped between segments unnoticed. Each writer
/// appends its own segment, so a file outlives restarts without the writer ever holding the
/// private key.
enum CryptoFileFormat {
    static let magic = Array("QCRYPT1\n".utf8)
    static let keyFrame: UInt8 = 1, rowsFrame: UInt8 = 2
    /// The largest frame read back (a writer flushes far smaller ones).
    static let maxFrame = 64 << 20
    static let maxHeader = 64 << 10
    static let hkdfInfo = Array("quarry crypto file key".utf8)

    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    /// The clear header of a segment.
    struct Header: Codable {
        /// "RSA-OAEP-SHA256" or "ECDH-P256-HKDF-SHA256-AESGCM".
        var Scheme: String
        /// The wrapped content key, base64 (RSA: the OAEP block; EC: the AES-GCM combined box).
        var WrappedKey: String
        /// EC only: the ephemeral public key, X9.63, base64.
        var Ephemeral: String?
        /// SHA-256 of the recipient's certificate or public key DER, hex: which key opens it.
        var Recipient: String?
        var Created: String?
    }

    /// A recipient's public key, read from a PEM certificate or public key.
    enum PublicKey {
        case rsa(_RSA.Encryption.PublicKey)
        case p256(P256.KeyAgreement.PublicKey)

        init(pem: String) throws {
            guard let spki = PublicKeyBox.subjectPublicKeyInfo(pem) else {
                throw FormatError(description: "the public key is not a PEM certificate or public key")
            }
            if let key = PublicKeyBox.rsaPublicKey(der: spki) {
                self = .rsa(key)
            } else if let key = try? P256.KeyAgreement.PublicKey(derRepresentation: spki) {
                self = .p256(key)
            } else {
                throw FormatError(description: "the public key is neither RSA nor EC P-256")
            }
        }
    }

    /// A recipient's private key (PEM: PKCS#1 or PKCS#8 RSA, SEC1 or PKCS#8 P-256).
    enum PrivateKey {
        case rsa(_RSA.Encryption.PrivateKey)
        case p256(P256.KeyAgreement.PrivateKey)

        init(pem: String) throws {
            if let key = try? P256.KeyAgreement.PrivateKey(pemRepresentation: pem) {
                self = .p256(key)
            } else if let key = try? PublicKeyBox.rsaPrivateKey(pem) {
                self = .rsa(key)
            } else {
                throw FormatError(description: "the private key is not a PEM RSA or EC P-256 private key")
            }
        }
    }

    /// A fresh content key and the header that carries it, wrapped to `recipient`.
    static func newSegment(recipientPEM: String) throws -> (SymmetricKey, Header) {
        let content = SymmetricKey(size: .bits256)
        let raw = content.withUnsafeBytes { Data($0) }
        var header = Header(Scheme: "", WrappedKey: "", Recipient: PublicKeyBox.fingerprint(recipientPEM),
                            Created: ISO8601DateFormatter().string(from: Date()))
        switch try PublicKey(pem: recipientPEM) {
        case .rsa(let key):
            header.Scheme = "RSA-OAEP-SHA256"
            header.WrappedKey = try key.encrypt(raw, padding: .PKCS1_OAEP_SHA256).base64EncodedString()
        case .p256(let key):
            let ephemeral = P256.KeyAgreement.PrivateKey()
            let wrapping = try keyEncryptionKey(ephemeral.sharedSecretFromKeyAgreement(with: key), ephemeral: ephemeral.publicKey)
            header.Scheme = "ECDH-P256-HKDF-SHA256-AESGCM"
            header.Ephemeral = ephemeral.publicKey.x963Representation.base64EncodedString()
            guard let combined = try AES.GCM.seal(raw, using: wrapping).combined else { throw FormatError(description: "cannot wrap the key") }
            header.WrappedKey = combined.base64EncodedString()
        }
        return (content, header)
    }

    static func keyEncryptionKey(_ secret: SharedSecret, ephemeral: P256.KeyAgreement.PublicKey) -> SymmetricKey {
        secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: ephemeral.x963Representation, sharedInfo: hkdfInfo, outputByteCount: 32)
    }

    /// The content key of a segment, unwrapped with `key`.
    static func contentKey(_ header: Header, with key: PrivateKey) throws -> SymmetricKey {
        guard let wrapped = Data(base64Encoded: header.WrappedKey) else { throw FormatError(description: "the wrapped key is not base64") }
        switch (header.Scheme, key) {
        case ("RSA-OAEP-SHA256", .rsa(let rsa)):
            return SymmetricKey(data: try rsa.decrypt(wrapped, padding: .PKCS1_OAEP_SHA256))
        case ("ECDH-P256-HKDF-SHA256-AESGCM", .p256(let ec)):
            guard let point = header.Ephemeral.flatMap({ Data(base64Encoded: $0) }),
                  let ephemeral = try? P256.KeyAgreement.PublicKey(x963Representation: point) else {
                throw FormatError(description: "the segment's ephemeral key is damaged")
            }
            let wrapping = keyEncryptionKey(try ec.sharedSecretFromKeyAgreement(with: ephemeral), ephemeral: ephemeral)
            return SymmetricKey(data: try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped), using: wrapping))
        default:
            throw FormatError(description: "the segment is sealed with \(header.Scheme), which this private key cannot open")
        }
    }

    /// The authenticated data of the n-th rows frame of a segment.
    static func sequenceData(_ sequence: UInt64) -> Data {
        withUnsafeBytes(of: sequence.bigEndian) { Data($0) }
    }

    static func frame(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [type]
        withUnsafeBytes(of: UInt32(payload.count).bigEndian) { out += $0 }
        return out + payload
    }
}
