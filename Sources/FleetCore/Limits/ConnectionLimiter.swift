/// Decides whether the server takes one more connection. Two ceilings: all open connections
/// (`maxConnections`: file descriptors and memory are finite), and per peer address the connections
/// that hold no verified client certificate (`maxUnverifiedPerAddress`: a TLS handshake in progress,
/// an enrolment, an analyst's API call). A connection whose certificate chains to the fleet's CA is an
/// agent the fleet made, and many agents may sit behind one NAT address, so it stops counting
/// against its address once verified.
///
/// Pure: the server holds one under a lock and feeds it accepted, verified and closed connections.
public struct ConnectionLimiter: Sendable, Equatable {
    /// The ceilings; 0 means no ceiling.
    public struct Limits: Sendable, Equatable {
        public var maxConnections: Int
        public var maxUnverifiedPerAddress: Int
        public init(maxConnections: Int, maxUnverifiedPerAddress: Int) {
            self.maxConnections = maxConnections
            self.maxUnverifiedPerAddress = maxUnverifiedPerAddress
        }
    }

    /// What to do with a new connection.
    public enum Decision: Sendable, Equatable {
        case accept
        /// Close it at once; the reason is for the log.
        case refuse(String)
    }

    public let limits: Limits
    /// Connections open now.
    public private(set) var open = 0
    /// Unverified connections open now, per address (addresses with none are not kept).
    public private(set) var unverified: [String: Int] = [:]

    public init(_ limits: Limits) {
        self.limits = limits
    }

    /// A connection from `address` was accepted: counts it and says whether to keep it. A refused
    /// connection is not counted (do not report it closed).
    public mutating func opened(address: String) -> Decision {
        if limits.maxConnections > 0, open >= limits.maxConnections {
            return .refuse("\(open) connections open (max_connections \(limits.maxConnections))")
        }
        let fromAddress = unverified[address, default: 0]
        if limits.maxUnverifiedPerAddress > 0, fromAddress >= limits.maxUnverifiedPerAddress {
            return .refuse("\(fromAddress) connections without a client certificate open from \(address) (max_unverified_connections_per_address \(limits.maxUnverifiedPerAddress))")
        }
        open += 1
        unverified[address] = fromAddress + 1
        return .accept
    }

    /// The connection from `address` presented a certificate the fleet's CA signed.
    public mutating func verified(address: String) {
        release(address)
    }

    /// A counted connection closed; `verified` says whether `verified(address:)` was called for it.
    public mutating func closed(address: String, verified: Bool) {
        open = max(0, open - 1)
        if !verified { release(address) }
    }

    private mutating func release(_ address: String) {
        guard let count = unverified[address] else { return }
        unverified[address] = count > 1 ? count - 1 : nil
    }
}
