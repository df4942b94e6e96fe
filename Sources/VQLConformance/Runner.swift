import Foundation
import VQL

/// Runs the vfilter conformance corpus (cases.json) against Quarry's engine and compares each
/// statement's rows with the expected ones (numbers by value, key order significant).
public enum ConformanceRunner {
    /// The outcome of one case.
    public struct CaseResult: Sendable {
        public let id: String
        public let passed: Bool
        public let report: String
    }

    /// Where the shared corpus lives relative to a project checkout.
    public static func defaultCorpus(projectRoot: String) -> String {
        projectRoot + "/../shared/conformance/vfilter/cases.json"
    }

    public static func run(casesFile: String, only: Set<String> = []) throws -> [CaseResult] {
        let data = try Data(contentsOf: URL(fileURLWithPath: casesFile))
        guard case .list(let cases) = try JSONParser.parse(bytes: [UInt8](data)) else {
            throw JSONParser.ParseError(message: "cases.json is not a list", offset: 0)
        }
        return cases.compactMap { c -> CaseResult? in
            let id = c.member("id").stringValue ?? "?"
            if !only.isEmpty && !only.contains(id) { return nil }
            return runCase(c, id: id)
        }
    }

    static func runCase(_ c: Value, id: String) -> CaseResult {
        let logger = MemoryLogger()
        let session = Fixtures.session(logger: logger)
        Fixtures.panicked.withLock { $0 = [] }
        var report = ""
        var ok = true
        for statement in c.member("statements").listElements ?? [] {
            let vql = statement.member("vql").stringValue ?? ""
            let expected = statement.member("expected")
            var got: Value = .null
            do {
                let results = try session.run(vql)
                let rows = results.compactMap { $0 }.flatMap { $0 }
                got = rows.isEmpty ? .null : .list(rows)
            } catch let diagnostic as Diagnostic {
                got = .string("ERROR: " + diagnostic.render(source: vql))
            } catch {
                got = .string("ERROR: \(error)")
            }
            let panics = Fixtures.panicked.withLock { $0 }
            if !same(got, expected) || !panics.isEmpty {
                ok = false
                report += "  statement: \(vql.replacingOccurrences(of: "\n", with: "\n             "))\n"
                report += "  expected:  \(JSONWriter.string(expected))\n"
                report += "  got:       \(JSONWriter.string(got))\n"
                if !panics.isEmpty { report += "  evaluated a trap: \(panics.joined(separator: ", "))\n" }
                if !logger.messages.isEmpty { report += "  log: \(logger.messages.suffix(5).joined(separator: " | "))\n" }
            }
        }
        return CaseResult(id: id, passed: ok, report: report)
    }

    /// Equality as the corpus defines it: numbers by value, key order significant, null ≠ [].
    static func same(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.int, .int), (.int, .double), (.double, .int), (.double, .double):
            return a.doubleValue == b.doubleValue
        case (.bool(let x), .bool(let y)): return x == y
        case (.string, .string), (.bytes, .string), (.string, .bytes), (.bytes, .bytes):
            return a.stringValue == b.stringValue
        case (.list(let x), .list(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.dict(let x), .dict(let y)):
            return x.keys == y.keys && zip(x.values, y.values).allSatisfy { same($0, $1) }
        case (.timestamp, _): return same(.string(JSONWriter.string(a).trimmingCharacters(in: CharacterSet(charactersIn: "\""))), b)
        default: return false
        }
    }
}
