import CPCRE2
import Synchronization

/// PCRE2's per-match scratch block, owned by one regex and used under its lock.
private struct MatchBlock: @unchecked Sendable {
    var pointer: OpaquePointer?
}

/// A regular expression compiled once (PCRE2 with JIT), accepting Go/RE2 syntax such as `(?i)`
/// and `(?P<name>…)`. Shared by all threads of a query; the scratch match block is reused when free.
public final class CompiledRegex: @unchecked Sendable {
    private let code: OpaquePointer
    private let scratch: Mutex<MatchBlock>
    public let pattern: String
    /// Velociraptor treats the pattern "." as "matches anything", even an empty value.
    public let matchesEverything: Bool
    public let captureNames: [String?]

    /// Why a pattern failed to compile.
    public struct CompileError: Error, CustomStringConvertible {
        public let pattern: String
        public let message: String
        public let offset: Int
        public var description: String { "invalid regular expression '\(pattern)' at offset \(offset): \(message)" }
    }

    public init(_ pattern: String, caseInsensitive: Bool) throws {
        self.pattern = pattern
        self.matchesEverything = pattern == "."
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        var options = UInt32(PCRE2_UTF) | UInt32(PCRE2_MATCH_INVALID_UTF)
        if caseInsensitive { options |= UInt32(PCRE2_CASELESS) }
        let compiled = pattern.withCString { cString in
            cString.withMemoryRebound(to: UInt8.self, capacity: pattern.utf8.count) { p in
                pcre2_compile_8(p, pattern.utf8.count, options, &errorCode, &errorOffset, nil)
            }
        }
        guard let compiled else {
            var buffer = [UInt8](repeating: 0, count: 256)
            pcre2_get_error_message_8(errorCode, &buffer, buffer.count)
            let message = String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
            throw CompileError(pattern: pattern, message: message, offset: errorOffset)
        }
        self.code = compiled
        pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE))
        self.scratch = Mutex(MatchBlock(pointer: pcre2_match_data_create_from_pattern_8(compiled, nil)))
        var count: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_CAPTURECOUNT), &count)
        var names = [String?](repeating: nil, count: Int(count) + 1)
        var nameCount: UInt32 = 0
        var entrySize: UInt32 = 0
        var table: UnsafePointer<UInt8>?
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMECOUNT), &nameCount)
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMEENTRYSIZE), &entrySize)
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMETABLE), &table)
        if let table, nameCount > 0 {
            for i in 0..<Int(nameCount) {
                let entry = table + i * Int(entrySize)
                let group = Int(entry[0]) << 8 | Int(entry[1])
                let nameStart = entry + 2
                var length = 0
                while nameStart[length] != 0 { length += 1 }
                if group < names.count {
                    names[group] = String(decoding: UnsafeBufferPointer(start: nameStart, count: length), as: UTF8.self)
                }
            }
        }
        self.captureNames = names
    }

    deinit {
        scratch.withLock { if let m = $0.pointer { pcre2_match_data_free_8(m) } }
        pcre2_code_free_8(code)
    }

    /// Runs `body` with a match-data block: the shared one when free, else a temporary one.
    private func withMatchData<R>(_ body: (OpaquePointer) -> R) -> R {
        if let result = scratch.withLockIfAvailable({ block -> R? in
            guard let m = block.pointer else { return nil }
            return body(m)
        }), let result {
            return result
        }
        let temporary = pcre2_match_data_create_from_pattern_8(code, nil)
        defer { pcre2_match_data_free_8(temporary) }
        guard let temporary else { fatalError("out of memory") }
        return body(temporary)
    }

    private static let emptySubject: [UInt8] = [0]

    private func rawMatch(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ data: OpaquePointer) -> Bool {
        guard let base = bytes.baseAddress else {
            // PCRE2 wants a valid pointer even for an empty subject.
            return CompiledRegex.emptySubject.withUnsafeBufferPointer { empty in
                guard let pointer = empty.baseAddress else { return false }
                return pcre2_match_8(code, pointer, 0, 0, 0, data, nil) >= 0
            }
        }
        return pcre2_match_8(code, base, bytes.count, start, 0, data, nil) >= 0
    }

    public func matches(_ text: String) -> Bool {
        if matchesEverything { return true }
        var text = text
        return text.withUTF8 { buffer in withMatchData { rawMatch(buffer, from: 0, $0) } }
    }

    public func matches(bytes: [UInt8]) -> Bool {
        if matchesEverything { return true }
        return bytes.withUnsafeBufferPointer { buffer in withMatchData { rawMatch(buffer, from: 0, $0) } }
    }

    /// Every match of the pattern in `bytes` from left to right: the byte ranges of each group
    /// (nil for a group that did not take part).
    public func allMatches(in bytes: [UInt8], limit: Int = .max) -> [[Range<Int>?]] {
        var results: [[Range<Int>?]] = []
        bytes.withUnsafeBufferPointer { buffer in
            withMatchData { data in
                var start = 0
                while start <= buffer.count, results.count < limit {
                    guard rawMatch(buffer, from: start, data) else { break }
                    let count = Int(pcre2_get_ovector_count_8(data))
                    guard let ovector = pcre2_get_ovector_pointer_8(data) else { break }
                    var groups: [Range<Int>?] = []
                    let unset = quarry_pcre2_unset()
                    for g in 0..<count {
                        let lo = ovector[2 * g]
                        let hi = ovector[2 * g + 1]
                        groups.append(lo == unset || hi == unset ? nil : Int(lo)..<Int(hi))
                    }
                    results.append(groups)
                    guard let whole = groups.first ?? nil else { break }
                    start = whole.isEmpty ? whole.upperBound + 1 : whole.upperBound
                }
            }
        }
        return results
    }

    /// The first match's groups, or nil.
    public func firstMatch(in bytes: [UInt8]) -> [Range<Int>?]? {
        allMatches(in: bytes, limit: 1).first
    }

    /// Replaces every match, expanding `$1`, `${1}` and `${name}` as Go's regexp does.
    public func replaceAll(in bytes: [UInt8], with template: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var last = 0
        for groups in allMatches(in: bytes) {
            guard let whole = groups.first ?? nil else { continue }
            out.append(contentsOf: bytes[last..<whole.lowerBound])
            expand(template, groups: groups, source: bytes, into: &out)
            last = whole.upperBound
        }
        out.append(contentsOf: bytes[min(last, bytes.count)...])
        return out
    }

    private func expand(_ template: [UInt8], groups: [Range<Int>?], source: [UInt8], into out: inout [UInt8]) {
        var i = 0
        while i < template.count {
            let c = template[i]
            guard c == UInt8(ascii: "$"), i + 1 < template.count else {
                out.append(c)
                i += 1
                continue
            }
            var name: [UInt8] = []
            var j = i + 1
            if template[j] == UInt8(ascii: "$") {
                out.append(c)
                i += 2
                continue
            }
            if template[j] == UInt8(ascii: "{") {
                j += 1
                while j < template.count, template[j] != UInt8(ascii: "}") {
                    name.append(template[j])
                    j += 1
                }
                j += 1
            } else {
                while j < template.count,
                    (template[j] >= 0x30 && template[j] <= 0x39) || (template[j] >= 0x41 && template[j] <= 0x5A)
                        || (template[j] >= 0x61 && template[j] <= 0x7A) || template[j] == UInt8(ascii: "_")
                {
                    name.append(template[j])
                    j += 1
                }
            }
            let key = String(decoding: name, as: UTF8.self)
            var group: Int? = Int(key)
            if group == nil { group = captureNames.firstIndex(where: { $0 == key }) }
            if let group, group < groups.count, let r = groups[group] {
                out.append(contentsOf: source[r])
            }
            i = j
        }
    }
}
