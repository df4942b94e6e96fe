import CYara
import Foundation
import VQL

/// yara_lint(): keeps the rules of a rule set that libyara compiles here, adds the `import`s the
/// kept rules use, drops `include`s (they would read other files) and, with clean=TRUE, strips
/// `meta:` sections. Dropped rules are logged with the compiler's reason.
public enum YaraLint {
    public static let function = FunctionDeclaration(
        name: "yara_lint",
        summary: "Cleans a YARA rule set: rules that do not compile are removed (and logged), needed imports are added, includes dropped; clean=TRUE also removes metadata.",
        arguments: [
            ArgumentSpec("rules", .string, required: true, "YARA rule text."),
            ArgumentSpec("clean", .bool, "Also remove every rule's meta: section."),
        ],
        returns: .string,
        examples: ["SELECT yara_lint(rules='rule good { strings: $a = \"x\" condition: $a } rule bad { condition: nosuchthing }', clean=TRUE) AS Rules FROM scope()"]
    ) { ctx in
        let text = ctx.string("rules") ?? ""
        let clean = ctx.bool("clean") ?? false
        let (kept, dropped) = lint(text, clean: clean)
        for (name, reason) in dropped.prefix(50) { ctx.context.logOnce(.warning, "yara_lint: rule \(name) removed: \(reason)") }
        return .string(kept)
    }

    struct Rule {
        var name: String
        var text: String
    }

    static let modules = ["pe", "elf", "math", "hash", "dotnet", "time", "console", "string", "cuckoo", "magic", "dex", "macho", "lnk"]

    /// The linted rule text and the (name, reason) of each dropped rule.
    static func lint(_ text: String, clean: Bool) -> (String, [(String, String)]) {
        var rules = split(text)
        if clean { rules = rules.map { Rule(name: $0.name, text: stripMeta($0.text)) } }
        var kept: [Rule] = []
        var names: Set<String> = []
        var dropped: [(String, String)] = []
        for rule in rules.prefix(20_000) {
            guard names.insert(rule.name).inserted else {
                dropped.append((rule.name, "duplicate rule name"))
                continue
            }
            let own = imports(for: [rule])
            if let error = compileError(own + rule.text) {
                // It may depend on rules kept before it.
                let all = imports(for: kept + [rule]) + kept.map(\.text).joined(separator: "\n") + "\n" + rule.text
                if kept.isEmpty || compileError(all) != nil {
                    names.remove(rule.name)
                    dropped.append((rule.name, error))
                    continue
                }
            }
            kept.append(rule)
        }
        let body = kept.map(\.text).joined(separator: "\n\n")
        return (imports(for: kept) + body + (body.isEmpty ? "" : "\n"), dropped)
    }

    /// `import "x"` lines for the modules the rules use.
    static func imports(for rules: [Rule]) -> String {
        var used: [String] = []
        for module in modules {
            let pattern = module + "."
            if rules.contains(where: { rule in
                var range = rule.text.startIndex..<rule.text.endIndex
                while let found = rule.text.range(of: pattern, range: range) {
                    let before = found.lowerBound == rule.text.startIndex ? " " : rule.text[rule.text.index(before: found.lowerBound)]
                    if !(before.isLetter || before.isNumber || before == "_" || before == "$" || before == ".") { return true }
                    range = found.upperBound..<rule.text.endIndex
                }
                return false
            }) { used.append(module) }
        }
        return used.map { "import \"\($0)\"\n" }.joined() + (used.isEmpty ? "" : "\n")
    }

    /// The compiler's first error for `text`, or nil when it compiles.
    static func compileError(_ text: String) -> String? {
        guard YaraEngine.initialized else { return "libyara failed to initialise" }
        var compiler: UnsafeMutablePointer<YR_COMPILER>?
        guard yr_compiler_create(&compiler) == ERROR_SUCCESS, let compiler else { return "cannot create a YARA compiler" }
        defer { yr_compiler_destroy(compiler) }
        final class Box { var message: String? }
        let box = Box()
        let unmanaged = Unmanaged.passRetained(box)
        defer { unmanaged.release() }
        yr_compiler_set_callback(compiler, { level, _, _, _, message, user in
            guard let user, level == YARA_ERROR_LEVEL_ERROR else { return }
            let box = Unmanaged<Box>.fromOpaque(user).takeUnretainedValue()
            if box.message == nil { box.message = message.map { String(cString: $0) } ?? "error" }
        }, unmanaged.toOpaque())
        let failures = text.withCString { yr_compiler_add_string(compiler, $0, nil) }
        return failures > 0 ? (box.message ?? "does not compile") : nil
    }

