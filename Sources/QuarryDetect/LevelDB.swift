import Foundation
import VQL

/// leveldb(): the live keys and values of a LevelDB database (Chrome's Local Storage, Session
/// Storage, IndexedDB; Electron apps), read from its files without the LevelDB library: write-
/// ahead logs and sorted tables (snappy-compressed blocks), newest version of each key wins,
/// deleted keys are left out.
public enum LevelDBPlugin {
    public static let plugin = PluginDeclaration(
        name: "leveldb",
        summary: "Rows of Key and Value for every live key of a LevelDB database folder (log and table files, snappy blocks), in key order.",
        arguments: [
            ArgumentSpec("file", .any, required: true, "The database folder (or one .log/.ldb file)."),
            ArgumentSpec("accessor", .string, "How to read it: file (default)."),
        ],
        columns: [ColumnSpec("Key", .string), ColumnSpec("Value", .string)],
        examples: ["SELECT * FROM chain(a={SELECT Key, Value FROM leveldb(file='/home/user/.config/google-chrome/Default/Local Storage/leveldb')}, b={SELECT 'no database here' AS Key, NULL AS Value FROM scope()}) LIMIT 1"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let folder = ParserInput.folder(ctx, "file") else { return ArrayCursor([]) }
        var reader = LevelDBReader(log: { ctx.context.logOnce(.warning, "leveldb: \($0)") }, cancelled: { ctx.context.cancellation.isCancelled })
        let entries = reader.read(folder)
        let schema = Schema(["Key", "Value"])
        var index = 0
        return GeneratorCursor {
            guard index < entries.count else { return nil }
            defer { index += 1 }
            return .dict(Dict(schema: schema, values: [.string(bytes: entries[index].key), .string(bytes: entries[index].value)]))
        }
    }
}

/// Reads LevelDB files and merges them into the database's current view.
struct LevelDBReader {
    struct Entry {
        var key: [UInt8]
        var sequence: UInt64
        var deleted: Bool
        var value: [UInt8]
    }

    let log: (String) -> Void
    let cancelled: () -> Bool
    static let maxEntries = 2_000_000
    static let maxBytes = 256 << 20
    static let maxFileSize: Int64 = 1 << 30
    private var latest: [[UInt8]: Entry] = [:]
    private var bytes = 0
    private var full = false

    init(log: @escaping (String) -> Void, cancelled: @escaping () -> Bool = { false }) {
        self.log = log
        self.cancelled = cancelled
    }

    /// The live entries of the folder, sorted by key.
    mutating func read(_ folder: any ParserFolder) -> [Entry] {
        let names = folder.names()
        let live = liveFiles(folder, names: names)
        for name in names {
            if cancelled() || full { break }
            let lower = name.lowercased()
            let isLog = lower.hasSuffix(".log") && lower.first?.isNumber == true
            let isTable = lower.hasSuffix(".ldb") || lower.hasSuffix(".sst")
            guard isLog || isTable else { continue }
            if let live, let number = UInt64(name.prefix { $0.isNumber }), !live.contains(number) { continue }
            guard let source = folder.open(name) else { continue }
            if isLog { readLog(source, name: name) } else { readTable(source, name: name) }
        }
        return latest.values.filter { !$0.deleted }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }

    private mutating func add(_ entry: Entry) {
        if let existing = latest[entry.key], existing.sequence > entry.sequence { return }
        guard latest.count < LevelDBReader.maxEntries, bytes + entry.value.count + entry.key.count < LevelDBReader.maxBytes else {
            if !full { log("more than \(LevelDBReader.maxEntries) entries or \(LevelDBReader.maxBytes) bytes; the rest is left out") }
            full = true
            return
        }
        bytes += entry.key.count + entry.value.count
        latest[entry.key] = entry
    }

    // MARK: - Logs (write-ahead log and MANIFEST share the record format)

