import CLZMA
import CZstd
import Foundation
import VQL

/// parse_journald(): systemd journal files read directly (the documented on-disk format:
/// header, entry arrays, entries, data objects; regular and compact layouts; xz, lz4 and zstd
/// payloads), so journals from newer systemd versions and journals inside other containers
/// (read through the accessor) work without libsystemd. Every offset is checked against the
/// file, entry-array chains cannot loop, and sizes are capped.
public enum JournalPlugin {
    public static let plugin = PluginDeclaration(
        name: "parse_journald",
        summary: "One row per journal entry: System (Timestamp and the trusted _FIELDS such as _PID, _EXE, _CMDLINE) and EventData (the other fields, e.g. MESSAGE, SYSLOG_IDENTIFIER, PRIORITY). raw=TRUE gives every field in one flat row as journalctl -o json does.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "One or more journal files."),
            ArgumentSpec("accessor", .string, "How to read them: file (default) or data."),
            ArgumentSpec("raw", .bool, "One flat row per entry with __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP, __SEQNUM and every field."),
            ArgumentSpec("start_time", .any, "Only entries at or after this time."),
            ArgumentSpec("end_time", .any, "Only entries at or before this time."),
        ],
        columns: [ColumnSpec("System", .dict), ColumnSpec("EventData", .dict)],
        examples: ["SELECT * FROM chain(a={SELECT System.Timestamp AS Time, EventData.MESSAGE AS Message FROM parse_journald(filename='/var/log/journal/none.journal')}, b={SELECT NULL AS Time, 'no journal here' AS Message FROM scope()}) LIMIT 1"],
        permissions: [.filesystemRead]
    ) { ctx in
        let accessor = ctx.string("accessor")
        let raw = ctx.bool("raw") ?? false
        let start = ctx.value("start_time").flatMap(microseconds)
        let end = ctx.value("end_time").flatMap(microseconds)
        var paths = ParserInput.paths(ctx, "filename").makeIterator()
        var journal: JournalFile?
        var entries: [Int64] = []
        var index = 0
        return GeneratorCursor {
            while true {
                try ctx.checkCancelled()
                if let current = journal, index < entries.count {
                    let offset = entries[index]
                    index += 1
                    guard let entry = current.entry(at: offset) else { continue }
                    if let start, entry.realtime < start { continue }
                    if let end, entry.realtime > end { continue }
                    return raw ? entry.rawRow() : entry.row()
                }
                journal = nil
                guard let path = paths.next() else { return nil }
                guard let source = ParserInput.open(path, accessor: accessor, ctx: ctx) else { continue }
                let name = ParserInput.describe(path, accessor: accessor)
                do {
                    let file = try JournalFile(source, log: { ctx.context.logOnce(.warning, "parse_journald: \(name): \($0)") })
                    journal = file
                    entries = file.entryOffsets()
                    index = 0
                } catch {
                    ctx.context.logOnce(.warning, "parse_journald: \(name): \(error)")
                }
            }
        }
    }

    /// A time argument (timestamp, epoch number or date string) in microseconds.
    static func microseconds(_ value: Value) -> UInt64? {
        switch value.reduced() {
        case .null: return nil
        case .timestamp(let t): return t.nanoseconds > 0 ? UInt64(t.nanoseconds / 1000) : 0
        case let v:
            if let seconds = v.doubleValue, seconds > 0 { return UInt64(seconds * 1e6) }
            if let text = v.stringValue, let date = ISO8601DateFormatter().date(from: text) { return UInt64(max(0, date.timeIntervalSince1970 * 1e6)) }
            return nil
        }
    }
}

/// One journal file opened for reading.
final class JournalFile {
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    let source: any ParserSource
    let size: Int64
    let compact: Bool
    let headerSize: UInt64
    let log: (String) -> Void
    private var payloads: [Int64: (String, [UInt8])] = [:]
    static let maxPayload = 16 << 20

