import Foundation
import VQL

/// The state of one parse_binary() call: the input, the compiled profile, the scope lambdas run
/// in, and the budget every value it creates draws from. Objects it returns parse lazily (a
/// field is read when first used), so the budget outlives the call.
final class BinaryParse: @unchecked Sendable {
    let profile: BinaryProfile
    let source: any ParserSource
    let env: Env
    let context: QueryContext
    let lock = NSRecursiveLock()
    /// Values (struct objects, array elements) still allowed.
    private var elementsLeft: Int
    /// String bytes still allowed.
    private var bytesLeft: Int
    private var exhaustedLogged = false

    static let maxDepth = 64
    static let defaultElementBudget = 1_000_000
    static let defaultByteBudget = 64 << 20

    init(profile: BinaryProfile, source: any ParserSource, env: Env, context: QueryContext,
         elements: Int = BinaryParse.defaultElementBudget, bytes: Int = BinaryParse.defaultByteBudget) {
        self.profile = profile
        self.source = source
        self.env = env
        self.context = context
        self.elementsLeft = elements
        self.bytesLeft = bytes
    }

    func log(_ message: String) { context.logOnce(.warning, "parse_binary: \(message)") }

    /// Takes `n` from the element budget; false (logged once) when it is spent.
    func spend(elements n: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard elementsLeft >= n else {
            if !exhaustedLogged {
                exhaustedLogged = true
                log("output limit reached (\(BinaryParse.defaultElementBudget) values); the rest is left out")
            }
            return false
        }
        elementsLeft -= n
        return true
    }

    func spend(bytes n: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard bytesLeft >= n else {
            log("string bytes limit reached; the rest is left out")
            return false
        }
        bytesLeft -= n
        return true
    }

    func read(_ offset: Int64, _ count: Int) -> [UInt8]? {
        guard offset >= 0, count >= 0 else { return nil }
        let bytes = source.read(at: offset, count: count)
        return bytes.count == count ? bytes : nil
    }

    /// Runs a profile lambda with `x` bound to `object`.
    func evaluate(_ text: String, _ object: Value) -> Value {
        guard let lambda = context.lambda(text) else { return .null }
        return lambda.call([object], in: env).reduced()
    }

    func amount(_ amount: ProfileAmount, _ object: Value) -> Int64? {
        switch amount {
        case .constant(let n): return n
        case .lambda(let text): return evaluate(text, object).intValue
        }
    }

    // MARK: - Parsing one type