    /// The rules of a rule file, each with its own text (comments between rules, imports and
    /// includes are left out). Strings, regexes and comments are skipped when matching braces.
    static func split(_ text: String) -> [Rule] {
        let chars = Array(text.unicodeScalars)
        var rules: [Rule] = []
        var i = 0
        var ruleStart: Int?
        var name = ""
        func skipComment() -> Bool {
            guard i + 1 < chars.count, chars[i] == "/" else { return false }
            if chars[i + 1] == "/" {
                while i < chars.count && chars[i] != "\n" { i += 1 }
                return true
            }
            if chars[i + 1] == "*" {
                i += 2
                while i + 1 < chars.count && !(chars[i] == "*" && chars[i + 1] == "/") { i += 1 }
                i += 2
                return true
            }
            return false
        }
        func word(at j: Int) -> String {
            var k = j
            var out = ""
            while k < chars.count, chars[k].properties.isAlphabetic || ("0"..."9").contains(chars[k]) || chars[k] == "_" {
                out.unicodeScalars.append(chars[k])
                k += 1
            }
            return out
        }
        func isBoundary(_ j: Int) -> Bool { j < 0 || !(chars[j].properties.isAlphabetic || chars[j] == "_" || ("0"..."9").contains(chars[j])) }
        while i < chars.count {
            if skipComment() { continue }
            let w = isBoundary(i - 1) ? word(at: i) : ""
            if w == "rule" {
                // Modifiers (private, global) before `rule` belong to the rule.
                var start = i
                var back = i - 1
                while back >= 0 {
                    while back >= 0 && chars[back].properties.isWhitespace { back -= 1 }
                    var wordStart = back
                    while wordStart >= 0 && chars[wordStart].properties.isAlphabetic { wordStart -= 1 }
                    let previous = String(String.UnicodeScalarView(chars[(wordStart + 1)...max(wordStart + 1, back)]))
                    guard previous == "private" || previous == "global" else { break }
                    start = wordStart + 1
                    back = wordStart
                }
                ruleStart = start
                i += 4
                while i < chars.count && chars[i].properties.isWhitespace { i += 1 }
                name = word(at: i)
                // Find the body's opening brace.
                while i < chars.count && chars[i] != "{" { i += 1 }
                var depth = 0
                while i < chars.count {
                    if skipComment() { continue }
                    let c = chars[i]
                    if c == "\"" {
                        i += 1
                        while i < chars.count && chars[i] != "\"" { i += chars[i] == "\\" ? 2 : 1 }
                    } else if c == "/" && previousSignificant(chars, i) == "=" {
                        i += 1
                        while i < chars.count && chars[i] != "/" && chars[i] != "\n" { i += chars[i] == "\\" ? 2 : 1 }
                    } else if c == "{" {
                        depth += 1
                    } else if c == "}" {
                        depth -= 1
                        if depth == 0 { break }
                    }
                    i += 1
                }
                if let startIndex = ruleStart, i < chars.count {
                    rules.append(Rule(name: name, text: String(String.UnicodeScalarView(chars[startIndex...i]))))
                }
                ruleStart = nil
                i += 1
                continue
            }
            i += max(1, w.unicodeScalars.count)
        }
        return rules
    }

    static func previousSignificant(_ chars: [Unicode.Scalar], _ i: Int) -> Unicode.Scalar? {
        var j = i - 1
        while j >= 0 && chars[j].properties.isWhitespace { j -= 1 }
        return j >= 0 ? chars[j] : nil
    }

    /// The rule without its `meta:` section.
    static func stripMeta(_ rule: String) -> String {
        guard let meta = rule.range(of: #"\bmeta\s*:"#, options: .regularExpression) else { return rule }
        let rest = rule[meta.upperBound...]
        let next = rest.range(of: #"\b(strings|condition)\s*:"#, options: .regularExpression)?.lowerBound ?? rule.endIndex
        return String(rule[..<meta.lowerBound]) + String(rule[next...])
    }
}
