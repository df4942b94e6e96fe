import Foundation

/// Go's fmt verbs as Velociraptor's format() uses them: %v %s %d %x %X %q %f %t %T %c %o %b %e %g
/// with flags, width and precision. `%x` on a string is the hex of its bytes; with a width it applies
/// per byte (`%02x` on binary data).
enum GoFormat {
    /// Formats with `args` given as one value: a list supplies one argument per verb, anything
    /// else is the single argument (no array is built for the common one-argument case).
    static func format(_ template: [UInt8], argument: Value?) -> String {
        Template(template).render(argument: argument)
    }

    static func format<Args: RandomAccessCollection<Value>>(_ template: [UInt8], _ args: Args) -> String where Args.Index == Int {
        Template(template).render(args)
    }

    /// One conversion: `%[flags][width][.precision]verb`.
    struct Spec: Sendable {
        var verb: UInt8
        var minus = false, plus = false, zero = false, space = false, sharp = false
        var width: Int?
        var precision: Int?

        var isPlain: Bool {
            width == nil && precision == nil && !plus && !sharp
                && (verb == UInt8(ascii: "v") || verb == UInt8(ascii: "s") || verb == UInt8(ascii: "d"))
        }
    }

    /// A format string parsed once into literal runs and conversions (format() with a constant
    /// format parses it at compile time).
    struct Template: Sendable {
        enum Piece: Sendable {
            case literal([UInt8])
            case percent
            case conversion(Spec)
            case noVerb
        }
        let pieces: [Piece]
        /// `prefix %v suffix` with one plain conversion: rendered by string concatenation, which
        /// stays allocation-free for short results.
        private let simple: (prefix: String, suffix: String, prefixBytes: [UInt8], suffixBytes: [UInt8], verb: UInt8)?

        /// prefix + decimal n + suffix, written straight into the string's storage.
        static func concatenate(_ prefix: [UInt8], _ n: Int64, _ suffix: [UInt8]) -> String {
            // The exact length keeps short results in Swift's inline small-string form (no allocation).
            var digits = 1
            var rest = n.magnitude
            while rest >= 10 {
                rest /= 10
                digits += 1
            }
            return String(unsafeUninitializedCapacity: prefix.count + digits + (n < 0 ? 1 : 0) + suffix.count) { buffer in
                var i = 0
                for b in prefix { buffer[i] = b; i += 1 }
                if n < 0 { buffer[i] = UInt8(ascii: "-"); i += 1 }
                var v = n.magnitude
                var divisor: UInt64 = 1
                while divisor <= v / 10 { divisor *= 10 }
                while divisor > 0 {
                    buffer[i] = UInt8(48 + v / divisor)
                    v %= divisor
                    divisor /= 10
                    i += 1
                }
                for b in suffix { buffer[i] = b; i += 1 }
                return i
            }
        }

        init(_ template: [UInt8]) {
            self.init(pieces: Template.parse(template))
        }

        private init(pieces: [Piece]) {
            self.pieces = pieces
            var prefix: [UInt8] = []
            var suffix: [UInt8] = []
            var spec: Spec?
            var valid = true
            for piece in pieces {
                switch piece {
                case .literal(let bytes): if spec == nil { prefix += bytes } else { suffix += bytes }
                case .conversion(let s) where spec == nil && s.isPlain: spec = s
                default: valid = false
                }
            }
            if valid, let spec, let p = String(validating: prefix, as: UTF8.self), let q = String(validating: suffix, as: UTF8.self) {
                simple = (p, q, prefix, suffix, spec.verb)
            } else {
                simple = nil
            }
        }

        private static func parse(_ template: [UInt8]) -> [Piece] {
            var pieces: [Piece] = []
            var literal: [UInt8] = []
            var i = 0
            func flush() {
                if !literal.isEmpty { pieces.append(.literal(literal)) }
                literal = []
            }
            while i < template.count {
                let c = template[i]
                if c != UInt8(ascii: "%") {
                    literal.append(c)
                    i += 1
                    continue
                }
                i += 1
                flush()
                guard i < template.count else {
                    pieces.append(.noVerb)
                    break
                }
                var spec = Spec(verb: 0)
                flags: while i < template.count {
                    switch template[i] {
                    case UInt8(ascii: "-"): spec.minus = true
                    case UInt8(ascii: "+"): spec.plus = true
                    case UInt8(ascii: "0"): spec.zero = true
                    case UInt8(ascii: " "): spec.space = true
                    case UInt8(ascii: "#"): spec.sharp = true
                    default: break flags
                    }
                    i += 1
                }
                while i < template.count, template[i] >= 0x30, template[i] <= 0x39 {
                    spec.width = (spec.width ?? 0) * 10 + Int(template[i] - 0x30)
                    i += 1
                }
                if i < template.count, template[i] == UInt8(ascii: ".") {
                    i += 1
                    spec.precision = 0
                    while i < template.count, template[i] >= 0x30, template[i] <= 0x39 {
                        spec.precision = (spec.precision ?? 0) * 10 + Int(template[i] - 0x30)
                        i += 1
                    }
                }
                guard i < template.count else {
                    pieces.append(.noVerb)
                    break
                }
                spec.verb = template[i]
                i += 1
                pieces.append(spec.verb == UInt8(ascii: "%") ? .percent : .conversion(spec))
            }
            flush()
            return pieces
        }