    /// The value of `type` at absolute `offset`; `parent` is the enclosing struct (lambdas' x).
    func parse(_ type: BinaryType, at offset: Int64, parent: Value, depth: Int) -> Value {
        guard depth < BinaryParse.maxDepth else {
            log("nesting deeper than \(BinaryParse.maxDepth) levels (a pointer or struct cycle?) at offset \(offset)")
            return .null
        }
        switch type {
        case .integer(let width, let signed, let big):
            return readInteger(offset, width, signed, big).map { .int($0) } ?? .null
        case .float(let width, let big):
            guard let raw = readInteger(offset, width, false, big) else { return .null }
            return width == 4 ? .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))) : .double(Double(bitPattern: UInt64(bitPattern: raw)))
        case .string(let options):
            return parseString(options, at: offset, parent: parent).value
        case .array(let element, let count, let maxCount, let sentinel):
            return parseArray(element, count: count, maxCount: maxCount, sentinel: sentinel, at: offset, parent: parent, depth: depth)
        case .pointer(let target, let width):
            guard let raw = readInteger(offset, width, false, false) else { return .null }
            return parse(target, at: raw, parent: parent, depth: depth + 1)
        case .enumeration(let base, let choices):
            guard let raw = parse(base, at: offset, parent: parent, depth: depth).intValue else { return .null }
            return .string(choices[raw] ?? "0x" + String(UInt64(bitPattern: raw), radix: 16))
        case .flags(let base, let bits):
            guard let raw = parse(base, at: offset, parent: parent, depth: depth).intValue else { return .null }
            let value = UInt64(bitPattern: raw)
            return .list(bits.filter { value & (UInt64(1) << UInt64($0.1)) != 0 }.map { .string($0.0) })
        case .bitField(let base, let start, let end):
            guard let raw = parse(base, at: offset, parent: parent, depth: depth).intValue else { return .null }
            let width = end - start
            let mask: UInt64 = width >= 64 ? .max : (UInt64(1) << UInt64(width)) - 1
            return .int(Int64(bitPattern: (UInt64(bitPattern: raw) >> UInt64(start)) & mask))
        case .union(let selector, let choices):
            let key = BinaryParse.text(evaluate(selector, parent))
            guard let name = choices[key] ?? choices["default"] else { return .null }
            return parse(.structure(name), at: offset, parent: parent, depth: depth)
        case .value(let expression):
            return evaluate(expression, parent)
        case .timestamp(let base, let kind, let factor):
            guard let raw = parse(base, at: offset, parent: parent, depth: depth).intValue else { return .null }
            return BinaryParse.timestamp(raw, kind: kind, factor: factor)
        case .structure(let name):
            guard let definition = profile.structs[name] else {
                log("no struct or type named '\(name)' in the profile")
                return .null
            }
            // A struct costs as many values as it has fields (they are what output materializes).
            guard spend(elements: max(1, definition.fields.count)) else { return .null }
            return .object(BinaryStruct(definition: definition, offset: offset, parse: self, depth: depth + 1))
        case .absolute(let inner, let amount):
            guard let target = self.amount(amount, parent) else { return .null }
            return parse(inner, at: target, parent: parent, depth: depth + 1)
        }
    }

    func readInteger(_ offset: Int64, _ width: Int, _ signed: Bool, _ bigEndian: Bool) -> Int64? {
        guard let bytes = read(offset, width) else { return nil }
        var value: UInt64 = 0
        if bigEndian {
            for b in bytes { value = value << 8 | UInt64(b) }
        } else {
            for b in bytes.reversed() { value = value << 8 | UInt64(b) }
        }
        if signed && width < 8 {
            let shift = UInt64(64 - width * 8)
            return Int64(bitPattern: value << shift) >> Int64(shift)
        }
        return Int64(bitPattern: value)
    }

    /// A string and the bytes it occupies.
    func parseString(_ options: StringOptions, at offset: Int64, parent: Value) -> (value: Value, size: Int64) {
        var length = options.maxLength
        var fixed = false
        if let amount = options.length {
            guard let n = self.amount(amount, parent) else { return (.null, 0) }
            length = min(max(0, n), options.maxLength)
            fixed = true
        }
        length = max(0, min(length, 16 << 20))
        guard spend(bytes: Int(length)) else { return (.null, 0) }
        var bytes = source.read(at: offset, count: Int(length))
        if fixed && bytes.isEmpty && length > 0 { return (.null, 0) }
        var consumed = Int64(bytes.count)
        if !options.terminator.isEmpty, let end = BinaryParse.find(options.terminator, in: bytes, aligned: options.utf16) {
            bytes.removeSubrange(end...)
            if !fixed { consumed = Int64(end + options.terminator.count) }
        }
        if fixed { consumed = length }
        if options.utf16 {
            var units: [UInt16] = []
            var i = 0
            while i + 1 < bytes.count {
                units.append(UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
                i += 2
            }
            if let zero = units.firstIndex(of: 0) { units.removeSubrange(zero...) }
            return (.string(String(decoding: units, as: UTF16.self)), consumed)
        }
        return (.string(bytes: bytes), consumed)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], aligned: Bool) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        var i = 0
        let step = aligned ? needle.count : 1
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && Array(haystack[i..<i + needle.count]) == needle { return i }
            i += step
        }
        return nil
    }

    func parseArray(_ element: BinaryType, count: ProfileAmount?, maxCount: Int64, sentinel: String?,
                    at offset: Int64, parent: Value, depth: Int) -> Value {
        var wanted = maxCount
        if let count {
            guard let n = amount(count, parent) else { return .list([]) }
            wanted = min(max(0, n), maxCount)
        }
        let end = source.size ?? Int64.max
        // Fixed-width elements without a sentinel: one read for the whole array.
        if sentinel == nil, let width = element.fixedWidth, width > 0, case .integer(_, let signed, let big) = element {
            let available = max(0, (end - offset) / Int64(width))
            let n = Int(min(wanted, available))
            guard spend(elements: n), let bytes = read(offset, n * width) else { return .list([]) }
            return .list((0..<n).map { i in
                var value: UInt64 = 0
                let slice = bytes[(i * width)..<((i + 1) * width)]
                if big { for b in slice { value = value << 8 | UInt64(b) } } else { for b in slice.reversed() { value = value << 8 | UInt64(b) } }
                if signed && width < 8 {
                    let shift = UInt64(64 - width * 8)
                    return .int(Int64(bitPattern: value << shift) >> Int64(shift))
                }
                return .int(Int64(bitPattern: value))
            })
        }
        var items: [Value] = []
        var position = offset
        var index: Int64 = 0
        while index < wanted && position < end && position >= 0 {
            if context.cancellation.isCancelled { break }
            guard spend(elements: 1) else { break }
            let item = parse(element, at: position, parent: parent, depth: depth + 1)
            if let sentinel, evaluate(sentinel, item).isTruthy { break }
            items.append(item)
            let step = size(of: element, item, at: position, parent: parent)
            guard step > 0 else { break }
            let (next, overflow) = position.addingReportingOverflow(step)
            if overflow { break }
            position = next
            index += 1
        }
        return .list(items)
    }

    /// How many bytes a parsed value occupies (to step through arrays).
    func size(of type: BinaryType, _ value: Value, at offset: Int64, parent: Value) -> Int64 {
        if let width = type.fixedWidth { return Int64(width) }
        switch type {
        case .structure, .union:
            if case .object(let o) = value, let s = o as? BinaryStruct { return s.size }
            return 0
        case .string(let options):
            return parseString(options, at: offset, parent: parent).size
        default:
            return 0
        }
    }

    static func text(_ value: Value) -> String {
        switch value.reduced() {
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .null: return ""
        case let v: return v.stringValue ?? JSONWriter.string(v.materialized())
        }
    }

    static func timestamp(_ raw: Int64, kind: BinaryType.TimestampKind, factor: Int64) -> Value {
        switch kind {
        case .epoch:
            let seconds = raw / factor
            let fraction = raw % factor
            let (nanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            guard !overflow else { return .null }
            return .timestamp(Timestamp(nanoseconds: nanos + fraction * (1_000_000_000 / factor)))
        case .fileTime:
            // 100 ns intervals since 1601-01-01.
            let ticks = raw / factor
            let unixTicks = ticks &- 116_444_736_000_000_000
            let (nanos, overflow) = unixTicks.multipliedReportingOverflow(by: 100)
            guard !overflow else { return .null }
            return .timestamp(Timestamp(nanoseconds: nanos))
        case .fat:
            // DOS date in the high word, time in the low word.
            let date = (raw >> 16) & 0xFFFF
            let time = raw & 0xFFFF
            var parts = DateComponents()
            parts.year = Int(1980 + (date >> 9))
            parts.month = Int((date >> 5) & 0xF)
            parts.day = Int(date & 0x1F)
            parts.hour = Int(time >> 11)
            parts.minute = Int((time >> 5) & 0x3F)
            parts.second = Int((time & 0x1F) * 2)
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
            guard let d = calendar.date(from: parts) else { return .null }
            return .timestamp(Timestamp(seconds: d.timeIntervalSince1970))
        }
    }
}

