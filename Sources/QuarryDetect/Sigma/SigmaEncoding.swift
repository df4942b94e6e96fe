import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The value transformations of Sigma's modifiers: UTF-16 widening, base64 (and the three
/// offsets at which a value can sit inside a larger base64 text), and Windows dash variants.
enum SigmaEncoding {
    static func encode(_ text: String, modifiers: Set<String>) -> [UInt8] {
        if modifiers.contains("wide") || modifiers.contains("utf16le") {
            return text.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        }
        if modifiers.contains("utf16be") {
            return text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
        }
        if modifiers.contains("utf16") {
            return [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        }
        return Array(text.utf8)
    }

    /// The value encoded at offsets 0, 1 and 2 of a 3-byte group, trimmed to the characters that
    /// do not depend on the surrounding bytes.
    static func base64Offsets(_ bytes: [UInt8]) -> [String] {
        let starts = [0, 2, 3]
        let ends = [0, 3, 2]  // characters to drop from the end, by (count + offset) % 3
        var result: [String] = []
        for offset in 0..<3 {
            let encoded = Array(Data([UInt8](repeating: 0x20, count: offset) + bytes).base64EncodedString())
            let start = starts[offset]
            let end = encoded.count - ends[(bytes.count + offset) % 3]
            guard start < end else { continue }
            result.append(String(encoded[start..<end]))
        }
        return result
    }

    /// The text with each option dash ("-" at the start or after a space) written as each of the
    /// characters Windows programs accept in its place.
    static func windashVariants(_ text: String) -> [String] {
        let dashes: [Character] = ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"]
        let characters = Array(text)
        let positions = characters.indices.filter { i in
            characters[i] == "-" && (i == 0 || characters[i - 1] == " ")
        }
        guard !positions.isEmpty else { return [text] }
        return dashes.map { dash in
            var copy = characters
            for i in positions { copy[i] = dash }
            return String(copy)
        }
    }
}
