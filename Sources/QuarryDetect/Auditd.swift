import Foundation
import VQL

/// parse_auditd(): Linux audit logs (/var/log/audit/audit.log) as events. The records of one
/// event (same `audit(time:serial)`: SYSCALL, EXECVE, CWD, PATH, PROCTITLE…) are joined into
/// one row; hex-encoded values are decoded and the command line is rebuilt.
public enum AuditdPlugin {
    public static let plugin = PluginDeclaration(
        name: "parse_auditd",
        summary: "One row per audit event: Timestamp, Sequence, Node, Type (of its first record), Result, Data (the fields of the event's main record), Args (the command line from EXECVE or PROCTITLE), Paths, and every Record with its fields.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "One or more audit log files."),
            ArgumentSpec("accessor", .string, "How to read them: file (default) or data."),
            ArgumentSpec("buffer_size", .int, "Longest line read (default 65536 bytes; longer lines are cut)."),
        ],
        columns: [
            ColumnSpec("Timestamp", .timestamp), ColumnSpec("Sequence", .int), ColumnSpec("Node", .string),
            ColumnSpec("Type", .string), ColumnSpec("Result", .string, "success or fail, when the event says"),
            ColumnSpec("Data", .dict), ColumnSpec("Args", .list), ColumnSpec("Paths", .list), ColumnSpec("Records", .list),
        ],
        examples: [#"SELECT Type, Data.comm AS Comm, Args FROM parse_auditd(accessor='data', filename='type=EXECVE msg=audit(1700000000.123:42): argc=2 a0="ls" a1="-la"\ntype=SYSCALL msg=audit(1700000000.123:42): syscall=59 success=yes comm="ls" exe="/usr/bin/ls"\n')"#],
        permissions: [.filesystemRead]
    ) { ctx in
        let accessor = ctx.string("accessor")
        let lineLimit = Int(max(256, min(ctx.int("buffer_size") ?? 65536, 16 << 20)))
        var sources = ParserInput.paths(ctx, "filename").makeIterator()
        var lines: LineReader?
        var assembler = AuditAssembler()
        var ready: [Value] = []
        return GeneratorCursor {
            while ready.isEmpty {
                try ctx.checkCancelled()
                if lines == nil {
                    guard let path = sources.next() else {
                        ready = assembler.flushAll()
                        if ready.isEmpty { return nil }
                        break
                    }
                    guard let source = ParserInput.open(path, accessor: accessor, ctx: ctx) else { continue }
                    lines = LineReader(source, maxLine: lineLimit)
                }
                guard let line = lines?.next() else {
                    lines = nil
                    continue
                }
                ready = assembler.add(line)
            }
            return ready.removeFirst()
        }
    }
}

/// Lines of a source read in chunks; over-long lines are cut at `maxLine`.
struct LineReader {
    let source: any ParserSource
    let maxLine: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var position: Int64 = 0
    private var done = false

    init(_ source: any ParserSource, maxLine: Int) {
        self.source = source
        self.maxLine = maxLine
    }

    mutating func next() -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<min(newline, start + maxLine)])
                start = newline + 1
                return line
            }
            if buffer.count - start > maxLine {
                // Cut the line and skip to its end.
                let line = Array(buffer[start..<(start + maxLine)])
                start = buffer.count
                while !done {
                    let chunk = fill()
                    if let newline = chunk.firstIndex(of: 0x0A) {
                        buffer = Array(chunk[(newline + 1)...])
                        start = 0
                        break
                    }
                }
                return line
            }
            if done {
                guard start < buffer.count else { return nil }
                defer { start = buffer.count }
                return Array(buffer[start...])
            }
            buffer = Array(buffer[start...]) + fill()
            start = 0
        }
    }

    private mutating func fill() -> [UInt8] {
        let chunk = source.read(at: position, count: 1 << 16)
        if chunk.isEmpty { done = true }
        position += Int64(chunk.count)
        return chunk
    }
}

/// Joins audit records into events by their `audit(seconds.millis:serial)` id.
struct AuditAssembler {
    private var open: [String: [Dict]] = [:]
    private var order: [String] = []
    static let maxOpen = 1000

    /// Adds one log line; returns the events it completes.
    mutating func add(_ raw: [UInt8]) -> [Value] {
        guard let record = AuditAssembler.parse(String(decoding: raw, as: UTF8.self)), let id = record["_id"]?.stringValue else { return [] }
        if open[id] == nil {
            order.append(id)
            open[id] = []
        }
        open[id]?.append(record)
        var done: [Value] = []
        if record["type"]?.stringValue == "EOE" { done.append(contentsOf: finish(id)) }
        while order.count > AuditAssembler.maxOpen { done.append(contentsOf: finish(order[0])) }
        return done
    }

    mutating func flushAll() -> [Value] {
        var done: [Value] = []
        while let id = order.first { done.append(contentsOf: finish(id)) }
        return done
    }

    private mutating func finish(_ id: String) -> [Value] {
        order.removeAll { $0 == id }
        guard let records = open.removeValue(forKey: id) else { return [] }
        return [AuditAssembler.event(records)]
    }

