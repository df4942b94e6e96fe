import Foundation
import QuarryHost
import VQL

/// `watch_syslog()`, `watch_jsonl()`, `watch_csv()`: never-ending queries over growing text
/// files (log lines, JSON lines, CSV rows as they are appended), surviving rotation and
/// truncation. Files that do not exist yet are waited for.
public enum WatchFiles {
    public static var plugins: [PluginDeclaration] { [syslog, jsonl, csv] }

    static let fileArguments = [
        ArgumentSpec("filename", .stringList, "The file(s) to follow (they may not exist yet)."),
        ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
        ArgumentSpec("buffer_size", .int, "The longest line kept, in bytes (default 64 KiB); longer lines are cut."),
    ]

    static func checkAccessor(_ ctx: CallContext) -> Bool {
        let accessor = ctx.string("accessor") ?? "file"
        if ["file", "auto", ""].contains(accessor) { return true }
        ctx.log(.error, "\(ctx.name): accessor '\(accessor)' is not supported (only file)")
        return false
    }

    static func followers(_ ctx: CallContext) -> [FileFollower] {
        let limit = Int(clamping: ctx.int("buffer_size") ?? 64 * 1024)
        return (ctx.strings("filename") ?? []).map { FileFollower(path: $0, startAtEnd: true, maxLine: limit) }
    }

    static let lineSchema = Schema(["OSPath", "Line"])

    public static let syslog = PluginDeclaration(
        name: "watch_syslog",
        summary: "New lines of text files as they are written (from the end; a file that appears later from its start). "
            + "Follows rotation and truncation. Never ends.",
        arguments: fileArguments + [
            ArgumentSpec("query", .query, "Run every 10 s to find more files to follow (rows with OSPath)."),
        ],
        columns: [ColumnSpec("OSPath", .string, "The file."), ColumnSpec("Line", .string, "One line, without its newline.")],
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "watch_syslog"), checkAccessor(ctx) else { return ArrayCursor([]) }
        var discover: (() -> [String])?
        if case .query(let query) = ctx.value("query") ?? .null {
            discover = { query.materialize().compactMap { $0.member("OSPath").stringValue ?? $0.member("FullPath").stringValue } }
        } else if !ctx.has("filename") {
            ctx.log(.error, "watch_syslog: give filename= or query=")
            return ArrayCursor([])
        }
        return FollowCursor(followers: followers(ctx), discover: discover, cancellation: ctx.context.cancellation,
                            maxLine: Int(clamping: ctx.int("buffer_size") ?? 64 * 1024)) { follower, line in
            [.dict(Dict(schema: lineSchema, values: [.string(follower.path), .string(bytes: line)]))]
        }
    }

    public static let jsonl = PluginDeclaration(
        name: "watch_jsonl",
        summary: "New JSON lines of files as they are written, one row per object (bad lines are logged and skipped). Never ends.",
        arguments: fileArguments,
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "watch_jsonl"), checkAccessor(ctx) else { return ArrayCursor([]) }
        let context = ctx.context
        return FollowCursor(followers: followers(ctx), discover: nil, cancellation: context.cancellation, maxLine: 0) { follower, line in
            guard line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { return [] }
            do {
                let value = try JSONParser.parse(bytes: line)
                if case .dict = value { return [value] }
                return [.dict(Dict([("_value", value)]))]
            } catch {
                context.logOnce(.warning, "watch_jsonl: \(follower.path): a line is not JSON: \(error)")
                return []
            }
        }
    }

    public static let csv = PluginDeclaration(
        name: "watch_csv",
        summary: "New rows of CSV files as they are written; the header is the file's first row (or columns=, or "
            + "Col0… with auto_headers). Quoted fields may span lines. Never ends.",
        arguments: [
            ArgumentSpec("filename", .stringList, required: true, "The CSV file(s)."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
            ArgumentSpec("auto_headers", .bool, "The file has no header row: columns are Col0, Col1, …"),
            ArgumentSpec("separator", .string, "The field separator (default ',')."),
            ArgumentSpec("comment", .string, "Lines starting with this character are skipped."),
            ArgumentSpec("columns", .stringList, "Column names to use (the file then has no header row)."),
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "watch_csv"), checkAccessor(ctx) else { return ArrayCursor([]) }
        let separator = ctx.string("separator")?.utf8.first ?? UInt8(ascii: ",")
        let comment = ctx.string("comment")?.utf8.first
        let columns = ctx.strings("columns")
        let auto = ctx.bool("auto_headers") ?? false
        var parsers: [String: CSVRecords] = [:]
        return FollowCursor(followers: followers(ctx), discover: nil, cancellation: ctx.context.cancellation, maxLine: 0) { follower, line in
            let parser = parsers[follower.path] ?? {
                let header = columns ?? (auto ? [] : CSVRecords.headerRow(of: follower.path, separator: separator, comment: comment))
                let created = CSVRecords(separator: separator, comment: comment, header: header)
                parsers[follower.path] = created
                return created
            }()
            return parser.feed(line)
        }
    }
}

