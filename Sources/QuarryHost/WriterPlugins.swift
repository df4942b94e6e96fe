import Foundation
import VQL

/// write_jsonl() and write_csv(): pass a query's rows through unchanged while writing them to a
/// file, created 0600 from the first syscall (results may be evidence).
public enum WriterPlugins {
    public static let plugins: [PluginDeclaration] = [writeJSONL, writeCSV]

    public static let writeJSONL = PluginDeclaration(
        name: "write_jsonl",
        summary: "Writes the rows of `query` to a JSON-lines file (created 0600) and yields them unchanged.",
        arguments: [
            ArgumentSpec("filename", .string, required: true, "The file to write."),
            ArgumentSpec("accessor", .string, "Only the file system (file, auto) can be written."),
            ArgumentSpec("query", .query, required: true, "The rows to write."),
            ArgumentSpec("buffer_size", .int, "Bytes gathered before each write (default 64 KiB)."),
            ArgumentSpec("max_time", .int, "Accepted for compatibility (rows are flushed when the query ends)."),
            ArgumentSpec("append", .bool, "Add to the end of an existing file instead of replacing it."),
        ],
        examples: ["SELECT * FROM write_jsonl(filename='/tmp/quarry-example.jsonl', query={ SELECT _value FROM range(end=2) })"],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard let output = RowFile.open(ctx) else { return ArrayCursor([]) }
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        return GeneratorCursor(onClose: { upstream.close(); output.close() }) {
            guard let row = try upstream.next() else {
                output.close()
                return nil
            }
            var line: [UInt8] = []
            JSONWriter.write(row.materialized(), into: &line)
            line.append(0x0A)
            output.write(line)
            return row
        }
    }

    public static let writeCSV = PluginDeclaration(
        name: "write_csv",
        summary: "Writes the rows of `query` to a CSV file (created 0600; the first row's columns make the header) and yields them unchanged.",
        arguments: [
            ArgumentSpec("filename", .string, required: true, "The file to write."),
            ArgumentSpec("accessor", .string, "Only the file system (file, auto) can be written."),
            ArgumentSpec("query", .query, required: true, "The rows to write."),
        ],
        examples: ["SELECT * FROM write_csv(filename='/tmp/quarry-example.csv', query={ SELECT _value AS N, 'x' AS T FROM range(end=2) })"],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard let output = RowFile.open(ctx) else { return ArrayCursor([]) }
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        var header: [String]?
        return GeneratorCursor(onClose: { upstream.close(); output.close() }) {
            guard let row = try upstream.next() else {
                output.close()
                return nil
            }
            let materialized = row.materialized()
            let names: [String]
            if let header {
                names = header
            } else {
                names = columnNames(materialized)
                header = names
                output.write(Array((names.map(csvField).joined(separator: ",") + "\n").utf8))
            }
            let fields = names.map { name -> String in
                let value = materialized.member(name)
                switch value {
                case .null: return ""
                case .string(let s): return csvField(s)
                case .bytes(let b): return csvField(String(decoding: b, as: UTF8.self))
                case .list, .dict: return csvField(JSONWriter.string(value))
                default: return csvField(GoFormatBridge.plain(value))
                }
            }
            output.write(Array((fields.joined(separator: ",") + "\n").utf8))
            return row
        }
    }

    static func columnNames(_ row: Value) -> [String] {
        if case .dict(let d) = row { return d.keys }
        return ["_value"]
    }

    /// RFC 4180 quoting: fields with commas, quotes or line breaks are quoted, quotes doubled.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || text.hasPrefix(" ") else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Plain text of a scalar for CSV cells (numbers, booleans, times).
enum GoFormatBridge {
    static func plain(_ value: Value) -> String {
        switch value {
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return JSONWriter.formatDouble(d)
        case .timestamp(let t): return JSONWriter.rfc3339(t)
        default: return value.stringValue ?? JSONWriter.string(value)
        }
    }
}

/// An output file opened for a writer plugin: 0600 at creation, buffered, closed once.
final class RowFile {
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private let bufferSize: Int
    private let context: QueryContext
    private let path: String

    private init(descriptor: Int32, bufferSize: Int, context: QueryContext, path: String) {
        self.descriptor = descriptor
        self.bufferSize = bufferSize
        self.context = context
        self.path = path
    }

    /// Opens the `filename` argument for writing, logging why when it cannot.
    static func open(_ ctx: CallContext) -> RowFile? {
        guard ctx.context.require(.filesystemWrite, for: ctx.name) else { return nil }
        if let accessor = ctx.string("accessor"), !["", "file", "auto"].contains(accessor) {
            ctx.log(.error, "\(ctx.name): cannot write with accessor '\(accessor)'")
            return nil
        }
        guard let raw = ctx.value("filename"), let pathBytes = HostFS.pathBytes(raw), !pathBytes.isEmpty, !pathBytes.contains(0) else {
            ctx.log(.error, "\(ctx.name): filename is required")
            return nil
        }
        let path = String(decoding: pathBytes, as: UTF8.self)
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (ctx.bool("append") == true ? O_APPEND : O_TRUNC)
        let fd = HostFS.withCPath(pathBytes) { Glibc.open($0, flags, 0o600) }
        guard fd >= 0 else {
            ctx.log(.error, "\(ctx.name): cannot open \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        let size = Int(max(1, min(ctx.int("buffer_size") ?? 65536, 64 << 20)))
        return RowFile(descriptor: fd, bufferSize: size, context: ctx.context, path: path)
    }

    func write(_ bytes: [UInt8]) {
        guard descriptor >= 0 else { return }
        buffer.append(contentsOf: bytes)
        if buffer.count >= bufferSize { flush() }
    }

    private func flush() {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(descriptor, base + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                context.logOnce(.error, "write to \(path): \(String(cString: strerror(errno)))")
                break
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        guard descriptor >= 0 else { return }
        flush()
        Glibc.close(descriptor)
        descriptor = -1
    }

    deinit { close() }
}
