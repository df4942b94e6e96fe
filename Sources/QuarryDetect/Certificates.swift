import Crypto
import Foundation
import SwiftASN1
import VQL
import _CryptoExtras

/// parse_x509(), parse_pkcs7(), pk_encrypt() and pk_decrypt(): certificates and signed data
/// described as dicts, and public-key encryption of evidence with a certificate.
public enum CertificateFunctions {
    public static var all: [FunctionDeclaration] { [parseX509, parsePKCS7, pkEncrypt, pkDecrypt] }

    public static let parseX509 = FunctionDeclaration(
        name: "parse_x509",
        summary: "Describes X.509 certificates (PEM, or DER one after another): Subject, Issuer, SerialNumber, NotBefore, NotAfter, key usage, names, public key and SHA1/SHA256 fingerprints. A list, one dict per certificate.",
        arguments: [ArgumentSpec("data", .string, required: true, "PEM text or DER bytes.")],
        returns: .list,
        examples: ["SELECT parse_x509(data=read_file(filename='/etc/ssl/certs/ca-certificates.crt', length=100000))[0].Subject AS FirstCA FROM scope()"]
    ) { ctx in
        let data = ctx.bytes("data") ?? []
        let (certificates, errors) = X509Decoder.certificates(in: data)
        for error in errors.prefix(3) { ctx.context.logOnce(.warning, "parse_x509: \(error)") }
        if certificates.isEmpty && errors.isEmpty && !data.isEmpty { ctx.context.logOnce(.warning, "parse_x509: no certificate in the data") }
        return .list(certificates.map { .dict($0) })
    }

    public static let parsePKCS7 = FunctionDeclaration(
        name: "parse_pkcs7",
        summary: "Describes PKCS#7 / CMS signed data (DER or PEM): content type, digest algorithms, the certificates it carries and its signers (issuer, serial, algorithms, signing time).",
        arguments: [ArgumentSpec("data", .string, required: true, "DER bytes or PEM text of the signed data.")],
        returns: .dict,
        examples: ["SELECT parse_pkcs7(data=unhex(string='3000')) AS Bad FROM scope() WHERE NOT Bad"]
    ) { ctx in
        let data = ctx.bytes("data") ?? []
        guard let der = X509Decoder.derBlocks(data, label: nil).first else {
            ctx.context.logOnce(.warning, "parse_pkcs7: no signed data found")
            return .null
        }
        do {
            return .dict(try PKCS7Decoder.signedData(der))
        } catch {
            ctx.context.logOnce(.warning, "parse_pkcs7: \(error)")
            return .null
        }
    }

    public static let pkEncrypt = FunctionDeclaration(
        name: "pk_encrypt",
        summary: "Encrypts data for the holder of an RSA key (scheme X509 or RSA): a random AES-256-GCM key encrypts the data and RSA-OAEP (SHA-256) wraps that key. public_key is a PEM certificate or public key. Output: 'QPK1', key length (2 bytes, big-endian), wrapped key, 12-byte nonce, ciphertext and tag. PGP and signing are not supported.",
        arguments: [
            ArgumentSpec("data", .string, required: true, "The data to encrypt."),
            ArgumentSpec("public_key", .string, "PEM certificate or public key to encrypt for."),
            ArgumentSpec("signing_key", .string, "Not supported (logged)."),
            ArgumentSpec("scheme", .string, "X509 (default) or RSA; PGP is not supported."),
        ],
        returns: .string,
        examples: [roundTripExample]
    ) { ctx in
        guard checkScheme(ctx), let pem = ctx.string("public_key") else {
            if ctx.string("public_key") == nil { ctx.context.logOnce(.error, "pk_encrypt: public_key is required") }
            return .null
        }
        do {
            return .bytes(try PublicKeyBox.seal(ctx.bytes("data") ?? [], publicKeyPEM: pem))
        } catch {
            ctx.context.logOnce(.error, "pk_encrypt: \(error)")
            return .null
        }
    }

