import Foundation
import Synchronization
import VQL

/// grok(): named patterns (%{NAME:field:type}) over log lines, as Logstash and Velociraptor use
/// them. The pattern library below is Quarry's own definition of the common names; expressions
/// compile once (cached by text) into one PCRE2 regex with generated group names, so field names
/// may contain dots (`system.auth.ssh.signature`).
public enum Grok {
    static let library: [String: String] = [
        "USERNAME": #"[a-zA-Z0-9._-]+"#, "USER": "%{USERNAME}",
        "INT": #"(?:[+-]?(?:[0-9]+))"#,
        "BASE10NUM": #"(?<![0-9.+-])(?>[+-]?(?:(?:[0-9]+(?:\.[0-9]+)?)|(?:\.[0-9]+)))"#,
        "NUMBER": "(?:%{BASE10NUM})", "POSINT": #"\b(?:[1-9][0-9]*)\b"#, "NONNEGINT": #"\b(?:[0-9]+)\b"#,
        "WORD": #"\b\w+\b"#, "NOTSPACE": #"\S+"#, "SPACE": #"\s*"#, "DATA": ".*?", "GREEDYDATA": ".*",
        "QUOTEDSTRING": #"(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"#,
        "UUID": "[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
        "MAC": "(?:[A-Fa-f0-9]{2}[:-]){5}[A-Fa-f0-9]{2}",
        "IPV4": #"(?<![0-9])(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})(?![0-9])"#,
        "IPV6": "(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|::(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}|::",
        "IP": "(?:%{IPV6}|%{IPV4})",
        "HOSTNAME": #"\b(?:[0-9A-Za-z][0-9A-Za-z-]{0,62})(?:\.(?:[0-9A-Za-z][0-9A-Za-z-]{0,62}))*(?:\.?|\b)"#,
        "IPORHOST": "(?:%{IP}|%{HOSTNAME})", "HOSTPORT": "%{IPORHOST}:%{POSINT}",
        "UNIXPATH": #"(?:/[\w_%!$@:.,+~-]*)+"#, "PATH": "(?:%{UNIXPATH})",
        "EMAILADDRESS": #"[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+"#,
        "MONTH": #"\b(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]un(?:e)?|[Jj]ul(?:y)?|[Aa]ug(?:ust)?|[Ss]ep(?:tember)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?)\b"#,
        "MONTHNUM": "(?:0?[1-9]|1[0-2])", "MONTHDAY": "(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])",
        "DAY": #"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)"#,
        "YEAR": #"(?>\d\d){1,2}"#, "HOUR": "(?:2[0123]|[01]?[0-9])", "MINUTE": "(?:[0-5][0-9])",
        "SECOND": #"(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)"#,
        "TIME": "(?<![0-9])%{HOUR}:%{MINUTE}(?::%{SECOND})(?![0-9])",
        "ISO8601_TIMEZONE": "(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))",
        "TIMESTAMP_ISO8601": "%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?",
        "SYSLOGTIMESTAMP": "%{MONTH} +%{MONTHDAY} %{TIME}",
        "PROG": #"[\x21-\x5a\x5c\x5e-\x7e]+"#,
        "SYSLOGPROG": #"%{PROG:program}(?:\[%{POSINT:pid}\])?"#,
        "SYSLOGHOST": "%{IPORHOST}",
        "SYSLOGFACILITY": "<%{NONNEGINT:facility}.%{NONNEGINT:priority}>",
        "SYSLOGBASE": "%{SYSLOGTIMESTAMP:timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:logsource} %{SYSLOGPROG}:",
        "HTTPDUSER": "%{EMAILADDRESS}|%{USER}",
        "HTTPDATE": "%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT}",
        "QS": "%{QUOTEDSTRING}",
        "COMMONAPACHELOG": #"%{IPORHOST:clientip} %{HTTPDUSER:ident} %{USER:auth} \[%{HTTPDATE:timestamp}\] "(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" %{NUMBER:response} (?:%{NUMBER:bytes}|-)"#,
        "COMBINEDAPACHELOG": "%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}",
        "LOGLEVEL": "(?:[Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo|INFO|[Ww]arn?(?:ing)?|WARN?(?:ING)?|[Ee]rr?(?:or)?|ERR?(?:OR)?|[Cc]rit?(?:ical)?|CRIT?(?:ICAL)?|[Ff]atal|FATAL|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?)",
    ]

