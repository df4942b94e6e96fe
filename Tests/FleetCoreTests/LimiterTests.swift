import FleetCore
import Testing

/// The server's connection and rate limits, as pure state machines on a fake clock.
@Suite struct LimiterTests {
    @Test func connectionsAreCountedPerAddressUntilVerified() {
        var limiter = ConnectionLimiter(.init(maxConnections: 10, maxUnverifiedPerAddress: 2))
        #expect(limiter.opened(address: "10.0.0.1") == .accept)
        #expect(limiter.opened(address: "10.0.0.1") == .accept)
        guard case .refuse(let reason) = limiter.opened(address: "10.0.0.1") else {
            Issue.record("a third unverified connection from one address was accepted")
            return
        }
        #expect(reason.contains("10.0.0.1") && reason.contains("max_unverified_connections_per_address 2"))
        // Another address is not affected.
        #expect(limiter.opened(address: "10.0.0.2") == .accept)
        // An agent that proved its certificate frees its address's slot; many agents behind one
        // address may then connect.
        limiter.verified(address: "10.0.0.1")
        #expect(limiter.opened(address: "10.0.0.1") == .accept)
        limiter.verified(address: "10.0.0.1")
        limiter.verified(address: "10.0.0.1")
        #expect(limiter.unverified["10.0.0.1"] == nil)
        #expect(limiter.open == 4)
        // Closing a verified connection does not touch the address's count; closing an unverified one does.
        limiter.closed(address: "10.0.0.1", verified: true)
        #expect(limiter.open == 3)
        limiter.closed(address: "10.0.0.2", verified: false)
        #expect(limiter.unverified["10.0.0.2"] == nil && limiter.open == 2)
    }

    @Test func theTotalCeilingHolds() {
        var limiter = ConnectionLimiter(.init(maxConnections: 3, maxUnverifiedPerAddress: 0))
        for index in 0..<3 { #expect(limiter.opened(address: "a\(index)") == .accept) }
        #expect(limiter.opened(address: "b") != .accept)
        // A refused connection was never counted, and a slot comes back when one closes.
        #expect(limiter.open == 3)
        limiter.closed(address: "a0", verified: false)
        #expect(limiter.opened(address: "b") == .accept)
        // 0 means no ceiling.
        var open = ConnectionLimiter(.init(maxConnections: 0, maxUnverifiedPerAddress: 0))
        for _ in 0..<10_000 { #expect(open.opened(address: "x") == .accept) }
    }

    @Test func tokenBucketsRefillOverTime() {
        var limiter = RateLimiter(.init(ratePerSecond: 2, burst: 4))
        for _ in 0..<4 { #expect(limiter.take("a", now: 100) == .allow) }
        #expect(limiter.take("a", now: 100) == .deny(retryAfter: 0.5))
        // Other keys have their own bucket.
        #expect(limiter.take("b", now: 100) == .allow)
        // Half a second brings one token back; ten seconds fill the bucket, no more.
        #expect(limiter.take("a", now: 100.5) == .allow)
        #expect(limiter.take("a", now: 100.5) != .allow)
        for _ in 0..<4 { #expect(limiter.take("a", now: 110) == .allow) }
        #expect(limiter.take("a", now: 110) != .allow)
        // A clock that goes back gives nothing.
        #expect(limiter.take("a", now: 50) != .allow)
        // Per minute: 5 at once, then one every 12 s.
        var refusals = RateLimiter(.perMinute(5))
        for _ in 0..<5 { #expect(refusals.take("x", now: 0) == .allow) }
        guard case .deny(let after) = refusals.take("x", now: 0) else {
            Issue.record("a sixth refusal in the minute was allowed")
            return
        }
        #expect(abs(after - 12) < 1e-6)
        #expect(refusals.take("x", now: 11.9) != .allow)
        #expect(refusals.take("x", now: 12.01) == .allow)
        // A rate of 0 lets everything through.
        var off = RateLimiter(.init(ratePerSecond: 0, burst: 0))
        #expect(off.take("x", now: 0) == .allow)
    }

    @Test func trackedKeysStayBounded() {
        var limiter = RateLimiter(.init(ratePerSecond: 1, burst: 1), maxKeys: 100)
        for index in 0..<10_000 { _ = limiter.take("k\(index)", now: Double(index) / 1000) }
        #expect(limiter.trackedKeys <= 100)
        // Full buckets go first (forgetting them changes nothing); with none full, the idlest half.
        var keeping = RateLimiter(.init(ratePerSecond: 1, burst: 1), maxKeys: 2)
        _ = keeping.take("a", now: 0)
        _ = keeping.take("b", now: 0)
        _ = keeping.take("c", now: 0.5)
        #expect(keeping.trackedKeys == 2)
        _ = keeping.take("d", now: 5)
        #expect(keeping.trackedKeys == 1)
        // "d" is still remembered as empty.
        #expect(keeping.take("d", now: 5) == .deny(retryAfter: 1))
    }

    @Test func auditFieldsAreClipped() {
        let long = String(repeating: "é", count: 10_000)
        let entry = AuditEntry(time: 1, user: long, action: "enrol-refused", target: long, details: long, remote: "1.2.3.4:5")
        let bounded = entry.bounded()
        #expect(bounded.user.utf8.count <= AuditEntry.maxFieldBytes)
        #expect(bounded.target.utf8.count <= AuditEntry.maxFieldBytes && bounded.target.hasSuffix("…(20000 bytes)"))
        #expect(bounded.details.utf8.count <= AuditEntry.maxDetailsBytes)
        #expect(bounded.action == "enrol-refused" && bounded.remote == "1.2.3.4:5")
        #expect(AuditEntry.clip("short", 10) == "short")
    }

    @Test func resultCursorsRoundTrip() {
        let cursor = ResultCursor(flowId: "F.0123456789abcdef", seq: 12, index: 999)
        #expect(cursor.description == "F.0123456789abcdef/12/999")
        #expect(ResultCursor(cursor.description) == cursor)
        for bad in ["", "F.1", "F.1/2", "F.1/x/3", "/1/2", "F.1/1/2/3"] { #expect(ResultCursor(bad) == nil, "\(bad)") }
    }
}
