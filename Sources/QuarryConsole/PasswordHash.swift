import Crypto
import Foundation
import _CryptoExtras

/// Console passwords as slow salted hashes (scrypt, from swift-crypto's extras): the datastore holds
/// `scrypt$N$r$p$SALT$KEY` (salt and key in base64), never the password. Checking one costs tens of
/// milliseconds and 16 MiB, which makes guessing from a stolen datastore expensive; the server's
/// per-address request rate bounds online guessing.
public enum PasswordHash {
    /// scrypt's cost (N), block size (r) and parallelism (p) for new hashes: the classic interactive-login parameters.
    public static let cost = 16_384
    public static let blockSize = 8
    public static let parallelism = 1
    static let saltBytes = 16
    static let keyBytes = 32

    /// Why a password is refused before it is hashed.
    public struct PolicyError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Shortest and longest password accepted (bytes of UTF-8).
    public static let minimumLength = 10
    public static let maximumLength = 1024

    /// Refuses passwords that are too short or too long (a long one would only cost the server time).
    public static func checkPolicy(_ password: String) throws {
        let length = password.utf8.count
        guard length >= minimumLength else { throw PolicyError(description: "a password has at least \(minimumLength) characters") }
        guard length <= maximumLength else { throw PolicyError(description: "a password has at most \(maximumLength) bytes") }
    }

    /// A new hash of `password` with a fresh random salt.
    public static func make(_ password: String) throws -> String {
        try checkPolicy(password)
        var salt = [UInt8](repeating: 0, count: saltBytes)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = generator.next() }
        let key = try derive(password, salt: salt, cost: cost, blockSize: blockSize, parallelism: parallelism)
        return ["scrypt", String(cost), String(blockSize), String(parallelism), Data(salt).base64EncodedString(), Data(key).base64EncodedString()]
            .joined(separator: "$")
    }

    /// Whether `password` matches `stored` (compared in constant time). A malformed stored value, or
    /// one with parameters outside sane bounds, never matches.
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let n = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
            (2...(1 << 20)).contains(n), n & (n - 1) == 0, (1...16).contains(r), (1...4).contains(p),
            let salt = Data(base64Encoded: parts[4]), let expected = Data(base64Encoded: parts[5]), (16...64).contains(expected.count),
            password.utf8.count <= maximumLength,
            let key = try? derive(password, salt: Array(salt), cost: n, blockSize: r, parallelism: p, bytes: expected.count)
        else { return false }
        return constantTimeEqual(key, Array(expected))
    }

    /// Burns the time of one check, so that an unknown user name answers as slowly as a wrong password.
    public static func spendOneCheck(_ password: String) {
        _ = try? derive(String(password.prefix(maximumLength)), salt: [UInt8](repeating: 0, count: saltBytes), cost: cost, blockSize: blockSize, parallelism: parallelism)
    }

    static func derive(_ password: String, salt: [UInt8], cost: Int, blockSize: Int, parallelism: Int, bytes: Int = keyBytes) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: bytes, rounds: cost, blockSize: blockSize, parallelism: parallelism)
        return key.withUnsafeBytes { Array($0) }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