/// A struct of a profile laid over the input at an offset. Its fields are parsed when first
/// read (so offsets and sizes may depend on other fields, through lambdas) and then cached.
/// Fields named `__…` are readable but not shown. SizeOf, StartOf and EndOf describe the struct.
final class BinaryStruct: HostObject, @unchecked Sendable {
    let definition: StructDefinition
    let offset: Int64
    let parse: BinaryParse
    let depth: Int
    private var cache: [String: Value] = [:]
    private var computing: Set<String> = []
    private var cachedSize: Int64?

    init(definition: StructDefinition, offset: Int64, parse: BinaryParse, depth: Int) {
        self.definition = definition
        self.offset = offset
        self.parse = parse
        self.depth = depth
    }

    var typeName: String { definition.name }

    var memberNames: [String] { definition.fields.map(\.name).filter { !$0.hasPrefix("__") } }

    func member(_ name: String) -> Value? {
        switch name {
        case "SizeOf": return .int(size)
        case "StartOf": return .int(offset)
        case "EndOf": return .int(offset &+ size)
        default: break
        }
        guard let i = definition.index[name] else { return nil }
        return field(definition.fields[i])
    }

    private func field(_ field: FieldDefinition) -> Value {
        parse.lock.lock()
        defer { parse.lock.unlock() }
        if let cached = cache[field.name] { return cached }
        // A field whose offset or value depends on itself would recurse forever.
        guard computing.insert(field.name).inserted else {
            parse.log("\(definition.name).\(field.name) depends on itself")
            return .null
        }
        defer { computing.remove(field.name) }
        var value = Value.null
        if let relative = parse.amount(field.offset, .object(self)) {
            let (absolute, overflow) = offset.addingReportingOverflow(relative)
            if !overflow { value = parse.parse(field.type, at: absolute, parent: .object(self), depth: depth) }
        }
        cache[field.name] = value
        return value
    }

    /// The struct's size: its declared size, its size lambda, or (for size 0) as far as its
    /// fixed-width fields reach.
    var size: Int64 {
        parse.lock.lock()
        defer { parse.lock.unlock() }
        if let cachedSize { return cachedSize }
        guard computing.insert("SizeOf").inserted else {
            parse.log("\(definition.name): its size depends on itself")
            return 0
        }
        defer { computing.remove("SizeOf") }
        var result: Int64 = 0
        switch definition.size {
        case .constant(let n) where n > 0: result = n
        case .lambda(let text): result = parse.evaluate(text, .object(self)).intValue ?? 0
        default:
            for f in definition.fields {
                guard case .constant(let start) = f.offset, let width = f.type.fixedWidth else { continue }
                result = max(result, start + Int64(width))
            }
        }
        result = max(0, result)
        cachedSize = result
        return result
    }
}
