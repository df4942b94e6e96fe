import Crypto
import _CryptoExtras
import Foundation

/// WinZip AES-256 (AE-2) for one zip member, in both directions, a piece at a time: PBKDF2-HMAC-SHA1
/// (1000 rounds) turns the password and a random 16-byte salt into the AES key, an HMAC key and a
/// 2-byte password check; the data is AES in counter mode (little-endian counter from 1); a 10-byte
/// HMAC-SHA1 of the ciphertext closes the member. 7-Zip and other standard tools read it.
struct WinZipAESStream {
    static let saltLength = 16
    /// Salt + password check before the data, MAC after it.
    static let overhead = saltLength + 2 + 10
    /// The AES extra field (0x9901): AE-2, vendor "AE", AES-256, the data stored uncompressed.
    static let extraField: [UInt8] = [0x01, 0x99, 0x07, 0x00, 0x02, 0x00, 0x41, 0x45, 0x03, 0x00, 0x00]

    private let key: SymmetricKey
    private var mac: HMAC<Insecure.SHA1>
    private var block: UInt64 = 0
    private var keystream = [UInt8](repeating: 0, count: 16)
    private var used = 16
    /// Salt and password check, written before the data.
    let header: [UInt8]

    /// Why a member could not be decrypted.
    struct AESError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// A stream for `password` with `salt` (random when encrypting, read from the member when decrypting).
    /// With `expectedCheck`, a wrong password is refused at once.
    init(password: [UInt8], salt: [UInt8], expectedCheck: [UInt8]? = nil) throws {
        let derived = try KDF.Insecure.PBKDF2.deriveKey(
            from: password, salt: salt, using: .insecureSHA1, outputByteCount: 66, unsafeUncheckedRounds: 1000)
        let bytes = derived.withUnsafeBytes { Array($0) }
        if let expectedCheck, Array(bytes[64..<66]) != expectedCheck {
            throw AESError(message: "wrong password or key")
        }
        key = SymmetricKey(data: bytes[0..<32])
        mac = HMAC<Insecure.SHA1>(key: SymmetricKey(data: bytes[32..<64]))
        header = salt + bytes[64..<66]
    }

    /// A stream with a fresh random salt, for encrypting.
    static func encrypting(password: [UInt8]) throws -> WinZipAESStream {
        var generator = SystemRandomNumberGenerator()
        return try WinZipAESStream(password: password, salt: (0..<saltLength).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// XORs the key stream into `bytes` (the same operation both ways).
    private mutating func apply(_ bytes: inout [UInt8], count: Int) throws {
        for i in 0..<count {
            if used == 16 {
                block += 1
                var value = block
                for j in 0..<16 {
                    keystream[j] = j < 8 ? UInt8(truncatingIfNeeded: value) : 0
                    if j < 8 { value >>= 8 }
                }
                try AES.permute(&keystream, key: key)
                used = 0
            }
            bytes[i] ^= keystream[used]
            used += 1
        }
    }

    /// Encrypts the first `count` bytes in place.
    mutating func encrypt(_ bytes: inout [UInt8], count: Int) throws {
        try apply(&bytes, count: count)
        mac.update(data: bytes[0..<count])
    }

    /// Decrypts the first `count` bytes in place.
    mutating func decrypt(_ bytes: inout [UInt8], count: Int) throws {
        mac.update(data: bytes[0..<count])
        try apply(&bytes, count: count)
    }

    /// The 10-byte authentication code of everything so far.
    func authenticationCode() -> [UInt8] {
        Array(Array(mac.finalize()).prefix(10))
    }
}
