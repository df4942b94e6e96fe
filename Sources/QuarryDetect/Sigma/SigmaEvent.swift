import VQL

/// One event as rules see it: fields come from the field mapping's lambdas when the mapping
/// names them, else from the event itself (a dotted name walks into nested values). Field values
/// are computed once per event, however many rules read them.
final class SigmaEvent {
    let row: Value
    private let mapping: SigmaFieldMapping
    private let env: Env
    private var cache: [String: Value] = [:]
    private var textCache: [String]?

    init(row: Value, mapping: SigmaFieldMapping, env: Env) {
        self.row = row
        self.mapping = mapping
        self.env = env
    }

    /// The field's value; nil when the event has no such field.
    func field(_ name: String) -> Value? {
        if let known = cache[name] { return known.isNull ? nil : known }
        let value = mapping.resolve(name, in: row, env: env)
        cache[name] = value
        return value.isNull ? nil : value
    }

    func callLambda(_ text: String, _ argument: Value) -> Bool {
        guard let lambda = env.context.lambda(text) else { return false }
        return lambda.call([argument], in: env).isTruthy
    }

    /// Every text value in the event (for keywords), to a bounded depth.
    var allTexts: [String] {
        if let textCache { return textCache }
        var found: [String] = []
        SigmaEvent.collect(row, depth: 0, into: &found)
        textCache = found
        return found
    }

    private static func collect(_ value: Value, depth: Int, into found: inout [String]) {
        guard depth < 16 else { return }
        switch value.reduced() {
        case .dict(let d): for v in d.values { collect(v, depth: depth + 1, into: &found) }
        case .list(let items): for v in items { collect(v, depth: depth + 1, into: &found) }
        case .object(let o):
            if let scalar = o.scalar { collect(scalar, depth: depth + 1, into: &found); return }
            for name in o.memberNames { collect(o.member(name) ?? .null, depth: depth + 1, into: &found) }
        default: found.append(contentsOf: texts(of: value))
        }
    }

    /// The texts a value offers to a text pattern: itself, or each element of a list.
    static func texts(of value: Value?) -> [String] {
        guard let value else { return [] }
        switch value.reduced().unwrappedScalar {
        case .string(let s): return [s]
        case .bytes(let b): return [String(decoding: b, as: UTF8.self)]
        case .int(let i): return [String(i)]
        case .double(let d): return [JSONWriter.plainDouble(d)]
        case .bool(let b): return [b ? "true" : "false"]
        case .timestamp(let t): return [JSONWriter.rfc3339(t)]
        case .list(let items): return items.flatMap { texts(of: $0) }
        default: return []
        }
    }

    static func numbers(of value: Value?) -> [Double] {
        guard let value else { return [] }
        switch value.reduced().unwrappedScalar {
        case .list(let items): return items.flatMap { numbers(of: $0) }
        case .string(let s): return Double(s.trimmingCharacters(in: .whitespaces)).map { [$0] } ?? []
        case let scalar: return scalar.doubleValue.map { [$0] } ?? []
        }
    }
}

/// `field_mapping=`: rule field name → VQL lambda text that reads it from an event.
struct SigmaFieldMapping {
    let lambdas: [String: String]

    init(_ value: Value?) {
        var lambdas: [String: String] = [:]
        if case .dict(let d)? = value?.reduced() {
            for (name, lambda) in d.pairs { if let text = lambda.reduced().stringValue { lambdas[name] = text } }
        }
        self.lambdas = lambdas
    }

    func resolve(_ name: String, in row: Value, env: Env) -> Value {
        if let text = lambdas[name] {
            guard let lambda = env.context.lambda(text) else { return .null }
            return lambda.call([row], in: env)
        }
        let direct = row.member(name).reduced()
        if !direct.isNull || !name.contains(".") { return direct }
        var value = row
        for part in name.split(separator: ".") {
            value = value.member(String(part)).reduced()
            if value.isNull { return .null }
        }
        return value
    }
}