    /// A compiled grok expression: the regex and, per generated group, the field name and type.
    struct Compiled: @unchecked Sendable {
        let regex: CompiledRegex
        let fields: [(group: String, name: String, type: String?)]
    }

    private static let cache = Mutex<[String: Compiled]>([:])

    struct GrokError: Error, CustomStringConvertible {
        let message: String
        var description: String { "grok: \(message)" }
    }

    static func compile(_ expression: String, extra: [String: String]) throws -> Compiled {
        let key = expression + "\u{0}" + extra.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{0}")
        if let hit = cache.withLock({ $0[key] }) { return hit }
        var fields: [(String, String, String?)] = []
        func expand(_ text: String, depth: Int) throws -> String {
            guard depth < 32 else { throw GrokError(message: "pattern nesting too deep (a pattern refers to itself?)") }
            var out = ""
            var rest = Substring(text)
            while let open = rest.range(of: "%{") {
                out += rest[..<open.lowerBound]
                guard let close = rest[open.upperBound...].firstIndex(of: "}") else { throw GrokError(message: "unclosed %{ in \(text)") }
                let parts = rest[open.upperBound..<close].split(separator: ":", maxSplits: 2).map(String.init)
                guard let name = parts.first, let definition = extra[name] ?? library[name] else {
                    throw GrokError(message: "unknown pattern %{\(rest[open.upperBound..<close])}")
                }
                let body = try expand(definition, depth: depth + 1)
                if parts.count > 1 {
                    let group = "g\(fields.count)"
                    fields.append((group, parts[1], parts.count > 2 ? parts[2] : nil))
                    out += "(?<\(group)>\(body))"
                } else {
                    out += "(?:\(body))"
                }
                rest = rest[rest.index(after: close)...]
            }
            return out + rest
        }
        let pattern = try expand(expression, depth: 0)
        let compiled = Compiled(regex: try CompiledRegex(pattern, caseInsensitive: false), fields: fields)
        cache.withLock { $0[key] = compiled }
        return compiled
    }

    public static let function = FunctionDeclaration(
        name: "grok", summary: "Parses text with grok patterns (%{NAME:field:int}); a dict of the named fields, or NULL when nothing matches.",
        arguments: [
            ArgumentSpec("grok", .stringList, required: true, "A grok expression, or a list tried in order."),
            ArgumentSpec("data", .string, required: true, "The text (a log line)."),
            ArgumentSpec("patterns", .dict, "Extra pattern definitions NAME => regex."),
            ArgumentSpec("all_captures", .bool, "Accepted for compatibility."),
        ],
        returns: .dict,
        examples: ["SELECT grok(grok='%{SYSLOGBASE} %{GREEDYDATA:message}', data='Nov 29 05:40:01 host sshd[42]: Accepted password for root') AS Event FROM scope()"]
    ) { ctx in
        guard let expressions = ctx.strings("grok"), let data = ctx.bytes("data") else { return .null }
        var extra: [String: String] = [:]
        if case .dict(let d)? = ctx.value("patterns") {
            for (k, v) in d.pairs { extra[k] = v.stringValue }
        }
        for expression in expressions {
            let compiled: Compiled
            do {
                compiled = try compile(expression, extra: extra)
            } catch {
                ctx.context.logOnce(.error, "\(error)")
                return .null
            }
            guard let groups = compiled.regex.firstMatch(in: data) else { continue }
            // As Velociraptor's grok: every named field, "" when its group did not take part,
            // keys in sorted order (its result is a Go map).
            var values: [String: Value] = [:]
            let names = compiled.regex.captureNames
            for field in compiled.fields {
                // Unnamed groups in the expression shift the numbers: find the group by its name.
                guard let g = names.firstIndex(where: { $0 == field.group }), g < groups.count, let range = groups[g] else {
                    if values[field.name] == nil { values[field.name] = .string("") }
                    continue
                }
                let text = String(decoding: data[range], as: UTF8.self)
                switch field.type {
                case "int": values[field.name] = Int64(text).map(Value.int) ?? .string(text)
                case "float": values[field.name] = Double(text).map(Value.double) ?? .string(text)
                default: values[field.name] = .string(text)
                }
            }
            var result = Dict()
            for key in values.keys.sorted() { result[key] = values[key] }
            return .dict(result)
        }
        return .null
    }
}
