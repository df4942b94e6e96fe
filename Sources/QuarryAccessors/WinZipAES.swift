import Crypto
import _CryptoExtras
import Foundation
import VQL

/// WinZip AES encryption (zip method 99), which Velociraptor's offline collector uses for
/// password-protected collections: PBKDF2-HMAC-SHA1 (1000 rounds) derives the key and a 2-byte
/// password check from the member's salt; the data is AES in counter mode with a little-endian
/// counter starting at 1, followed by a 10-byte HMAC. Counter mode reads at any offset, so the
/// decrypted member stays random-access.
enum WinZipAES {
    /// The decrypted content of an encrypted member's raw data (salt + check + data + MAC).
    static func decrypting(_ raw: any ReadableFile, length: Int64, strength: UInt8, passwords: [[UInt8]], name: String) throws -> any ReadableFile {
        let keyLength: Int
        switch strength {
        case 1: keyLength = 16
        case 2: keyLength = 24
        case 3: keyLength = 32
        default: throw AccessorError.invalid("zip: \(name): unknown AES strength \(strength)")
        }
        let saltLength = keyLength / 2
        let overhead = Int64(saltLength + 2 + 10)
        guard length >= overhead else { throw AccessorError.invalid("zip: \(name): encrypted data is truncated") }
        let header = try raw.read(at: 0, count: saltLength + 2)
        guard header.count == saltLength + 2 else { throw AccessorError.invalid("zip: \(name): encrypted data is truncated") }
        let salt = Array(header[0..<saltLength])
        let check = Array(header[saltLength...])
        guard !passwords.isEmpty else {
            throw AccessorError.invalid("zip: \(name) is encrypted; set ZIP_PASSWORDS to its password")
        }
        for password in passwords {
            guard let derived = try? KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: salt, using: .insecureSHA1, outputByteCount: 2 * keyLength + 2, unsafeUncheckedRounds: 1000)
            else { continue }
            let bytes = derived.withUnsafeBytes { Array($0) }
            if Array(bytes[(2 * keyLength)...]) == check {
                let key = SymmetricKey(data: bytes[0..<keyLength])
                let body = WindowFile(raw, start: Int64(saltLength + 2), length: length - overhead)
                return AESCounterFile(body, key: key)
            }
        }
        throw AccessorError.invalid("zip: \(name): wrong password (tried \(passwords.count) from ZIP_PASSWORDS)")
    }
}

/// AES-CTR decryption (WinZip's little-endian counter from 1) of a ReadableFile, at any offset.
final class AESCounterFile: ReadableFile {
    let base: any ReadableFile
    let key: SymmetricKey

    init(_ base: any ReadableFile, key: SymmetricKey) {
        self.base = base
        self.key = key
    }

    var size: Int64? { base.size }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0, let out = buffer.baseAddress else { return 0 }
        let n = try base.read(into: buffer, at: offset)
        guard n > 0 else { return 0 }
        var position = 0
        while position < n {
            let absolute = offset + Int64(position)
            let block = absolute / 16
            let within = Int(absolute % 16)
            var counter = [UInt8](repeating: 0, count: 16)
            var value = UInt64(block + 1)
            for i in 0..<8 {
                counter[i] = UInt8(truncatingIfNeeded: value)
                value >>= 8
            }
            try AES.permute(&counter, key: key)
            let take = min(16 - within, n - position)
            for i in 0..<take {
                out.storeBytes(of: out.load(fromByteOffset: position + i, as: UInt8.self) ^ counter[within + i],
                               toByteOffset: position + i, as: UInt8.self)
            }
            position += take
        }
        return n
    }

    func close() { base.close() }
}
