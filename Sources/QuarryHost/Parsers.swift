import Foundation
import VQL

/// Text parsers over files and strings: `parse_lines()`, `split_records()`,
/// `parse_records_with_regex()` and `parse_string_with_regex()`. Files are read through
/// accessors (the file accessor keeps root remapping, refuses FIFOs and bounds devices).
public enum Parsers {
    public static var plugins: [PluginDeclaration] { [parseLines, splitRecords, parseRecordsWithRegex] }
    public static var functions: [FunctionDeclaration] { [parseStringWithRegex] }

    public static let parseLines = PluginDeclaration(
        name: "parse_lines", summary: "One row per line of a file (Line); gzip-compressed files are read decompressed; /proc files included.",
        arguments: [
            ArgumentSpec("filename", .stringList, required: true, "The file(s) (strings, OSPaths or pathspecs)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
            ArgumentSpec("buffer_size", .int, "Longest line accepted (default 64 KiB); a longer line ends that file with an error."),
        ],
        columns: [ColumnSpec("Line", .string, "The line without its newline.")],
        examples: [
            "SELECT Line FROM parse_lines(filename='/etc/passwd') LIMIT 2",
            "SELECT Line FROM parse_lines(filename='one\\ntwo\\n', accessor='data')",
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor() else { return ArrayCursor([]) }
        let files = ctx.paths("filename", for: accessor)
        let bufferSize = Int(clamping: max(1, ctx.int("buffer_size") ?? (64 << 10)))
        let schema = Schema(["Line"], caseInsensitiveFallback: true)
        var index = 0
        var reader: ChunkReader?
        var buffer: [UInt8] = []
        var start = 0
        var atEnd = false
        return GeneratorCursor(onClose: { reader?.close() }) {
            while true {
                if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    if newline - start >= bufferSize {
                        tooLong(ctx, reader?.path)
                    } else {
                        defer { start = newline + 1 }
                        return .dict(Dict(schema: schema, values: [.string(bytes: Array(buffer[start..<newline]))]))
                    }
                    buffer.removeAll()
                    start = 0
                    reader?.close()
                    reader = nil
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
                    if buffer.count - start > bufferSize {
                        tooLong(ctx, current.path)
                        current.close()
                        reader = nil
                        buffer.removeAll()
                        start = 0
                        continue
                    }
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
                let path = files[index]
                index += 1
                reader = openMaybeCompressed(path, accessor: accessor, ctx: ctx)
            }
        }
    }

    static func tooLong(_ ctx: CallContext, _ path: OSPath?) {
        ctx.context.logOnce(.error, "parse_lines: \(path.map(PathValues.display) ?? ""): line too long (longer than buffer_size), rest of the file skipped")
    }

    /// Opens a file for line reading; a gzip file (magic 1f 8b) is read through the gzip
    /// accessor when the session has one.
    static func openMaybeCompressed(_ path: OSPath, accessor: any Accessor, ctx: CallContext) -> ChunkReader? {
        guard let reader = ChunkReader.open(path, accessor: accessor, maxLength: nil, ctx: ctx) else { return nil }
        guard accessor.name != "gzip", let gzip = ctx.context.accessor(named: "gzip"), let head = reader.peek(2), head == [0x1f, 0x8b] else {
            return reader
        }
        reader.close()
        let inner = OSPath(components: [], type: .generic, delegate: PathDelegate(accessor: accessor.name, path: path.text))
        return ChunkReader.open(inner, accessor: gzip, maxLength: nil, ctx: ctx).map { $0.named(path) }
    }

    public static let splitRecords = PluginDeclaration(
        name: "split_records", summary: "Splits files into records (record_regex) and records into columns (regex).",
        arguments: [
            ArgumentSpec("filenames", .stringList, required: true, "The files (strings, OSPaths or pathspecs)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
            ArgumentSpec("regex", .string, "Column separator regex (default whitespace)."),
            ArgumentSpec("columns", .stringList, "Column names (default Column1, Column2, …)."),
            ArgumentSpec("first_row_is_headers", .bool, "Take the column names from the first record."),
            ArgumentSpec("count", .int, "Split into at most this many columns (the last keeps the rest)."),
            ArgumentSpec("record_regex", .string, "Record separator regex (default newline)."),
            ArgumentSpec("buffer_size", .int, "Read at most this many bytes per file (default 256 MiB)."),
        ],
        columns: [ColumnSpec("Column1", .string, "… or the names given in `columns`.")],
        examples: ["SELECT User, Uid FROM split_records(filenames='/etc/passwd', regex=':', record_regex='\\n', columns=['User', 'X', 'Uid']) LIMIT 2"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor() else { return ArrayCursor([]) }
        let limit = Int(clamping: max(1, ctx.int("buffer_size") ?? (256 << 20)))
        guard let fieldRegex = ctx.context.regex(ctx.string("regex") ?? "\\s+", caseInsensitive: false),
              let recordRegex = ctx.context.regex(ctx.string("record_regex") ?? "\n", caseInsensitive: false) else {
            return ArrayCursor([])
        }
        var names = ctx.strings("columns") ?? []
        var headers = ctx.bool("first_row_is_headers") ?? false
        let count = ctx.int("count").map { Int(clamping: max(1, $0)) } ?? Int.max
        var rows: [Value] = []
        var schema: Schema?
        for path in ctx.paths("filenames", for: accessor) {
            try ctx.checkCancelled()
            guard let data = ctx.readWhole(path, with: accessor, limit: limit) else { continue }
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
            ArgumentSpec("file", .stringList, required: true, "The file(s) (strings, OSPaths or pathspecs)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
            ArgumentSpec("regex", .stringList, required: true, "Regexes with named groups (?P<Name>…); use (?sm) for multi-line."),
            ArgumentSpec("buffer_size", .int, "Read at most this many bytes per file (default 64 MiB)."),
        ],
        columns: [ColumnSpec("Name", .string, "… one column per named group.")],
        examples: ["SELECT * FROM parse_records_with_regex(file='/etc/passwd', regex='(?m)^(?P<User>[^:]+):[^:]*:(?P<Uid>\\\\d+)') LIMIT 2"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor() else { return ArrayCursor([]) }
        let limit = Int(clamping: max(1, ctx.int("buffer_size") ?? (64 << 20)))
        let regexes = (ctx.strings("regex") ?? []).compactMap { ctx.context.regex($0, caseInsensitive: false) }
        var rows: [Value] = []
        for path in ctx.paths("file", for: accessor) {
            try ctx.checkCancelled()
            guard let data = ctx.readWhole(path, with: accessor, limit: limit) else { continue }
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
