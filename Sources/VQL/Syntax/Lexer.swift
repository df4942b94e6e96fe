/// Turns VQL text into tokens with source ranges. Comments (`--`, `//`, `/* */`) are dropped
/// wherever a token could start, exactly as Velociraptor's lexer does.
public struct Lexer {
    private let bytes: [UInt8]
    private var offset = 0
    private var line = 1
    private var column = 1

    public init(_ text: String) {
        self.bytes = Array(text.utf8)
    }

    /// Lexes the whole text. The last token is always `.end`.
    public static func tokenize(_ text: String) throws(Diagnostic) -> [Token] {
        var lexer = Lexer(text)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private var position: SourcePosition { SourcePosition(offset: offset, line: line, column: column) }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        let index = offset + ahead
        return index < bytes.count ? bytes[index] : nil
    }

    private mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where offset < bytes.count {
            if bytes[offset] == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else {
                column += 1
            }
            offset += 1
        }
    }

    private mutating func skipTrivia() throws(Diagnostic) {
        while let c = peek() {
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C {
                advance()
            } else if (c == UInt8(ascii: "-") && peek(1) == UInt8(ascii: "-"))
                || (c == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "/"))
            {
                while let d = peek(), d != 0x0A { advance() }
            } else if c == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                let start = position
                advance(2)
                while true {
                    guard let d = peek() else {
                        throw Diagnostic(
                            .syntax, "unterminated /* comment",
                            range: SourceRange(start: start, end: position))
                    }
                    if d == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/") {
                        advance(2)
                        break
                    }
                    advance()
                }
            } else {
                return
            }
        }
    }

    private func text(from start: SourcePosition) -> String {
        String(decoding: bytes[start.offset..<offset], as: UTF8.self)
    }

    private static func isIdentStart(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_") || c >= 0x80
    }

    private static func isIdentContinue(_ c: UInt8) -> Bool {
        isIdentStart(c) || (c >= 0x30 && c <= 0x39)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// Whether `name` lexes as one bare identifier, so it needs no backquotes. Keywords count as
    /// bare only where the grammar takes them as names (after a dot).
    static func isBareName(_ name: String, keywordsAllowed: Bool) -> Bool {
        let utf8 = Array(name.utf8)
        guard let first = utf8.first, isIdentStart(first), utf8.dropFirst().allSatisfy(isIdentContinue) else { return false }
        return keywordsAllowed || Keyword(rawValue: name.uppercased()) == nil
    }

    public mutating func next() throws(Diagnostic) -> Token {
        try skipTrivia()
        let start = position
        guard let c = peek() else {
            return Token(kind: .end, range: SourceRange(start: start, end: start), text: "")
        }
        func make(_ kind: Token.Kind) -> Token {
            Token(kind: kind, range: SourceRange(start: start, end: position), text: text(from: start))
        }
        if Lexer.isIdentStart(c) {
            while let d = peek(), Lexer.isIdentContinue(d) { advance() }
            let word = text(from: start)
            if let keyword = Keyword(rawValue: word.uppercased()) {
                return make(.keyword(keyword))
            }
            return make(.identifier(word))
        }
        if Lexer.isDigit(c) {
            return try lexNumber(start: start)
        }
        if c == UInt8(ascii: "`") {
            advance()
            var name: [UInt8] = []
            while true {
                guard let d = peek() else {
                    throw Diagnostic(
                        .syntax, "unterminated `quoted identifier`", range: SourceRange(start: start, end: position))
                }
                advance()
                if d == UInt8(ascii: "`") { break }
                name.append(d)
            }
            return make(.quotedIdentifier(String(decoding: name, as: UTF8.self)))
        }
        if c == UInt8(ascii: "'") && peek(1) == UInt8(ascii: "'") && peek(2) == UInt8(ascii: "'") {
            advance(3)
            var content: [UInt8] = []
            while true {
                guard let d = peek() else {
                    throw Diagnostic(
                        .syntax, "unterminated ''' string", range: SourceRange(start: start, end: position))
                }
                if d == UInt8(ascii: "'") && peek(1) == UInt8(ascii: "'") && peek(2) == UInt8(ascii: "'") {
                    advance(3)
                    break
                }
                content.append(d)
                advance()
            }
            let raw = text(from: start)
            return make(.string(content, quote: .triple, raw: raw))
        }
        if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
            return try lexQuoted(start: start, quote: c)
        }
        // Symbols: longest match first.
        let two: String? = peek(1).map { String(decoding: [c, $0], as: UTF8.self) }
        if let two, let symbol = Symbol(rawValue: two) {
            advance(2)
            return make(.symbol(symbol))
        }
        if let symbol = Symbol(rawValue: String(decoding: [c], as: UTF8.self)) {
            advance()
            return make(.symbol(symbol))
        }
        advance()
        throw Diagnostic(
            .syntax, "unexpected character '\(text(from: start))'", range: SourceRange(start: start, end: position))
    }

    private mutating func lexNumber(start: SourcePosition) throws(Diagnostic) -> Token {
        func make(_ kind: Token.Kind) -> Token {
            Token(kind: kind, range: SourceRange(start: start, end: position), text: text(from: start))
        }
        if peek() == UInt8(ascii: "0"), let x = peek(1), x == UInt8(ascii: "x") || x == UInt8(ascii: "X") {
            advance(2)
            while let d = peek(), d.isHexDigit { advance() }
            let digits = String(text(from: start).dropFirst(2))
            guard let value = UInt64(digits, radix: 16) else {
                throw Diagnostic(
                    .syntax, "bad hexadecimal number '\(text(from: start))'",
                    range: SourceRange(start: start, end: position))
            }
            return make(.integer(Int64(bitPattern: value)))
        }
        while let d = peek(), Lexer.isDigit(d) { advance() }
        var isFloat = false
        if peek() == UInt8(ascii: "."), let d = peek(1), Lexer.isDigit(d) {
            isFloat = true
            advance()
            while let d = peek(), Lexer.isDigit(d) { advance() }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            var ahead = 1
            if let s = peek(1), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { ahead = 2 }
            if let d = peek(ahead), Lexer.isDigit(d) {
                isFloat = true
                advance(ahead)
                while let d = peek(), Lexer.isDigit(d) { advance() }
            }
        }
        let literal = text(from: start)
        if !isFloat, let value = Int64(literal) {
            return make(.integer(value))
        }
        guard let value = Double(literal) else {
            throw Diagnostic(
                .syntax, "bad number '\(literal)'", range: SourceRange(start: start, end: position))
        }
        return make(.float(value))
    }

    private mutating func lexQuoted(start: SourcePosition, quote: UInt8) throws(Diagnostic) -> Token {
        advance()
        var content: [UInt8] = []
        while true {
            guard let d = peek() else {
                throw Diagnostic(
                    .syntax, "unterminated string: expected a closing \(quote == 0x27 ? "'" : "\"")",
                    range: SourceRange(start: start, end: position))
            }
            advance()
            if d == quote { break }
            if d != UInt8(ascii: "\\") {
                content.append(d)
                continue
            }
            guard let e = peek() else { continue }
            advance()
            switch e {
            case UInt8(ascii: "n"): content.append(0x0A)
            case UInt8(ascii: "r"): content.append(0x0D)
            case UInt8(ascii: "t"): content.append(0x09)
            case UInt8(ascii: "0"): content.append(0x00)
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "/"): content.append(e)
            case UInt8(ascii: "x"):
                if let h1 = peek(), let h2 = peek(1), let v = UInt8(String(decoding: [h1, h2], as: UTF8.self), radix: 16) {
                    advance(2)
                    content.append(v)
                } else {
                    content.append(contentsOf: [UInt8(ascii: "\\"), e])
                }
            case UInt8(ascii: "u"):
                var hex: [UInt8] = []
                for i in 0..<4 { if let h = peek(i), h.isHexDigit { hex.append(h) } }
                if hex.count == 4, let v = UInt32(String(decoding: hex, as: UTF8.self), radix: 16),
                    let scalar = Unicode.Scalar(v)
                {
                    advance(4)
                    content.append(contentsOf: Array(String(Character(scalar)).utf8))
                } else {
                    content.append(contentsOf: [UInt8(ascii: "\\"), e])
                }
            default:
                content.append(contentsOf: [UInt8(ascii: "\\"), e])
            }
        }
        let raw = text(from: start)
        return Token(
            kind: .string(content, quote: quote == 0x27 ? .single : .double, raw: raw),
            range: SourceRange(start: start, end: position), text: raw)
    }
}

extension UInt8 {
    var isHexDigit: Bool {
        (self >= 0x30 && self <= 0x39) || (self >= 0x41 && self <= 0x46) || (self >= 0x61 && self <= 0x66)
    }
}