    /// The records of a log file: 32 KiB blocks of checksummed fragments.
    func logRecords(_ source: any ParserSource, name: String) -> [[UInt8]] {
        let size = min(source.size ?? 0, LevelDBReader.maxFileSize)
        var records: [[UInt8]] = []
        var pending: [UInt8] = []
        var blockStart: Int64 = 0
        while blockStart < size && !cancelled() {
            let block = source.read(at: blockStart, count: 32768)
            if block.isEmpty { break }
            var i = 0
            while i + 7 <= block.count {
                let length = Int(block[i + 4]) | Int(block[i + 5]) << 8
                let type = block[i + 6]
                if type == 0 && length == 0 { break } // zero padding (preallocated tail)
                guard i + 7 + length <= block.count else {
                    log("\(name): truncated record at \(blockStart + Int64(i))")
                    break
                }
                let fragment = block[(i + 7)..<(i + 7 + length)]
                switch type {
                case 1: records.append(Array(fragment)); pending = []
                case 2: pending = Array(fragment)
                case 3: if pending.count + length < 64 << 20 { pending += fragment }
                case 4: pending += fragment; records.append(pending); pending = []
                default: log("\(name): unknown record type \(type)")
                }
                i += 7 + length
            }
            blockStart += 32768
        }
        return records
    }