        func render(argument: Value?) -> String {
            if let simple, let argument {
                switch argument {
                case .int(let n): return Template.concatenate(simple.prefixBytes, n, simple.suffixBytes)
                case .string(let text) where simple.verb != UInt8(ascii: "d"): return simple.prefix + text + simple.suffix
                default: break
                }
            }
            switch argument {
            case nil: return render([])
            case .list(let items)?: return render(items)
            case .query?: return render(argument?.listElements ?? [])
            case let single?: return render(CollectionOfOne(single))
            }
        }

        func render<Args: RandomAccessCollection<Value>>(_ args: Args) -> String where Args.Index == Int {
            var out: [UInt8] = []
            out.reserveCapacity(32)
            var argIndex = 0
            for piece in pieces {
                switch piece {
                case .literal(let bytes): out.append(contentsOf: bytes)
                case .percent: out.append(UInt8(ascii: "%"))
                case .noVerb: out.append(contentsOf: "%!(NOVERB)".utf8)
                case .conversion(let spec):
                    guard argIndex < args.count else {
                        out.append(contentsOf: "%!\(Character(Unicode.Scalar(spec.verb)))(MISSING)".utf8)
                        continue
                    }
                    let arg = args[args.startIndex + argIndex].reduced()
                    argIndex += 1
                    GoFormat.convert(spec, arg, into: &out)
                }
            }
            if argIndex < args.count {
                out.append(contentsOf: "%!(EXTRA ".utf8)
                out.append(contentsOf: args.dropFirst(argIndex).map { plain($0.reduced()) }.joined(separator: ", ").utf8)
                out.append(UInt8(ascii: ")"))
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Appends one converted argument.
    static func convert(_ spec: Spec, _ arg: Value, into out: inout [UInt8]) {
        let verb = spec.verb
        if spec.isPlain {
            switch arg {
            case .int(let n):
                JSONWriter.appendInt(n, into: &out)
                return
            case .string(let text) where verb != UInt8(ascii: "d"):
                out.append(contentsOf: text.utf8)
                return
            default: break
            }
        }
        var body = render(
            verb, arg, precision: spec.precision, plus: spec.plus, sharp: spec.sharp, space: spec.space,
            width: spec.width, zero: spec.zero)
        if let width = spec.width, body.count < width {
            let padCount = width - body.count
            if spec.minus {
                body.append(contentsOf: [UInt8](repeating: 0x20, count: padCount))
            } else if spec.zero && isNumericVerb(verb) && (arg.doubleValue != nil || isHexOfBytes(verb, arg)) {
                let signed = body.first == UInt8(ascii: "-") || body.first == UInt8(ascii: "+")
                let pad = [UInt8](repeating: 0x30, count: padCount)
                body = signed ? [body[0]] + pad + body.dropFirst() : pad + body
            } else {
                body = [UInt8](repeating: 0x20, count: padCount) + body
            }
        }
        out.append(contentsOf: body)
    }

    private static func isNumericVerb(_ verb: UInt8) -> Bool {
        "dfFeEgGxXobv".utf8.contains(verb)
    }

    /// %x of a string: Go pads the whole hex text to the width, not each byte.
    private static func isHexOfBytes(_ verb: UInt8, _ value: Value) -> Bool {
        guard verb == UInt8(ascii: "x") || verb == UInt8(ascii: "X") else { return false }
        switch value {
        case .string, .bytes: return true
        default: return false
        }
    }

    private static func render(
        _ verb: UInt8, _ arg: Value, precision: Int?, plus: Bool, sharp: Bool, space: Bool, width: Int?, zero: Bool
    ) -> [UInt8] {
        switch verb {
        case UInt8(ascii: "v"), UInt8(ascii: "s"):
            var text = Array(plain(arg).utf8)
            if verb == UInt8(ascii: "s"), let precision, text.count > precision { text = Array(text.prefix(precision)) }
            return text
        case UInt8(ascii: "d"):
            guard let n = arg.intValue, arg.doubleValue != nil else { return Array("%!d(\(plain(arg)))".utf8) }
            return Array(((plus && n >= 0) ? "+" : "") .utf8) + Array(String(n).utf8)
        case UInt8(ascii: "x"), UInt8(ascii: "X"):
            let upper = verb == UInt8(ascii: "X")
            let digits = Array((upper ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
            switch arg {
            case .string, .bytes:
                let bytes = arg.byteValue ?? []
                var out: [UInt8] = []
                out.reserveCapacity(bytes.count * 2)
                for b in bytes {
                    out.append(digits[Int(b >> 4)])
                    out.append(digits[Int(b & 15)])
                }
                return out
            case .double(let d) where d != d.rounded():
                return Array(String(d).utf8)
            default:
                guard let n = arg.intValue else { return Array("%!x(\(plain(arg)))".utf8) }
                var text = String(n.magnitude, radix: 16, uppercase: upper)
                if sharp { text = (upper ? "0X" : "0x") + text }
                return Array(((n < 0 ? "-" : "") + text).utf8)
            }
        case UInt8(ascii: "o"):
            guard let n = arg.intValue else { return Array("%!o(\(plain(arg)))".utf8) }
            return Array(((n < 0 ? "-" : "") + String(n.magnitude, radix: 8)).utf8)
        case UInt8(ascii: "b"):
            guard let n = arg.intValue else { return Array("%!b(\(plain(arg)))".utf8) }
            return Array(((n < 0 ? "-" : "") + String(n.magnitude, radix: 2)).utf8)
        case UInt8(ascii: "c"):
            guard let n = arg.intValue, let scalar = Unicode.Scalar(UInt32(truncatingIfNeeded: n)) else { return [] }
            return Array(String(Character(scalar)).utf8)
        case UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "g"), UInt8(ascii: "G"):
            guard let d = arg.doubleValue else { return Array("%!\(Character(Unicode.Scalar(verb)))(\(plain(arg)))".utf8) }
            let spec: String
            switch verb {
            case UInt8(ascii: "f"), UInt8(ascii: "F"): spec = "%.\(precision ?? 6)f"
            case UInt8(ascii: "e"): spec = "%.\(precision ?? 6)e"
            case UInt8(ascii: "E"): spec = "%.\(precision ?? 6)E"
            default:
                if precision == nil { return Array(JSONWriter.plainDouble(d).utf8) }
                spec = "%.\(precision ?? 6)g"
            }
            var text = cFormat(spec, d)
            if plus && d >= 0 { text = "+" + text }
            return Array(text.utf8)
        case UInt8(ascii: "q"):
            var out: [UInt8] = []
            JSONWriter.writeString(plain(arg), into: &out)
            return out
        case UInt8(ascii: "t"):
            return Array((arg.isTruthy ? "true" : "false").utf8)
        case UInt8(ascii: "T"):
            return Array(goTypeName(arg).utf8)
        default:
            return Array("%!\(Character(Unicode.Scalar(verb)))(\(plain(arg)))".utf8)
        }
    }

    private static func cFormat(_ spec: String, _ d: Double) -> String {
        String(format: spec, d)
    }

    private static func goTypeName(_ v: Value) -> String {
        switch v {
        case .null: return "<nil>"
        case .bool: return "bool"
        case .int: return "int64"
        case .double: return "float64"
        case .string: return "string"
        case .bytes: return "[]uint8"
        case .timestamp: return "time.Time"
        case .list, .query: return "[]interface {}"
        case .dict: return "*ordereddict.Dict"
        case .lazy: return "lazy"
        case .object(let o): return o.typeName
        }
    }

    /// %v rendering: strings as they are, numbers plainly, containers as JSON.
    static func plain(_ v: Value) -> String {
        switch v {
        case .null: return "<nil>"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return JSONWriter.plainDouble(d)
        case .string(let s): return s
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .timestamp(let t): return JSONWriter.rfc3339(t)
        case .lazy: return plain(v.reduced())
        case .object(let o) where o.scalar != nil: return plain(o.scalar ?? .null)
        default: return JSONWriter.string(v.materialized())
        }
    }
}