    public static let pkDecrypt = FunctionDeclaration(
        name: "pk_decrypt",
        summary: "Decrypts what pk_encrypt() produced, with the PEM RSA private key (PKCS#1 or PKCS#8). NULL, logged, when the key does not fit or the data was altered.",
        arguments: [
            ArgumentSpec("data", .string, required: true, "The encrypted data."),
            ArgumentSpec("private_key", .string, "PEM RSA private key."),
            ArgumentSpec("signing_key", .string, "Not supported (logged)."),
            ArgumentSpec("scheme", .string, "RSA (default) or X509; PGP is not supported."),
        ],
        returns: .string,
        examples: [roundTripExample]
    ) { ctx in
        guard checkScheme(ctx), let pem = ctx.string("private_key") else {
            if ctx.string("private_key") == nil { ctx.context.logOnce(.error, "pk_decrypt: private_key is required") }
            return .null
        }
        do {
            return .string(bytes: try PublicKeyBox.open(ctx.bytes("data") ?? [], privateKeyPEM: pem))
        } catch {
            ctx.context.logOnce(.error, "pk_decrypt: \(error)")
            return .null
        }
    }

    /// A throwaway 1024-bit key pair (small enough to read; use 2048 bits or more for evidence).
    static let exampleKeys = """
        LET PublicKey <= '-----BEGIN PUBLIC KEY-----\\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCnk4isFBla0eFd6c+CZ5FrPhdR\\nfKPcqr2iSYUiXhC3zN5c++SbkhdZRxtFQFjBn7bibiUT21UjmHZOZTY7bQMFx1mz\\nZkvsvR5krX2xaJ470nxeLBNLm7/zqDmdRXkq+R0bGHScwIBHEv5sZY3zECHWVciz\\nJY4gSXwLlNfusFXY/QIDAQAB\\n-----END PUBLIC KEY-----'
        LET PrivateKey <= '-----BEGIN PRIVATE KEY-----\\nMIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAKeTiKwUGVrR4V3p\\nz4JnkWs+F1F8o9yqvaJJhSJeELfM3lz75JuSF1lHG0VAWMGftuJuJRPbVSOYdk5l\\nNjttAwXHWbNmS+y9HmStfbFonjvSfF4sE0ubv/OoOZ1FeSr5HRsYdJzAgEcS/mxl\\njfMQIdZVyLMljiBJfAuU1+6wVdj9AgMBAAECgYAKm996LWeRhVoELQozEkV1iZ/G\\nS+K/1Jtey9K+4z+hszmcn2HQq4YI4+SJFNLJp0fXu+ti/267ayqKOgQd7P/U4ofy\\nSdUZzi/RGSCwO0NoKORi9mWT/F294fdulPnrfHjeWhkqHpRxAzGMeIKPVZReSFiB\\nxEBJbA0z1jP8dJTXDQJBAN6STJ65DRy00eHNHwih41b90awIwqoMF1cJnOA45DdG\\nwqAX1JnBJ26heyHd2IDUqPJJ3/aJVV2gtNR0Mv2S3OsCQQDAvrZzNB9I8VxwoZ4p\\ntesBWmaRKS1SGOmZ2kOgBZHS6CBirF0NmXL2NNtrHQRG4dMy02kx+iNxN5b1N5Nv\\nDoe3AkEAwP3EmGDHYNvdndjaDwco9NZ0B6M1AHQpjNwV/kr2gIPH4T+opoXY5lH5\\nTf1qbRN5R1YNcF3W+q+N/SagzEWbbwJBAKDyX53hZ0JcsUkn28+OpfdSSpVqYfrM\\n7LvZQ2DrZbJMvUZIEcfaW+H1j0dpSnn59obZfF0MN+5Bch+/0bAJ3Q8CQGy6Soqt\\njGFVUXEJOmdmMkd48xo5doG2bIq2CGhOaABSTcpDv+sswa1MbI8q7dAusCKKbjP3\\n15N6XvK8I1wrv3s=\\n-----END PRIVATE KEY-----'
        """

    static let roundTripExample = exampleKeys + """

        SELECT pk_decrypt(data=pk_encrypt(data='evidence', public_key=PublicKey), private_key=PrivateKey) AS Plain FROM scope()
        """

