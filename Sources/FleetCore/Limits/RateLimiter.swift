/// Token buckets per key (a peer address, usually): each key may spend `burst` at once and earns
/// `ratePerSecond` back over time. The server asks before serving a request or logging a refused
/// enrolment; a key out of tokens is told how long to wait.
///
/// Pure, with the time passed in (tested with a fake clock). Memory is bounded: past `maxKeys`
/// keys, full buckets are forgotten first (forgetting a full bucket changes nothing), then the
/// longest idle ones.
public struct RateLimiter: Sendable {
    /// How fast tokens come back and how many a key may hold.
    public struct Rule: Sendable, Equatable {
        public var ratePerSecond: Double
        public var burst: Double
        public init(ratePerSecond: Double, burst: Double) {
            self.ratePerSecond = ratePerSecond
            self.burst = burst
        }

        /// `count` per minute, all of them usable at once.
        public static func perMinute(_ count: Double) -> Rule { Rule(ratePerSecond: count / 60, burst: count) }
    }

    /// The answer for one request.
    public enum Decision: Sendable, Equatable {
        case allow
        /// Refused; a token is back after this many seconds.
        case deny(retryAfter: Double)
    }

    private struct Bucket: Sendable {
        var tokens: Double
        var updated: Double
    }

    public let rule: Rule
    public let maxKeys: Int
    private var buckets: [String: Bucket] = [:]

    /// A rule with a rate of 0 or less lets everything through.
    public init(_ rule: Rule, maxKeys: Int = 100_000) {
        self.rule = rule
        self.maxKeys = max(1, maxKeys)
    }

    /// Keys tracked now.
    public var trackedKeys: Int { buckets.count }

    /// Takes `cost` tokens from `key` at time `now` (seconds), if it has them.
    public mutating func take(_ key: String, now: Double, cost: Double = 1) -> Decision {
        guard rule.ratePerSecond > 0 else { return .allow }
        var bucket = buckets[key] ?? Bucket(tokens: rule.burst, updated: now)
        // A clock that went back gives nothing and takes nothing.
        let elapsed = max(0, now - bucket.updated)
        bucket.tokens = min(rule.burst, bucket.tokens + elapsed * rule.ratePerSecond)
        bucket.updated = max(bucket.updated, now)
        let decision: Decision
        if bucket.tokens >= cost {
            bucket.tokens -= cost
            decision = .allow
        } else {
            decision = .deny(retryAfter: (cost - bucket.tokens) / rule.ratePerSecond)
        }
        if buckets[key] == nil, buckets.count >= maxKeys { evict(now: now) }
        buckets[key] = bucket
        return decision
    }

    /// Forgets buckets that have refilled by `now`; if none has, the longest idle half.
    private mutating func evict(now: Double) {
        let full = buckets.filter { $0.value.tokens + (now - $0.value.updated) * rule.ratePerSecond >= rule.burst }.map(\.key)
        if !full.isEmpty {
            for key in full { buckets[key] = nil }
            return
        }
        let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(max(1, buckets.count / 2)).map(\.key)
        for key in oldest { buckets[key] = nil }
    }
}
