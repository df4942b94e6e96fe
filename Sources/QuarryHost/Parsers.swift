import Foundation
import VQL

/// Text parsers over files and strings: `parse_lines()`, `split_records()`,
/// `parse_records_with_regex()` and `parse_string_with_regex()`. Files are read through
/// `HostFS` (root remap, no FIFOs, bounded devices).
public enum Parsers {
    public static var plugins: [PluginDeclaration] { [parseLines, splitRecords, parseRecordsWithRegex] }
    public static var functions: [FunctionDeclaration] { [parseStringWithRegex] }

    public static let parseLines = PluginDeclaration(
        name: "parse_lines", summary: "One row per line of a file (Line); /proc files included.",
        arguments: [
            ArgumentSpec("filename", .stringList, required: true, "The file(s)."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
        ],
        columns: [ColumnSpec("Line", .string, "The line without its newline.")],
        examples: ["SELECT Line FROM parse_lines(filename='/etc/passwd') LIMIT 2"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard FileFunctions.checkAccessor(ctx) else { return ArrayCursor([]) }
        let files = FileFunctions.paths(ctx, "filename")
        let root = HostFS.root(ctx.context)
        let schema = Schema(["Line"], caseInsensitiveFallback: true)
        var index = 0
        var reader: ChunkReader?
        var buffer: [UInt8] = []
        var start = 0
        var atEnd = false
        return GeneratorCursor(onClose: { reader?.close() }) {
            while true {
                if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    defer { start = newline + 1 }
                    return .dict(Dict(schema: schema, values: [.string(bytes: Array(buffer[start..<newline]))]))
                }
                if atEnd {
                    atEnd = false
                    if start < buffer.count {
                        defer { start = buffer.count }
                        return .dict(Dict(schema: schema, values: [.string(bytes: Array(buffer[start...]))]))
                    }
                }
                try ctx.checkCancelled()
                if let current = reader {
                    if let (_, data) = current.next(1 << 16) {
                        buffer.removeSubrange(0..<start)
                        start = 0
                        buffer.append(contentsOf: data)
                        continue
                    }
                    current.close()
                    reader = nil
                    atEnd = true
                    continue
                }
                buffer.removeAll()
                start = 0
                guard index < files.count else { return nil }
                let logical = files[index]
                index += 1
                reader = ChunkReader.open(logical: logical, root: root, maxLength: nil, plugin: "parse_lines", context: ctx.context)
            }
        }
    }

    public static let splitRecords = PluginDeclaration(
        name: "split_records", summary: "Splits files into records (record_regex) and records into columns (regex).",
        arguments: [
            ArgumentSpec("filenames", .stringList, required: true, "The files."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
            ArgumentSpec("regex", .string, "Column separator regex (default whitespace)."),
            ArgumentSpec("columns", .stringList, "Column names (default Column1, Column2, …)."),
            ArgumentSpec("first_row_is_headers", .bool, "Take the column names from the first record."),
            ArgumentSpec("count", .int, "Split into at most this many columns (the last keeps the rest)."),
            ArgumentSpec("record_regex", .string, "Record separator regex (default newline)."),
        ],
        columns: [ColumnSpec("Column1", .string, "… or the names given in `columns`.")],
        examples: ["SELECT User, Uid FROM split_records(filenames='/etc/passwd', regex=':', record_regex='\\n', columns=['User', 'X', 'Uid']) LIMIT 2"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard FileFunctions.checkAccessor(ctx) else { return ArrayCursor([]) }
        let root = HostFS.root(ctx.context)
        guard let fieldRegex = ctx.context.regex(ctx.string("regex") ?? "\\s+", caseInsensitive: false),
              let recordRegex = ctx.context.regex(ctx.string("record_regex") ?? "\n", caseInsensitive: false) else {
            return ArrayCursor([])
        }
        var names = ctx.strings("columns") ?? []
        var headers = ctx.bool("first_row_is_headers") ?? false
        let count = ctx.int("count").map { Int(clamping: max(1, $0)) } ?? Int.max
        var rows: [Value] = []
        var schema: Schema?
        for logical in FileFunctions.paths(ctx, "filenames") {
            try ctx.checkCancelled()
            let data: [UInt8]
            switch HostFS.read(HostFS.resolve(logical, root: root), length: 256 << 20) {
            case .success(let bytes): data = bytes
            case .failure(let e):
                ctx.context.logOnce(.warning, "split_records: \(FileFunctions.display(logical)): \(e)")
                continue
            }
            for record in split(data, by: recordRegex, limit: .max) where !record.isEmpty {
                let fields = split(record, by: fieldRegex, limit: count)
                if headers {
                    names = fields.map { String(decoding: $0, as: UTF8.self) }
                    headers = false
                    continue
                }
                var columnNames = names
                while columnNames.count < fields.count { columnNames.append("Column\(columnNames.count + 1)") }
                if schema?.names != columnNames { schema = Schema(columnNames, caseInsensitiveFallback: true) }
                var values = fields.map { Value.string(bytes: $0) }
                while values.count < columnNames.count { values.append(.null) }
                if let schema { rows.append(.dict(Dict(schema: schema, values: values))) }
            }
        }
        return ArrayCursor(rows)
    }

    /// Splits bytes at every match of a regex (at most `limit` pieces, the last keeping the rest).
    static func split(_ bytes: [UInt8], by regex: CompiledRegex, limit: Int) -> [[UInt8]] {
        var pieces: [[UInt8]] = []
        var last = 0
        for groups in regex.allMatches(in: bytes, limit: limit == .max ? .max : limit - 1) {
            guard let whole = groups.first ?? nil, !whole.isEmpty else { continue }
            pieces.append(Array(bytes[last..<whole.lowerBound]))
            last = whole.upperBound
        }
        pieces.append(Array(bytes[min(last, bytes.count)...]))
        return pieces
    }

    public static let parseStringWithRegex = FunctionDeclaration(
        name: "parse_string_with_regex", summary: "Matches regexes against a string; named groups become dict keys.",
        arguments: [
            ArgumentSpec("string", .string, required: true, "The text."),
            ArgumentSpec("regex", .stringList, required: true, "One or more regexes with named groups (?P<Name>…)."),
        ],
        returns: .dict,
        examples: ["SELECT parse_string_with_regex(string='uid=10 gid=20', regex='uid=(?P<Uid>\\\\d+)') AS X FROM scope()"]
    ) { ctx in
        let text = ctx.bytes("string") ?? []
        var result = Dict()
        for pattern in ctx.strings("regex") ?? [] {
            guard let regex = ctx.context.regex(pattern, caseInsensitive: false), let groups = regex.firstMatch(in: text) else { continue }
            for (i, captured) in regex.captureNames.enumerated() where i > 0 && i < groups.count {
                // Unnamed groups are g1, g2, … (artifacts read `.g1`).
                let name = captured.flatMap { $0.isEmpty ? nil : $0 } ?? "g\(i)"
                if let range = groups[i] {
                    result[name] = .string(bytes: Array(text[range]))
                } else if result[name] == nil {
                    result[name] = .string("")
                }
            }
        }
        return .dict(result)
    }

    public static let parseRecordsWithRegex = PluginDeclaration(
        name: "parse_records_with_regex",
        summary: "Applies regexes to whole files; every match is a row of its named groups.",
        arguments: [
            ArgumentSpec("file", .stringList, required: true, "The file(s)."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
            ArgumentSpec("regex", .stringList, required: true, "Regexes with named groups (?P<Name>…); use (?sm) for multi-line."),
            ArgumentSpec("buffer_size", .int, "Read at most this many bytes per file (default 64 MiB)."),
        ],
        columns: [ColumnSpec("Name", .string, "… one column per named group.")],
        examples: ["SELECT * FROM parse_records_with_regex(file='/etc/passwd', regex='(?m)^(?P<User>[^:]+):[^:]*:(?P<Uid>\\\\d+)') LIMIT 2"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard FileFunctions.checkAccessor(ctx) else { return ArrayCursor([]) }
        let root = HostFS.root(ctx.context)
        let limit = Int(clamping: max(1, ctx.int("buffer_size") ?? (64 << 20)))
        let regexes = (ctx.strings("regex") ?? []).compactMap { ctx.context.regex($0, caseInsensitive: false) }
        var rows: [Value] = []
        for logical in FileFunctions.paths(ctx, "file") {
            try ctx.checkCancelled()
            let data: [UInt8]
            switch HostFS.read(HostFS.resolve(logical, root: root), length: limit) {
            case .success(let bytes): data = bytes
            case .failure(let e):
                ctx.context.logOnce(.warning, "parse_records_with_regex: \(FileFunctions.display(logical)): \(e)")
                continue
            }
            for regex in regexes {
                let named = regex.captureNames.enumerated().compactMap { item -> (Int, String)? in
                    guard let name = item.element, !name.isEmpty else { return nil }
                    return (item.offset, name)
                }
                let schema = Schema(named.map(\.1), caseInsensitiveFallback: true)
                for groups in regex.allMatches(in: data) {
                    let values = named.map { (index, _) -> Value in
                        guard index < groups.count, let range = groups[index] else { return .string("") }
                        return .string(bytes: Array(data[range]))
                    }
                    rows.append(.dict(Dict(schema: schema, values: values)))
                }
            }
        }
        return ArrayCursor(rows)
    }
}