    init(_ source: any ParserSource, log: @escaping (String) -> Void) throws {
        self.source = source
        self.log = log
        size = source.size ?? 0
        let header = source.read(at: 0, count: 272)
        guard header.count >= 208, header.prefix(8) == Array("LPKSHHRH".utf8)[...] else { throw Failure(message: "not a journal file") }
        func u64(_ o: Int) -> UInt64 { header[o..<(o + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        let incompatible = UInt32(truncatingIfNeeded: u64(8) >> 32)
        compact = incompatible & 0x10 != 0
        if incompatible & ~0x1F != 0 { log("unknown incompatible flags \(String(incompatible, radix: 16)); reading anyway") }
        // A header claiming to be larger than the file is clamped to it (fuzz-journald: a header
        // size near 2^64 overflowed the object walk's arithmetic).
        headerSize = min(u64(88), UInt64(max(size, 0)))
    }

    func u64(_ offset: Int64) -> UInt64? {
        let b = source.read(at: offset, count: 8)
        return b.count == 8 ? b.reversed().reduce(0) { $0 << 8 | UInt64($1) } : nil
    }

    func u32(_ offset: Int64) -> UInt32? {
        let b = source.read(at: offset, count: 4)
        return b.count == 4 ? b.reversed().reduce(0) { $0 << 8 | UInt32($1) } : nil
    }

    /// An object's header (type, flags, size) when it lies inside the file.
    func object(at offset: Int64, type expected: UInt8) -> (flags: UInt8, size: Int64)? {
        guard offset >= Int64(headerSize), offset % 8 == 0, offset + 16 <= size else { return nil }
        let b = source.read(at: offset, count: 16)
        guard b.count == 16, b[0] == expected else { return nil }
        let objectSize = b[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard objectSize >= 16, objectSize <= UInt64(size - offset) else { return nil }
        return (b[1], Int64(objectSize))
    }

    /// Every entry's offset, found by walking the objects one after another from the end of
    /// the header (each object says its size). Unlike the entry-array chain this also recovers
    /// the entries of a file cut short (a copy of a journal being written), as a forensic reader
    /// should; the walk stops at the first object that is not well formed.
    func entryOffsets() -> [Int64] {
        var out: [Int64] = []
        var offset = Int64(clamping: headerSize)
        offset = (offset &+ 7) & ~7
        let limit = max(0, size / 64)
        while offset + 16 <= size && Int64(out.count) < limit {
            let header = source.read(at: offset, count: 16)
            guard header.count == 16 else { break }
            let type = header[0]
            let objectSize = header[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if type == 0 && objectSize == 0 { break } // unused tail
            guard (1...7).contains(type), objectSize >= 16 else {
                log("malformed object at \(offset); the rest of the file is skipped")
                break
            }
            guard objectSize <= UInt64(size - offset) else {
                log("the file ends inside the object at \(offset) (a truncated copy?)")
                break
            }
            if type == 3 { out.append(offset) }
            offset += (Int64(objectSize) + 7) & ~7
        }
        return out
    }

    struct Entry {
        let realtime: UInt64
        let monotonic: UInt64
        let seqnum: UInt64
        let fields: [(String, [UInt8])]

        static let schema = Schema(["System", "EventData"])

        func row() -> Value {
            var system = Dict()
            system["Timestamp"] = .timestamp(Timestamp(nanoseconds: Int64(clamping: realtime) &* 1000))
            var data = Dict()
            for (name, value) in fields {
                if name.hasPrefix("_") { system[name] = .string(bytes: value) } else { data[name] = .string(bytes: value) }
            }
            return .dict(Dict(schema: Entry.schema, values: [.dict(system), .dict(data)]))
        }

        func rawRow() -> Value {
            var row = Dict()
            row["__REALTIME_TIMESTAMP"] = .int(Int64(clamping: realtime))
            row["__MONOTONIC_TIMESTAMP"] = .int(Int64(clamping: monotonic))
            row["__SEQNUM"] = .int(Int64(clamping: seqnum))
            for (name, value) in fields { row[name] = .string(bytes: value) }
            return .dict(row)
        }
    }

    func entry(at offset: Int64) -> Entry? {
        guard let header = object(at: offset, type: 3), header.size >= 64 else { return nil }
        guard let seqnum = u64(offset + 16), let realtime = u64(offset + 24), let monotonic = u64(offset + 32) else { return nil }
        let itemSize: Int64 = compact ? 4 : 16
        let count = min((header.size - 64) / itemSize, 10_000)
        let items = source.read(at: offset + 64, count: Int(count * itemSize))
        var fields: [(String, [UInt8])] = []
        var i = 0
        while i + Int(itemSize) <= items.count {
            let width = compact ? 4 : 8
            let dataOffset = items[i..<(i + width)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if let field = payload(at: Int64(bitPattern: dataOffset)) { fields.append(field) }
            i += Int(itemSize)
        }
        return Entry(realtime: realtime, monotonic: monotonic, seqnum: seqnum, fields: fields)
    }

    /// A DATA object's "NAME=value" payload, decompressed, split at the first '='.
    func payload(at offset: Int64) -> (String, [UInt8])? {
        if let cached = payloads[offset] { return cached }
        guard let header = object(at: offset, type: 1) else { return nil }
        let start: Int64 = compact ? 72 : 64
        guard header.size > start else { return nil }
        var bytes = source.read(at: offset + start, count: Int(min(header.size - start, Int64(JournalFile.maxPayload))))
        do {
            switch header.flags & 7 {
            case 0: break
            case 1: bytes = try Decompress.xz(bytes, limit: JournalFile.maxPayload)
            case 2: bytes = try Decompress.lz4Journal(bytes, limit: JournalFile.maxPayload)
            case 4: bytes = try Decompress.zstd(bytes, limit: JournalFile.maxPayload)
            default: throw Failure(message: "unknown compression \(header.flags)")
            }
        } catch {
            log("data object at \(offset): \(error)")
            return nil
        }
        guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        let field = (String(decoding: bytes[..<equals], as: UTF8.self), Array(bytes[(equals + 1)...]))
        if payloads.count > 200_000 { payloads.removeAll() }
        payloads[offset] = field
        return field
    }
}

/// The decompressors journald uses for large payloads, each with an output cap.
enum Decompress {
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// journald's LZ4: the decompressed size (8 bytes, little-endian) then one LZ4 block.
    static func lz4Journal(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        guard input.count >= 8 else { throw Failure(message: "lz4: truncated") }
        let size = input[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard size <= UInt64(limit) else { throw Failure(message: "lz4: \(size) bytes is over the limit") }
        return try lz4Block(Array(input[8...]), size: Int(size))
    }

    static func lz4Block(_ input: [UInt8], size: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(size)
        var i = 0
        func length(_ initial: Int) throws -> Int {
            var n = initial
            guard initial == 15 else { return n }
            while true {
                guard i < input.count else { throw Failure(message: "lz4: truncated length") }
                let b = input[i]
                i += 1
                n += Int(b)
                guard n <= size else { throw Failure(message: "lz4: length overruns") }
                if b != 255 { return n }
            }
        }
        while i < input.count {
            let token = input[i]
            i += 1
            let literals = try length(Int(token >> 4))
            guard literals <= input.count - i, out.count + literals <= size else { throw Failure(message: "lz4: literals overrun") }
            out.append(contentsOf: input[i..<(i + literals)])
            i += literals
            if i >= input.count { break }
            guard i + 2 <= input.count else { throw Failure(message: "lz4: truncated offset") }
            let offset = Int(input[i]) | Int(input[i + 1]) << 8
            i += 2
            let match = try length(Int(token & 15)) + 4
            guard offset > 0, offset <= out.count, out.count + match <= size else { throw Failure(message: "lz4: bad match") }
            let from = out.count - offset
            for k in 0..<match { out.append(out[from + k]) }
        }
        guard out.count == size else { throw Failure(message: "lz4: \(out.count) bytes, expected \(size)") }
        return out
    }

    static func zstd(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        let declared = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, input.count) }
        guard declared != ZSTD_CONTENTSIZE_ERROR else { throw Failure(message: "zstd: not a zstd frame") }
        let capacity = declared == ZSTD_CONTENTSIZE_UNKNOWN ? limit : Int(min(declared, UInt64(limit)))
        guard declared == ZSTD_CONTENTSIZE_UNKNOWN || declared <= UInt64(limit) else { throw Failure(message: "zstd: \(declared) bytes is over the limit") }
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { o in input.withUnsafeBytes { i in ZSTD_decompress(o.baseAddress, o.count, i.baseAddress, i.count) } }
        guard ZSTD_isError(n) == 0 else { throw Failure(message: "zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }

    static func xz(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        var stream = quarry_lzma_stream_init()
        guard lzma_stream_decoder(&stream, 256 << 20, 0) == LZMA_OK else { throw Failure(message: "xz: cannot start the decoder") }
        defer { lzma_end(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        return try input.withUnsafeBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = inBuffer.count
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer -> (lzma_ret, Int) in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = outBuffer.count
                    let status = lzma_code(&stream, LZMA_FINISH)
                    return (status, outBuffer.count - stream.avail_out)
                }
                out.append(contentsOf: chunk[0..<produced])
                guard out.count <= limit else { throw Failure(message: "xz: output over the limit") }
                if status == LZMA_STREAM_END { return out }
                guard status == LZMA_OK, produced > 0 || stream.avail_in > 0 else { throw Failure(message: "xz: corrupt data (\(status.rawValue))") }
            }
        }
    }
}