    static func checkScheme(_ ctx: CallContext) -> Bool {
        if ctx.has("signing_key") { ctx.context.logOnce(.warning, "\(ctx.name): signing_key is not supported and was ignored") }
        let scheme = (ctx.string("scheme") ?? "x509").lowercased()
        guard scheme == "x509" || scheme == "rsa" else {
            ctx.context.logOnce(.error, "\(ctx.name): scheme '\(scheme)' is not supported (X509 or RSA)")
            return false
        }
        return true
    }
}

/// Hybrid public-key encryption: AES-256-GCM for the data, RSA-OAEP-SHA256 for its key. Also used by
/// the offline collector to wrap a container's key to the investigator's certificate.
public enum PublicKeyBox {
    struct BoxError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static let magic: [UInt8] = Array("QPK1".utf8)

    static func seal(_ data: [UInt8], publicKeyPEM: String) throws -> [UInt8] {
        let key = try rsaPublicKey(publicKeyPEM)
        let symmetric = SymmetricKey(size: .bits256)
        let wrapped = try key.encrypt(symmetric.withUnsafeBytes { Data($0) }, padding: .PKCS1_OAEP_SHA256)
        let sealed = try AES.GCM.seal(data, using: symmetric)
        var out = magic
        out.append(UInt8(wrapped.count >> 8))
        out.append(UInt8(wrapped.count & 0xFF))
        out += wrapped
        out += sealed.nonce.withUnsafeBytes { Array($0) }
        out += sealed.ciphertext
        out += sealed.tag
        return out
    }

    /// A short secret (a key or password) encrypted with RSA-OAEP-SHA256 to a PEM certificate or public key.
    public static func wrapKey(_ secret: [UInt8], publicKeyPEM: String) throws -> [UInt8] {
        Array(try rsaPublicKey(publicKeyPEM).encrypt(Data(secret), padding: .PKCS1_OAEP_SHA256))
    }

    /// What `wrapKey` encrypted, with the PEM RSA private key (PKCS#1 or PKCS#8).
    /// `sha1` reads keys wrapped with OAEP over SHA-1 instead.
    public static func unwrapKey(_ wrapped: [UInt8], privateKeyPEM: String, sha1: Bool = false) throws -> [UInt8] {
        Array(try rsaPrivateKey(privateKeyPEM).decrypt(Data(wrapped), padding: sha1 ? .PKCS1_OAEP : .PKCS1_OAEP_SHA256))
    }

    /// SHA-256 of the first DER block (certificate or key) of a PEM text, hex; nil when there is none.
    public static func fingerprint(_ pem: String) -> String? {
        guard let der = X509Decoder.derBlocks(Array(pem.utf8), label: nil).first else { return nil }
        return SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
    }

    static func rsaPrivateKey(_ pem: String) throws -> _RSA.Encryption.PrivateKey {
        guard let der = X509Decoder.derBlocks(Array(pem.utf8), label: nil).first,
              let key = try? _RSA.Encryption.PrivateKey(unsafeDERRepresentation: der) else {
            throw BoxError(message: "the private key is not a PEM RSA private key")
        }
        return key
    }

    static func open(_ data: [UInt8], privateKeyPEM: String) throws -> [UInt8] {
        guard data.count > 6, Array(data.prefix(4)) == magic else { throw BoxError(message: "not data from pk_encrypt") }
        let keyLength = Int(data[4]) << 8 | Int(data[5])
        guard data.count >= 6 + keyLength + 12 + 16 else { throw BoxError(message: "truncated data") }
        let wrapped = Data(data[6..<(6 + keyLength)])
        let nonce = try AES.GCM.Nonce(data: data[(6 + keyLength)..<(6 + keyLength + 12)])
        let body = data[(6 + keyLength + 12)...]
        let key = try rsaPrivateKey(privateKeyPEM)
        let symmetric = SymmetricKey(data: try key.decrypt(wrapped, padding: .PKCS1_OAEP_SHA256))
        let box = try AES.GCM.SealedBox(nonce: nonce, ciphertext: body.dropLast(16), tag: body.suffix(16))
        return Array(try AES.GCM.open(box, using: symmetric))
    }

