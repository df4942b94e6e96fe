import CYara
import Foundation
import Synchronization
import VQL

/// Compiled YARA rules, shared by every scan of a query (libyara scans are thread-safe).
final class YaraRules: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<YR_RULES>
    init(pointer: UnsafeMutablePointer<YR_RULES>) { self.pointer = pointer }
    deinit { yr_rules_destroy(pointer) }
}

/// A rule compile failure with the rule text's line number.
struct YaraCompileError: Error, CustomStringConvertible {
    let messages: [String]
    var description: String { "yara: rules do not compile: " + messages.joined(separator: "; ") }
}

/// One hit of one rule: the string matches (empty for condition-only rules).
struct YaraHit {
    struct StringMatch {
        let name: String
        let offset: Int64
        let data: [UInt8]
    }
    let rule: String
    let namespace: String
    let tags: [String]
    let meta: Dict
    var strings: [StringMatch]
}

/// libyara wrapped: initialised once per process, rules compiled once per query and cached by
/// their text, matches collected into Swift values (YaraScanner runs the scans).
enum YaraEngine {
    /// `yr_initialize` runs once per process.
    static let initialized: Bool = yr_initialize() == ERROR_SUCCESS

    private final class CompileErrors {
        var messages: [String] = []
    }

    /// Compiles (or fetches from the query's cache) the rules in `text`.
    static func rules(_ text: String, namespace: String?, externals: [(String, Value)] = [], context: QueryContext) throws -> YaraRules {
        let key = "yara.rules:" + (namespace ?? "") + "\u{0}" + text
            + externals.map { "\u{0}\($0.0)=\(String(reflecting: $0.1.reduced()))" }.joined()
        if let cached = context.service(key, as: YaraRules.self) { return cached }
        guard initialized else { throw YaraCompileError(messages: ["libyara failed to initialise"]) }
        var compiler: UnsafeMutablePointer<YR_COMPILER>?
        guard yr_compiler_create(&compiler) == ERROR_SUCCESS, let compiler else {
            throw YaraCompileError(messages: ["cannot create a YARA compiler"])
        }
        defer { yr_compiler_destroy(compiler) }
        let errors = CompileErrors()
        let unmanaged = Unmanaged.passRetained(errors)
        defer { unmanaged.release() }
        yr_compiler_set_callback(
            compiler,
            { level, _, line, _, message, user in
                guard let user else { return }
                let errors = Unmanaged<CompileErrors>.fromOpaque(user).takeUnretainedValue()
                let text = message.map { String(cString: $0) } ?? "?"
                errors.messages.append("\(level == YARA_ERROR_LEVEL_WARNING ? "warning" : "error") line \(line): \(text)")
            }, unmanaged.toOpaque())
        for (name, value) in externals {
            guard define(name, value, in: compiler) == ERROR_SUCCESS else {
                throw YaraCompileError(messages: ["error: the external variable \(name) cannot be defined (a bool, int, float or string is needed)"])
            }
        }
        let failures = text.withCString { yr_compiler_add_string(compiler, $0, namespace) }
        if failures > 0 { throw YaraCompileError(messages: errors.messages.filter { $0.hasPrefix("error") }) }
        var rules: UnsafeMutablePointer<YR_RULES>?
        guard yr_compiler_get_rules(compiler, &rules) == ERROR_SUCCESS, let rules else {
            throw YaraCompileError(messages: ["cannot build the compiled rules"])
        }
        let compiled = YaraRules(pointer: rules)
        context.setService(key, compiled)
        return compiled
    }

    /// Defines one external variable (vars=) before the rules are added, typed by its value.
    private static func define(_ name: String, _ value: Value, in compiler: UnsafeMutablePointer<YR_COMPILER>) -> Int32 {
        switch value.reduced() {
        case .bool(let flag): return yr_compiler_define_boolean_variable(compiler, name, flag ? 1 : 0)
        case .int(let number): return yr_compiler_define_integer_variable(compiler, name, number)
        case .double(let number): return yr_compiler_define_float_variable(compiler, name, number)
        case .string(let text): return yr_compiler_define_string_variable(compiler, name, text)
        default: return -1
        }
    }

    /// Velociraptor's short-hand: a list of plain strings becomes one rule matching any of them.
    static func ruleText(from value: Value) -> String? {
        if let text = value.stringValue {
            // Text with no rule in it is a plain string to look for (as a one-item list would be).
            let isRule = text.range(of: #"(^|\s)rule\s+[A-Za-z_]"#, options: .regularExpression) != nil
            return isRule ? text : ruleText(from: .list([value]))
        }
        guard let items = value.listElements, !items.isEmpty else { return nil }
        var rule = "rule Hit {\n  strings:\n"
        for (i, item) in items.enumerated() {
            guard let s = item.reduced().stringValue else { continue }
            let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            rule += "    $s\(i) = \"\(escaped)\" ascii wide nocase\n"
        }
        return rule + "  condition:\n    any of them\n}\n"
    }

    /// A matching rule as a Swift value (called from a scanner's callback).
    static func hit(_ rule: UnsafeMutablePointer<YR_RULE>, context: UnsafeMutablePointer<YR_SCAN_CONTEXT>, base: Int64, maxMatches: Int) -> YaraHit {
        var tags: [String] = []
        if var tag = quarry_rule_tags(rule) {
            while tag.pointee != 0 {
                let name = String(cString: tag)
                tags.append(name)
                tag = tag.advanced(by: name.utf8.count + 1)
            }
        }
        var meta = Dict()
        var m = quarry_rule_first_meta(rule)
        while let current = m {
            let name = quarry_meta_identifier(current).map { String(cString: $0) } ?? "?"
            let type = quarry_meta_type(current)
            if type == quarry_meta_type_integer() {
                meta[name] = .int(quarry_meta_integer(current))
            } else if type == quarry_meta_type_boolean() {
                meta[name] = .bool(quarry_meta_integer(current) != 0)
            } else {
                meta[name] = .string(quarry_meta_string(current).map { String(cString: $0) } ?? "")
            }
            m = quarry_meta_next(current)
        }
        var strings: [YaraHit.StringMatch] = []
        var s = quarry_rule_first_string(rule)
        while let string = s, strings.count < maxMatches {
            let name = quarry_string_identifier(string).map { String(cString: $0) } ?? "$"
            var match = quarry_first_match(context, string)
            while let current = match, strings.count < maxMatches {
                if quarry_match_is_private(current) == 0 {
                    var data: [UInt8] = []
                    if let bytes = quarry_match_data(current) {
                        data = Array(UnsafeBufferPointer(start: bytes, count: Int(quarry_match_data_length(current))))
                    }
                    strings.append(.init(name: name, offset: base + quarry_match_offset(current), data: data))
                }
                match = quarry_match_next(current)
            }
            s = quarry_string_next(string)
        }
        return YaraHit(
            rule: quarry_rule_identifier(rule).map { String(cString: $0) } ?? "?",
            namespace: String(cString: quarry_rule_namespace(rule)), tags: tags, meta: meta, strings: strings)
    }
}