    /// A log's write batches: sequence, count, then Put/Delete entries.
    mutating func readLog(_ source: any ParserSource, name: String) {
        for record in logRecords(source, name: name) {
            guard record.count >= 12 else { continue }
            var sequence = record[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            var cursor = ByteCursor(record, at: 12)
            while !cursor.atEnd && !full {
                guard let tag = cursor.byte(), let key = cursor.lengthPrefixed() else {
                    log("\(name): malformed batch")
                    break
                }
                if tag == 1 {
                    guard let value = cursor.lengthPrefixed() else { break }
                    add(Entry(key: key, sequence: sequence, deleted: false, value: value))
                } else if tag == 0 {
                    add(Entry(key: key, sequence: sequence, deleted: true, value: []))
                } else {
                    log("\(name): unknown batch tag \(tag)")
                    break
                }
                sequence &+= 1
            }
        }
    }

    // MARK: - Tables

    mutating func readTable(_ source: any ParserSource, name: String) {
        guard let size = source.size, size >= 48, size <= LevelDBReader.maxFileSize else {
            log("\(name): not a table (too small or too large)")
            return
        }
        let footer = source.read(at: size - 48, count: 48)
        guard footer.count == 48, footer.suffix(8) == [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb][...] else {
            log("\(name): no table magic")
            return
        }
        var cursor = ByteCursor(footer, at: 0)
        guard cursor.varint() != nil, cursor.varint() != nil, let indexOffset = cursor.varint(), let indexSize = cursor.varint(),
              let index = block(source, offset: indexOffset, size: indexSize, name: name) else {
            log("\(name): bad index block")
            return
        }
        var seen: Set<UInt64> = []
        for (_, handle) in blockEntries(index, name: name) {
            if cancelled() || full { return }
            var h = ByteCursor(handle, at: 0)
            guard let offset = h.varint(), let length = h.varint(), seen.insert(offset).inserted else { continue }
            guard let data = block(source, offset: offset, size: length, name: name) else { continue }
            for (internalKey, value) in blockEntries(data, name: name) {
                guard internalKey.count >= 8 else { continue }
                let trailer = internalKey.suffix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                add(Entry(key: Array(internalKey.dropLast(8)), sequence: trailer >> 8, deleted: trailer & 0xFF == 0, value: value))
            }
        }
    }

    /// A block's contents, decompressed when its trailer says snappy.
    func block(_ source: any ParserSource, offset: UInt64, size: UInt64, name: String) -> [UInt8]? {
        guard size < 64 << 20, offset < UInt64(Int64.max) else { return nil }
        let raw = source.read(at: Int64(offset), count: Int(size) + 5)
        guard raw.count == Int(size) + 5 else {
            log("\(name): truncated block at \(offset)")
            return nil
        }
        let body = Array(raw.prefix(Int(size)))
        switch raw[Int(size)] {
        case 0: return body
        case 1:
            do { return try Snappy.decompress(body) } catch {
                log("\(name): block at \(offset): \(error)")
                return nil
            }
        case let type:
            log("\(name): block at \(offset): unknown compression \(type)")
            return nil
        }
    }

    /// The key/value entries of a block (prefix-compressed keys, restart array at the end).
    func blockEntries(_ block: [UInt8], name: String) -> [([UInt8], [UInt8])] {
        guard block.count >= 4 else { return [] }
        let restarts = Int(block[block.count - 4]) | Int(block[block.count - 3]) << 8 | Int(block[block.count - 2]) << 16 | Int(block[block.count - 1]) << 24
        guard restarts >= 0, restarts < block.count / 4 else {
            log("\(name): bad restart count")
            return []
        }
        let end = block.count - 4 - 4 * restarts
        var cursor = ByteCursor(block, at: 0, end: end)
        var key: [UInt8] = []
        var out: [([UInt8], [UInt8])] = []
        while !cursor.atEnd {
            guard let shared = cursor.varint(), let unshared = cursor.varint(), let valueLength = cursor.varint(),
                  shared <= UInt64(key.count), let suffix = cursor.take(unshared), let value = cursor.take(valueLength) else {
                log("\(name): malformed block entry")
                break
            }
            key = Array(key.prefix(Int(shared))) + suffix
            out.append((key, value))
        }
        return out
    }

    // MARK: - Which files are live

    /// The table and log numbers the current MANIFEST names, or nil when it cannot be read (then
    /// every file is read and sequence numbers decide).
    func liveFiles(_ folder: any ParserFolder, names: [String]) -> Set<UInt64>? {
        guard names.contains("CURRENT"), let current = folder.open("CURRENT") else { return nil }
        let manifest = String(decoding: current.read(at: 0, count: 256), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard manifest.hasPrefix("MANIFEST-"), names.contains(manifest), let source = folder.open(manifest) else { return nil }
        var tables: Set<UInt64> = []
        var logNumber: UInt64 = 0
        var prevLogNumber: UInt64 = 0
        for record in logRecords(source, name: manifest) {
            var c = ByteCursor(record, at: 0)
            while !c.atEnd {
                guard let tag = c.varint() else { return nil }
                switch tag {
                case 1: guard c.lengthPrefixed() != nil else { return nil }
                case 2: guard let n = c.varint() else { return nil }; logNumber = n
                case 9: guard let n = c.varint() else { return nil }; prevLogNumber = n
                case 3, 4: guard c.varint() != nil else { return nil }
                case 5: guard c.varint() != nil, c.lengthPrefixed() != nil else { return nil }
                case 6: guard c.varint() != nil, let n = c.varint() else { return nil }; tables.remove(n)
                case 7:
                    guard c.varint() != nil, let n = c.varint(), c.varint() != nil, c.lengthPrefixed() != nil, c.lengthPrefixed() != nil else { return nil }
                    tables.insert(n)
                default: return nil
                }
            }
        }
        var live = tables
        for name in names where name.lowercased().hasSuffix(".log") {
            if let n = UInt64(name.prefix { $0.isNumber }), n >= logNumber || (prevLogNumber != 0 && n == prevLogNumber) { live.insert(n) }
        }
        return live
    }
}

/// Reads varints and length-prefixed slices from bytes, never past `end`.
struct ByteCursor {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    init(_ bytes: [UInt8], at position: Int, end: Int? = nil) {
        self.bytes = bytes
        self.position = position
        self.end = min(end ?? bytes.count, bytes.count)
    }

    var atEnd: Bool { position >= end }

    mutating func byte() -> UInt8? {
        guard position < end else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 {
            guard let b = byte() else { return nil }
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    mutating func take(_ count: UInt64) -> [UInt8]? {
        guard count <= UInt64(end - position) else { return nil }
        defer { position += Int(count) }
        return Array(bytes[position..<(position + Int(count))])
    }

    mutating func lengthPrefixed() -> [UInt8]? {
        guard let n = varint() else { return nil }
        return take(n)
    }
}
