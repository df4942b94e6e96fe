import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate and its private key, both PEM text, as stored in configs and state directories.
public struct PEMIdentity: Codable, Sendable, Equatable {
    public var certificate: String
    public var privateKey: String
    public init(certificate: String, privateKey: String) {
        self.certificate = certificate
        self.privateKey = privateKey
    }
}

/// A PKI failure (bad PEM, a CSR whose signature does not verify, …).
public struct PKIError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The fleet's own certificate authority: it issues the server's certificate and signs each agent's
/// certificate at enrolment. Every key is ECDSA P-256; certificates are X.509 v3 made in-process with
/// swift-certificates (no openssl command needed).
public struct CertificateAuthority: Sendable {
    public let identity: PEMIdentity
    private let certificate: Certificate
    private let key: Certificate.PrivateKey

    public init(_ identity: PEMIdentity) throws {
        self.identity = identity
        do {
            certificate = try Certificate(pemEncoded: identity.certificate)
            key = try Certificate.PrivateKey(pemEncoded: identity.privateKey)
        } catch {
            throw PKIError("cannot read the CA certificate or key: \(error)")
        }
    }

    /// A new self-signed CA valid for `years`.
    public static func create(commonName: String = "Quarry CA", years: Int = 10) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Quarry")
            CommonName(commonName)
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Double(years) * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return try CertificateAuthority(PEMIdentity(certificate: try certificate.serializeAsPEM().pemString, privateKey: key.pemRepresentation))
    }

    /// The server's certificate: names and IP addresses go in the subject alternative names.
    public func issueServerCertificate(hostnames: [String], ipAddresses: [String], years: Int = 5) throws -> PEMIdentity {
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = hostnames.map { .dnsName($0) }
        for ip in ipAddresses {
            guard let bytes = Self.addressBytes(ip) else { throw PKIError("'\(ip)' is not an IP address") }
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let certificate = try sign(
            publicKey: .init(key.publicKey), commonName: hostnames.first ?? ipAddresses.first ?? "quarry-server", years: years,
            usage: .serverAuth, alternativeNames: names)
        return PEMIdentity(certificate: certificate, privateKey: key.pemRepresentation)
    }

    /// Signs an agent's CSR after checking its self-signature. The certificate's subject is the
    /// client ID the server chose, whatever the CSR asked for. Returns the certificate PEM.
    public func signClientRequest(_ csrPEM: String, clientId: String, years: Int = 5) throws -> String {
        let request: CertificateSigningRequest
        do {
            request = try CertificateSigningRequest(pemEncoded: csrPEM)
        } catch {
            throw PKIError("the certificate signing request is not valid PEM: \(error)")
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw PKIError("the certificate signing request's signature does not verify")
        }
        return try sign(publicKey: request.publicKey, commonName: clientId, years: years, usage: .clientAuth, alternativeNames: [])
    }

    /// A certificate for an analyst or tool that calls the API with a certificate instead of a key.
    public func issueClientCertificate(commonName: String, years: Int = 1) throws -> PEMIdentity {
        let key = P256.Signing.PrivateKey()
        let certificate = try sign(publicKey: .init(key.publicKey), commonName: commonName, years: years, usage: .clientAuth, alternativeNames: [])
        return PEMIdentity(certificate: certificate, privateKey: key.pemRepresentation)
    }

    private func sign(publicKey: Certificate.PublicKey, commonName: String, years: Int, usage: ExtendedKeyUsage.Usage, alternativeNames: [GeneralName]) throws -> String {
        let now = Date()
        let subject = try DistinguishedName {
            OrganizationName("Quarry")
            CommonName(commonName)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Double(years) * 365 * 86400),
            issuer: self.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([usage])
                if !alternativeNames.isEmpty { SubjectAlternativeNames(alternativeNames) }
            },
            issuerPrivateKey: key)
        return try certificate.serializeAsPEM().pemString
    }

    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// Helpers for the agent side: a key pair with its CSR, and reading names out of certificates.
public enum CertificateTools {
    /// A new P-256 key (PEM) and a CSR (PEM) signed with it.
    public static func makeKeyAndRequest(commonName: String) throws -> (privateKey: String, request: String) {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(commonName) }
        let request = try CertificateSigningRequest(
            version: .v1, subject: subject, privateKey: .init(key), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256)
        return (key.pemRepresentation, try request.serializeAsPEM().pemString)
    }

    /// The subject common name of a DER certificate (the client ID for agent certificates).
    public static func commonName(der: [UInt8]) throws -> String {
        try commonName(of: Certificate(derEncoded: der))
    }

    public static func commonName(pem: String) throws -> String {
        try commonName(of: Certificate(pemEncoded: pem))
    }

    /// The serial number as lower-case hex.
    public static func serial(pem: String) throws -> String {
        let certificate = try Certificate(pemEncoded: pem)
        return certificate.serialNumber.bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func commonName(of certificate: Certificate) throws -> String {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return attribute.value.description
            }
        }
        throw PKIError("the certificate has no common name")
    }
}
