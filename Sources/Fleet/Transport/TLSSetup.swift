import Foundation
import NIOCore
import NIOSSL
import NIOTLS
import X509

/// The TLS settings of both ends. TLS 1.3 only; the fleet's CA is the only trust root (the system's
/// store is never consulted). The server asks for a client certificate but accepts a connection
/// without one, which may then only enrol or call the API with a key; a certificate that is offered
/// must chain to the fleet's CA or the handshake fails.
public enum TLSSetup {
    public static func serverConfiguration(identity: PEMIdentity, caCertificate: String) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(identity.certificate.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKey.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv13
        configuration.certificateVerification = .optionalVerification
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caCertificate.utf8)))
        return configuration
    }


    /// A client context pinning the fleet's CA, with the agent's (or analyst's) certificate when it has one.
    public static func clientContext(caCertificate: String, identity: PEMIdentity?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caCertificate.utf8)))
        // Names are checked by ServerIdentityCheck below (IP literals cannot go in SNI).
        configuration.certificateVerification = .noHostnameVerification
        if let identity {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificate.utf8)).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKey.utf8), format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// The subject common name of the peer's certificate (verified against the CA by the handshake).
    static func peerCommonName(_ certificate: NIOSSLCertificate?) -> String? {
        guard let certificate, let der = try? certificate.toDERBytes() else { return nil }
        return try? CertificateTools.commonName(der: der)
    }

    /// Whether a server certificate may serve `host`: it must be issued for server authentication
    /// (so an agent's certificate from the same CA cannot impersonate the server) and name the host.
    static func serverCertificateMatches(_ certificate: NIOSSLCertificate?, host: String) -> Bool {
        guard let certificate, let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return false }
        guard let usage = try? parsed.extensions.extendedKeyUsage, usage.contains(.serverAuth) else { return false }
        guard let names = try? parsed.extensions.subjectAlternativeNames else { return false }
        let address = CertificateAuthority.addressBytes(host)
        for name in names {
            switch name {
            case .dnsName(let dns) where dns.lowercased() == host.lowercased(): return true
            case .ipAddress(let octets) where address.map({ Array(octets.bytes) == $0 }) == true: return true
            default: continue
            }
        }
        return false
    }
}

/// Closes a client connection whose server certificate is not a fleet server certificate for the
/// host dialled. Sits after the TLS handler; acts on the handshake-completed event.
final class ServerIdentityCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let host: String
    init(host: String) { self.host = host }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            let peer = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
            if !TLSSetup.serverCertificateMatches(peer, host: host) {
                context.fireErrorCaught(TransportError("the server's certificate is not a fleet server certificate for \(host)"))
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// A network failure with a readable reason.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