    /// The RSA key of a PEM certificate or public key.
    static func rsaPublicKey(_ pem: String) throws -> _RSA.Encryption.PublicKey {
        guard let spki = subjectPublicKeyInfo(pem) else {
            throw BoxError(message: pem.contains("BEGIN CERTIFICATE") ? "public_key: the certificate does not decode"
                                                                       : "public_key is not a PEM certificate or RSA public key")
        }
        guard let key = rsaPublicKey(der: spki) else {
            throw BoxError(message: pem.contains("BEGIN CERTIFICATE") ? "public_key: the certificate's key is not RSA"
                                                                       : "public_key is not a PEM certificate or RSA public key")
        }
        return key
    }

    static let rsaEncryptionOID: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 1]

    /// An RSA public key from SubjectPublicKeyInfo or PKCS#1 RSAPublicKey DER; nil for anything
    /// else. The modulus and exponent are read here and handed over as numbers: swift-crypto's
    /// DER constructor frees its key twice when BoringSSL refuses the input (an abort on any
    /// EC or malformed key), so hostile input never reaches it.
    static func rsaPublicKey(der: [UInt8]) -> _RSA.Encryption.PublicKey? {
        guard let root = try? DER.parse(der), let top = try? X509Decoder.children(root), top.count == 2 else { return nil }
        var pkcs1 = root
        if top[0].identifier == .sequence {
            // SubjectPublicKeyInfo: the algorithm must be rsaEncryption; the key is the BIT STRING's content.
            guard let algorithm = try? X509Decoder.children(top[0]), let oid = algorithm.first,
                  (try? ASN1ObjectIdentifier(derEncoded: oid)) == rsaEncryptionOID,
                  top[1].identifier == .bitString, let bits = X509Decoder.primitive(top[1]), bits.first == 0,
                  let inner = try? DER.parse(Array(bits.dropFirst())) else { return nil }
            pkcs1 = inner
        }
        guard let numbers = try? X509Decoder.children(pkcs1), numbers.count == 2,
              numbers.allSatisfy({ $0.identifier == .integer }),
              let n = X509Decoder.primitive(numbers[0]), let e = X509Decoder.primitive(numbers[1]),
              n.count >= 64, n.count <= 1025, !e.isEmpty, e.count <= 8 else { return nil }
        return try? _RSA.Encryption.PublicKey(n: Array(n), e: Array(e))
    }

    /// The SubjectPublicKeyInfo DER of a PEM certificate, or the first DER block of a public key PEM.
    static func subjectPublicKeyInfo(_ pem: String) -> [UInt8]? {
        guard pem.contains("BEGIN CERTIFICATE") else { return X509Decoder.derBlocks(Array(pem.utf8), label: nil).first }
        guard let der = X509Decoder.derBlocks(Array(pem.utf8), label: "CERTIFICATE").first,
              let root = try? DER.parse(der), let top = try? X509Decoder.children(root), let first = top.first,
              var tbs = try? X509Decoder.children(first) else { return nil }
        if let version = tbs.first, version.identifier.tagClass == .contextSpecific { tbs.removeFirst() }
        guard tbs.count > 5 else { return nil }
        return Array(tbs[5].encodedBytes)
    }
}

/// PKCS#7 / CMS SignedData as a dict (RFC 5652), read from the ASN.1 tree.
enum PKCS7Decoder {
    static let contentTypes: [String: String] = [
        "1.2.840.113549.1.7.1": "Data", "1.2.840.113549.1.7.2": "SignedData", "1.2.840.113549.1.7.3": "EnvelopedData",
        "1.3.6.1.4.1.311.2.1.4": "SpcIndirectDataContent", "1.2.840.113549.1.9.16.1.4": "TSTInfo",
    ]

