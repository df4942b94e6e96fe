import Foundation

/// The RFC 5322 message mail() sends: headers (the caller's override the defaults of the same
/// name), then the body with CRLF line ends, dot-stuffed and terminated for SMTP's DATA.
enum MailFormat {
    static func data(_ message: MailMessage, host: String, date: Date = Date()) -> String {
        var headers: [(String, String)] = [
            ("From", message.from),
            ("To", message.to.joined(separator: ", ")),
        ]
        if !message.cc.isEmpty { headers.append(("Cc", message.cc.joined(separator: ", "))) }
        headers += [
            ("Subject", encodedWord(message.subject)),
            ("Date", rfc5322(date)),
            ("Message-ID", "<\(UUID().uuidString.lowercased())@\(host)>"),
            ("MIME-Version", "1.0"),
        ]
        let ascii = message.body.utf8.allSatisfy { $0 < 0x80 }
        var body = message.body
        let typed = message.headers.contains { $0.0.lowercased() == "content-type" }
        if !typed {
            headers.append(("Content-Type", "text/plain; charset=UTF-8"))
            if ascii {
                headers.append(("Content-Transfer-Encoding", "7bit"))
            } else {
                headers.append(("Content-Transfer-Encoding", "base64"))
                body = wrap(Data(message.body.utf8).base64EncodedString(), width: 76)
            }
        }
        for (name, value) in message.headers {
            let clean = safeName(name)
            guard !clean.isEmpty else { continue }
            headers.removeAll { $0.0.lowercased() == clean.lowercased() }
            headers.append((clean, value))
        }
        var out = ""
        for (name, value) in headers { out += "\(name): \(oneLine(value))\r\n" }
        out += "\r\n"
        for line in crlfLines(body) { out += (line.hasPrefix(".") ? "." : "") + line + "\r\n" }
        return out + "."
    }

    /// A header value on one line: CR and LF (which would start a new header) become spaces.
    static func oneLine(_ value: String) -> String {
        String(value.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }

    /// Header names are printable ASCII without colon or space (RFC 5322 2.2).
    static func safeName(_ name: String) -> String {
        String(name.unicodeScalars.filter { $0.value > 32 && $0.value < 127 && $0 != ":" }.map(Character.init))
    }

    /// RFC 2047 "=?UTF-8?B?…?=" when the text is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }
        return "=?UTF-8?B?\(Data(oneLine(text).utf8).base64EncodedString())?="
    }

    static func rfc5322(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    static func wrap(_ text: String, width: Int) -> String {
        var lines: [Substring] = []
        var rest = Substring(text)
        while rest.count > width {
            lines.append(rest.prefix(width))
            rest = rest.dropFirst(width)
        }
        lines.append(rest)
        return lines.joined(separator: "\r\n")
    }

    /// The body's lines, whatever mix of CRLF, LF or CR it was written with.
    static func crlfLines(_ body: String) -> [String] {
        var lines: [String] = []
        var current = ""
        var previousCR = false
        for scalar in body.unicodeScalars {
            if scalar == "\n" {
                if !previousCR { lines.append(current); current = "" }
                previousCR = false
            } else if scalar == "\r" {
                lines.append(current)
                current = ""
                previousCR = true
            } else {
                current.unicodeScalars.append(scalar)
                previousCR = false
            }
        }
        lines.append(current)
        return lines
    }
}
