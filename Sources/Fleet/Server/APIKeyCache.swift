import FleetCore
import Foundation
import NIOConcurrencyHelpers

/// Looks up analysts by API key (by the key's SHA-256, the only form stored) and remembers the
/// answer for a short time, so a burst of requests costs one datastore read. A key removed or
/// replaced through this frontend is forgotten at once (`forget(user:)`); through another frontend
/// sharing the datastore, it stops working here within `ttl`. Unknown keys are never cached: an
/// attacker's guesses cannot fill the cache (the request rate limit bounds how many are tried).
final class APIKeyCache: Sendable {
    private struct Entry {
        var user: UserRecord
        var fetched: Double
    }

    private let store: any FleetStore
    private let ttl: Double
    private let maxEntries: Int
    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    private let now: @Sendable () -> Double

    init(store: any FleetStore, ttl: Double, maxEntries: Int = 10_000, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.store = store
        self.ttl = ttl
        self.maxEntries = maxEntries
        self.now = now
    }

    /// The user holding `key`; 401 for an unknown or expired key.
    func user(forKey key: String) async throws -> UserRecord {
        let hash = ConfigFile.sha256Hex(key)
        let time = now()
        let cached = entries.withLockedValue { entries -> UserRecord? in
            guard let entry = entries[hash], time - entry.fetched < ttl else { return nil }
            return entry.user
        }
        let user: UserRecord
        if let cached {
            user = cached
        } else {
            guard let stored = try await store.user(apiKeySHA256: hash) else {
                entries.withLockedValue { $0[hash] = nil }
                throw APIFailure(status: 401, message: "unknown API key")
            }
            user = stored
            if ttl > 0 {
                entries.withLockedValue { entries in
                    if entries.count >= maxEntries { entries = entries.filter { time - $0.value.fetched < ttl } }
                    if entries.count < maxEntries { entries[hash] = Entry(user: stored, fetched: time) }
                }
            }
        }
        if user.isExpired(at: time) { throw APIFailure(status: 401, message: "the API key of \(user.name) has expired") }
        return user
    }

    /// Drops every cached key of `name` (after the user was removed or got a new key).
    func forget(user name: String) {
        entries.withLockedValue { $0 = $0.filter { $0.value.user.name != name } }
    }
}