/// The shared loop of the watch_* file plugins: poll every followed file four times a second,
/// hand out rows, notice cancellation, and (watch_syslog's query=) look for new files.
final class FollowCursor: RowCursor {
    private var followers: [FileFollower]
    private var known: Set<String>
    private let discover: (() -> [String])?
    private let cancellation: CancellationFlag
    private let maxLine: Int
    private let rows: (FileFollower, [UInt8]) -> [Value]
    private var pending: [Value] = []
    private var position = 0
    private var lastDiscovery = Date.distantPast
    private var firstDiscovery = true

    init(followers: [FileFollower], discover: (() -> [String])?, cancellation: CancellationFlag, maxLine: Int,
         rows: @escaping (FileFollower, [UInt8]) -> [Value]) {
        self.followers = followers
        self.known = Set(followers.map(\.path))
        self.discover = discover
        self.cancellation = cancellation
        self.maxLine = maxLine > 0 ? maxLine : 1 << 20
        self.rows = rows
        // Position every follower now, so lines written from here on are seen.
        for follower in followers { _ = follower.poll() }
    }

    func next() throws -> Value? {
        while true {
            if position < pending.count {
                defer { position += 1 }
                return pending[position]
            }
            pending.removeAll(keepingCapacity: true)
            position = 0
            try cancellation.check()
            discoverFiles()
            for follower in followers {
                for line in follower.poll() { pending += rows(follower, line) }
            }
            if pending.isEmpty { usleep(250_000) }
        }
    }

    private func discoverFiles() {
        guard let discover, Date().timeIntervalSince(lastDiscovery) >= 10 else { return }
        lastDiscovery = Date()
        for path in discover() where known.insert(path).inserted {
            // Files there at the start are followed from their end; files that appear later
            // from their start.
            let follower = FileFollower(path: path, startAtEnd: firstDiscovery, maxLine: maxLine)
            if firstDiscovery { _ = follower.poll() }
            followers.append(follower)
        }
        firstDiscovery = false
    }
}

/// CSV rows from lines as they arrive: a quoted field may hold separators, doubled quotes and
/// newlines (a record then spans lines, held until its quotes close, at most 1 MiB).
final class CSVRecords {
    private let separator: UInt8
    private let comment: UInt8?
    private var header: [String]?
    private var partial: [UInt8] = []

    init(separator: UInt8, comment: UInt8?, header: [String]?) {
        self.separator = separator
        self.comment = comment
        self.header = header
    }

    /// The first record of a file, as its header.
    static func headerRow(of path: String, separator: UInt8, comment: UInt8?) -> [String]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: 1 << 20)) ?? Data()
        let records = CSVRecords(separator: separator, comment: comment, header: [])
        for line in Array(data).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if let fields = records.record(Array(line)) { return fields }
        }
        return nil
    }

    func feed(_ line: [UInt8]) -> [Value] {
        guard let fields = record(line) else { return [] }
        guard let names = header else {
            // No header known: the file's first row becomes it.
            header = fields
            return []
        }
        if fields == names { return [] }
        var pairs: [(String, Value)] = []
        for (i, field) in fields.enumerated() {
            pairs.append((i < names.count && !names.isEmpty ? names[i] : "Col\(i)", .string(field)))
        }
        return [.dict(Dict(pairs))]
    }

    /// A complete record, or nil while quotes are open (or for comments and blank lines).
    func record(_ line: [UInt8]) -> [String]? {
        if partial.isEmpty, let comment, line.first == comment { return nil }
        partial += partial.isEmpty ? line : [UInt8(ascii: "\n")] + line
        var quoted = false
        for byte in partial where byte == UInt8(ascii: "\"") { quoted.toggle() }
        if quoted && partial.count < 1 << 20 { return nil }
        defer { partial = [] }
        if partial.isEmpty { return nil }
        var fields: [String] = []
        var field: [UInt8] = []
        var inQuotes = false
        var i = 0
        while i < partial.count {
            let byte = partial[i]
            if inQuotes {
                if byte == UInt8(ascii: "\"") {
                    if i + 1 < partial.count && partial[i + 1] == UInt8(ascii: "\"") {
                        field.append(byte)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(byte)
                }
            } else if byte == UInt8(ascii: "\"") {
                inQuotes = true
            } else if byte == separator {
                fields.append(String(decoding: field, as: UTF8.self))
                field = []
            } else {
                field.append(byte)
            }
            i += 1
        }
        fields.append(String(decoding: field, as: UTF8.self))
        return fields
    }
}
