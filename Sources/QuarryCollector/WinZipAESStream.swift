import Crypto
import _CryptoExtras
import COpenSSLCrypto
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

    private let cipher: BlockCipher
    private var mac: HMAC<Insecure.SHA1>
    /// The last counter value used (WinZip counts blocks from 1).
    private var block: UInt64 = 0
    /// Key stream made ahead, and how much of it is used.
    private var keystream: [UInt8] = []
    private var used = 0
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
        cipher = try BlockCipher(key: Array(bytes[0..<32]))
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
        var done = 0
        while done < count {
            if used == keystream.count { try refill(upTo: count - done) }
            let take = min(keystream.count - used, count - done)
            let start = used
            bytes.withUnsafeMutableBytes { data in
                keystream.withUnsafeBytes { key in
                    guard let d = data.baseAddress, let k = key.baseAddress else { return }
                    var i = 0
                    while i + 8 <= take {
                        let x = d.loadUnaligned(fromByteOffset: done + i, as: UInt64.self) ^ k.loadUnaligned(fromByteOffset: start + i, as: UInt64.self)
                        d.storeBytes(of: x, toByteOffset: done + i, as: UInt64.self)
                        i += 8
                    }
                    while i < take {
                        d.storeBytes(of: d.load(fromByteOffset: done + i, as: UInt8.self) ^ k.load(fromByteOffset: start + i, as: UInt8.self), toByteOffset: done + i, as: UInt8.self)
                        i += 1
                    }
                }
            }
            done += take
            used += take
        }
    }

    /// Makes the key stream for the next blocks (enough for `wanted` bytes, at most 64 KiB at once):
    /// the little-endian counters, encrypted in one call.
    private mutating func refill(upTo wanted: Int) throws {
        let blocks = max(1, min((wanted + 15) / 16, 4096))
        var counters = [UInt8](repeating: 0, count: blocks * 16)
        for j in 0..<blocks {
            block += 1
            withUnsafeBytes(of: block.littleEndian) { counters.replaceSubrange((j * 16)..<(j * 16 + 8), with: $0) }
        }
        keystream = try cipher.encrypt(counters)
        used = 0
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

/// AES-256 applied block by block (ECB) to many counter blocks in one call, through OpenSSL's
/// libcrypto, which uses the processor's AES instructions.
final class BlockCipher {
    private let context: OpaquePointer

    init(key: [UInt8]) throws {
        guard key.count == 32, let context = EVP_CIPHER_CTX_new() else { throw WinZipAESStream.AESError(message: "cannot set up AES") }
        self.context = context
        guard EVP_EncryptInit_ex(context, EVP_aes_256_ecb(), nil, key, nil) == 1, EVP_CIPHER_CTX_set_padding(context, 0) == 1 else {
            throw WinZipAESStream.AESError(message: "cannot set up AES-256")
        }
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// `blocks` (a multiple of 16 bytes) encrypted.
    func encrypt(_ blocks: [UInt8]) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: blocks.count)
        var length: Int32 = 0
        guard EVP_EncryptUpdate(context, &out, &length, blocks, Int32(blocks.count)) == 1, Int(length) == blocks.count else {
            throw WinZipAESStream.AESError(message: "AES failed")
        }
        return out
    }
}
