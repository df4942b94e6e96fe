import Crypto
import Foundation

/// One signed-in browser: whose it is, the token its forms must carry (CSRF), and when it ends.
public struct ConsoleSession: Sendable, Equatable {
    /// The user's name; the user (and so the role) is read again on every request, so a removed
    /// user or a changed role takes effect at once.
    public var user: String
    /// The value every state-changing form must send back (`csrf` field).
    public var csrfToken: String
    public var createdAt: Double
    /// The session ends at this time at the latest, whatever the activity.
    public var expiresAt: Double
    /// The session ends if unused until this time (moved forward by each request).
    public var idleUntil: Double
}

/// The console's sessions, in this server process's memory: the browser holds a random token in a
/// cookie (Secure, HttpOnly, SameSite=Strict); only the token's SHA-256 is kept here. Sessions end
/// after `lifetime` seconds, or `idleTimeout` seconds without a request, or at logout. A restart
/// signs everyone out, and each frontend has its own sessions (see docs/console.md).
public final class ConsoleSessions: @unchecked Sendable {
    private var sessions: [String: ConsoleSession] = [:]
    private let lock = NSLock()
    public let lifetime: Double
    public let idleTimeout: Double
    public let maxSessions: Int
    private let now: @Sendable () -> Double

    public init(lifetime: Double = 12 * 3600, idleTimeout: Double = 3600, maxSessions: Int = 10_000, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.lifetime = lifetime
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
        self.now = now
    }

    /// Starts a session for `user`; returns the cookie's token (shown to the browser only) and the session.
    public func start(user: String) -> (token: String, session: ConsoleSession) {
        let token = Self.randomToken()
        let time = now()
        let session = ConsoleSession(user: user, csrfToken: Self.randomToken(), createdAt: time, expiresAt: time + lifetime, idleUntil: time + idleTimeout)
        lock.withLock {
            if sessions.count >= maxSessions { sessions = sessions.filter { Self.isLive($0.value, at: time) } }
            // Still full: the oldest session gives way (a flood of logins cannot grow memory).
            if sessions.count >= maxSessions, let oldest = sessions.min(by: { $0.value.createdAt < $1.value.createdAt }) {
                sessions[oldest.key] = nil
            }
            sessions[Self.hash(token)] = session
        }
        return (token, session)
    }

    /// The live session of `token` (its idle deadline moved on), or nil for an unknown or ended one.
    public func session(for token: String) -> ConsoleSession? {
        let key = Self.hash(token)
        let time = now()
        return lock.withLock {
            guard var session = sessions[key] else { return nil }
            guard Self.isLive(session, at: time) else {
                sessions[key] = nil
                return nil
            }
            session.idleUntil = min(session.expiresAt, time + idleTimeout)
            sessions[key] = session
            return session
        }
    }

    /// Ends the session of `token` (logout).
    public func end(_ token: String) {
        let key = Self.hash(token)
        lock.withLock { sessions[key] = nil }
    }

    /// Ends every session of `user` (removed, or password changed).
    public func end(user: String) {
        lock.withLock { sessions = sessions.filter { $0.value.user != user } }
    }

    /// Sessions held now (live or not yet swept).
    public var count: Int { lock.withLock { sessions.count } }

    static func isLive(_ session: ConsoleSession, at time: Double) -> Bool {
        time < session.expiresAt && time < session.idleUntil
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// 32 random bytes as URL-safe base64 (no padding): a cookie value and a form field value.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Compares two secrets in time independent of where they differ.
    public static func sameSecret(_ a: String, _ b: String) -> Bool {
        PasswordHash.constantTimeEqual(Array(a.utf8), Array(b.utf8))
    }
}