    static func signedData(_ der: [UInt8]) throws -> Dict {
        let root = try BER.parse(der)
        let info = try X509Decoder.children(root)
        guard info.count >= 2, let type = X509Decoder.objectIdentifier(info[0]) else {
            throw X509Decoder.DecodeError(message: "not a PKCS#7 ContentInfo")
        }
        guard type == "1.2.840.113549.1.7.2", let signed = try X509Decoder.children(info[1]).first else {
            throw X509Decoder.DecodeError(message: "content type \(contentTypes[type] ?? type) is not SignedData")
        }
        var parts = try X509Decoder.children(signed)
        guard parts.count >= 3 else { throw X509Decoder.DecodeError(message: "truncated SignedData") }
        var result = Dict()
        result["ContentType"] = .string("SignedData")
        result["Version"] = X509Decoder.integer(parts[0]).map { .int($0) } ?? .null
        let digests = ((try? X509Decoder.children(parts[1])) ?? []).compactMap(X509Decoder.algorithmOID)
        result["DigestAlgorithms"] = .list(digests.map { .string(X509Decoder.digestNames[$0] ?? $0) })
        let inner = (try? X509Decoder.children(parts[2]))?.first.flatMap(X509Decoder.objectIdentifier)
        result["EncapsulatedContentType"] = inner.map { .string(contentTypes[$0] ?? $0) } ?? .null
        parts.removeFirst(3)
        var certificates: [Dict] = []
        var signers: [Dict] = []
        for part in parts {
            if part.identifier.tagClass == .contextSpecific && part.identifier.tagNumber == 0 {
                for cert in ((try? X509Decoder.children(part)) ?? []).prefix(1000) {
                    if let decoded = try? X509Decoder.certificate(Array(cert.encodedBytes)) { certificates.append(decoded) }
                }
            } else if part.identifier == .set {
                for info in ((try? X509Decoder.children(part)) ?? []).prefix(1000) {
                    if let signer = signer(info, certificates: certificates) { signers.append(signer) }
                }
            }
        }
        result["Certificates"] = .list(certificates.map { .dict($0) })
        result["Signers"] = .list(signers.map { .dict($0) })
        return result
    }

    static func signer(_ node: ASN1Node, certificates: [Dict]) -> Dict? {
        guard let parts = try? X509Decoder.children(node), parts.count >= 5 else { return nil }
        var signer = Dict()
        signer["Version"] = X509Decoder.integer(parts[0]).map { .int($0) } ?? .null
        var issuer = "", serial = ""
        if parts[1].identifier == .sequence, let id = try? X509Decoder.children(parts[1]), id.count >= 2 {
            issuer = X509Decoder.distinguishedName(id[0])
            serial = X509Decoder.decimal(X509Decoder.primitive(id[1]) ?? [])
            signer["IssuerName"] = .string(issuer)
            signer["SerialNumber"] = .string(serial)
        } else {
            signer["SubjectKeyId"] = .string(X509Decoder.hexString(Array(X509Decoder.primitive(parts[1]) ?? [])))
        }
        let digest = X509Decoder.algorithmOID(parts[2]) ?? ""
        signer["DigestAlgorithm"] = .string(X509Decoder.digestNames[digest] ?? digest)
        var index = 3
        if parts[index].identifier.tagClass == .contextSpecific && parts[index].identifier.tagNumber == 0 {
            for attribute in (try? X509Decoder.children(parts[index])) ?? [] {
                guard let pair = try? X509Decoder.children(attribute), pair.count == 2,
                      let oid = X509Decoder.objectIdentifier(pair[0]), let value = (try? X509Decoder.children(pair[1]))?.first else { continue }
                switch oid {
                case "1.2.840.113549.1.9.5": signer["SigningTime"] = X509Decoder.time(value)
                case "1.2.840.113549.1.9.4": signer["MessageDigest"] = .string(X509Decoder.hexString(Array(X509Decoder.primitive(value) ?? [])))
                case "1.2.840.113549.1.9.3":
                    signer["ContentType"] = X509Decoder.objectIdentifier(value).map { .string(contentTypes[$0] ?? $0) } ?? .null
                default: break
                }
            }
            index += 1
        }
        if index < parts.count {
            let algorithm = X509Decoder.algorithmOID(parts[index]) ?? ""
            signer["SignatureAlgorithm"] = .string(X509Decoder.digestNames[algorithm] ?? X509Decoder.signatureName(algorithm))
        }
        let match = certificates.first { $0["Issuer"]?.stringValue == issuer && $0["SerialNumber"]?.stringValue == serial }
        signer["Subject"] = match?["Subject"] ?? .null
        return signer
    }
}
