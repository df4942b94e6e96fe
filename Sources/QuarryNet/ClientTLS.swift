import NIOSSL
import VQL

/// How every outbound TLS connection of the network functions decides whom to trust: the system's
/// roots, plus the PEM certificates a query names (`root_ca`), plus — on a fleet agent — the CA the
/// agent pins (`config.ca_certificate`, see `ClientScope`), so a query can reach its own Quarry
/// server as Velociraptor's clients reach theirs; or nobody checked at all when the query asks for
/// `skip_verify`. One function, so http_client, mail and the uploads cannot drift apart.
enum ClientTLS {
    static func configuration(skipVerify: Bool, roots: [String]) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if skipVerify { tls.certificateVerification = .none }
        let certificates = try roots.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }
        if !certificates.isEmpty { tls.additionalTrustRoots = [.certificates(certificates)] }
        return tls
    }

    /// The roots a call trusts besides the system's: its `root_ca` argument and the fleet's CA.
    static func roots(_ ctx: CallContext) -> [String] {
        var roots: [String] = []
        if let given = ctx.string("root_ca"), !given.isEmpty { roots.append(given) }
        if case .dict(let config)? = ctx.env.lookup("config"), case .string(let ca)? = config["ca_certificate"], !ca.isEmpty {
            roots.append(ca)
        }
        return roots
    }
}