    static let hexFields: Set<String> = ["name", "comm", "exe", "cwd", "proctitle", "path", "cmd", "data", "key", "old", "new", "acct", "ocomm"]

    /// One record: `type=X msg=audit(t:n): key=value …` (an optional `node=` first).
    static func parse(_ line: String) -> Dict? {
        // Enriched logs add interpreted fields after a group separator.
        let parts = line.split(separator: "\u{1d}", maxSplits: 1, omittingEmptySubsequences: false)
        let head = parts.first ?? Substring(line)
        guard let open = head.range(of: "audit("), let close = head[open.upperBound...].firstIndex(of: ")") else { return nil }
        let id = String(head[open.upperBound..<close])
        var record = Dict()
        record["_id"] = .string(id)
        var enriched = Dict()
        for (key, value) in fields(String(head[..<open.lowerBound])) { record[key] = .string(value) }
        for (key, value) in fields(String(head[head.index(after: close)...])) { record[key] = .string(value) }
        if parts.count > 1 {
            for (key, value) in fields(String(parts[1])) { enriched[key] = .string(value) }
            record["_enriched"] = .dict(enriched)
        }
        return record
    }

    /// key=value pairs; "quoted" values are literal, bare hex values of string fields are decoded.
    static func fields(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var chars = Substring(text)
        while let equals = chars.firstIndex(of: "=") {
            let key = chars[..<equals].split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "'" }).last.map(String.init) ?? ""
            var rest = chars[chars.index(after: equals)...]
            var value: String
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<end])
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[end...]
            } else {
                let end = rest.firstIndex(where: { $0 == " " || $0 == "'" }) ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
                if hexFields.contains(key) || key.hasPrefix("a") && Int(key.dropFirst()) != nil, let decoded = decodeHex(value) { value = decoded }
            }
            if !key.isEmpty && key != "msg" { out.append((key, value)) }
            chars = rest
        }
        return out
    }

    static func decodeHex(_ value: String) -> String? {
        guard value.count >= 2, value.count % 2 == 0, value.allSatisfy(\.isHexDigit), value.contains(where: \.isLetter) || value.count > 8 else { return nil }
        var bytes: [UInt8] = []
        var index = value.startIndex
        while index < value.endIndex {
            let next = value.index(index, offsetBy: 2)
            guard let byte = UInt8(value[index..<next], radix: 16) else { return nil }
            bytes.append(byte == 0 ? 0x20 : byte)
            index = next
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        return text
    }

    static let schema = Schema(["Timestamp", "Sequence", "Node", "Type", "Result", "Data", "Args", "Paths", "Records"])

    static func event(_ records: [Dict]) -> Value {
        let id = records.first?["_id"]?.stringValue ?? ""
        let parts = id.split(separator: ":")
        // seconds.millis, kept exact (no floating point).
        let stamp = parts.first.map { $0.split(separator: ".") } ?? []
        let whole = stamp.first.flatMap { Int64($0) } ?? 0
        let fraction = stamp.count > 1 ? String(stamp[1].prefix(9)) : ""
        let nanos = (Int64(fraction) ?? 0) * Int64(pow(10.0, Double(9 - fraction.count)))
        let main = records.first { $0["type"]?.stringValue == "SYSCALL" } ?? records.first { $0["type"]?.stringValue != "PROCTITLE" } ?? records.first ?? Dict()
        var data = Dict()
        for (key, value) in main.pairs where !key.hasPrefix("_") && key != "type" && key != "node" { data[key] = value }
        var args: [Value] = []
        if let execve = records.first(where: { $0["type"]?.stringValue == "EXECVE" }) {
            let count = Int(execve["argc"]?.stringValue ?? "") ?? 0
            for i in 0..<min(count, 4096) { args.append(execve["a\(i)"] ?? .null) }
        } else if let title = records.first(where: { $0["type"]?.stringValue == "PROCTITLE" })?["proctitle"]?.stringValue {
            args = title.split(separator: " ").map { .string(String($0)) }
        }
        let paths = records.filter { $0["type"]?.stringValue == "PATH" }.compactMap { $0["name"] }
        var result = Value.null
        if let success = main["success"]?.stringValue { result = .string(success == "yes" ? "success" : "fail") } else if let res = main["res"]?.stringValue {
            result = .string(res == "success" || res == "1" ? "success" : "fail")
        }
        let cleaned = records.map { record -> Value in
            var r = Dict()
            for (key, value) in record.pairs where key != "_id" { r[key] = value }
            return .dict(r)
        }
        return .dict(Dict(schema: schema, values: [
            .timestamp(Timestamp(nanoseconds: whole &* 1_000_000_000 &+ nanos)), parts.count > 1 ? (Int64(parts[1]).map { .int($0) } ?? .null) : .null,
            main["node"] ?? .null, main["type"] ?? .null, result, .dict(data), .list(args), .list(paths), .list(cleaned),
        ]))
    }
}
