import CSystemd
import Foundation
import VQL

/// `watch_journald()`: new systemd journal entries as they are written, through libsystemd's
/// sd-journal (which follows journal file rotation itself). Without filename= it follows the
/// local system journal; with it, those journal files (or the folders holding them).
public enum WatchJournald {
    public static let plugin = PluginDeclaration(
        name: "watch_journald",
        summary: "New systemd journal entries as they are written (the local journal, or the given files or folders). Never ends.",
        arguments: [
            ArgumentSpec("filename", .stringList, "Journal files or folders (default: the local system journal)."),
            ArgumentSpec("accessor", .string, "Only 'file' (or 'auto') is supported."),
            ArgumentSpec("raw", .bool, "Rows are the entry's fields only (no System part)."),
        ],
        columns: [
            ColumnSpec("System", .dict, "Timestamp, Cursor, BootID, Seqnum-independent facts of the entry."),
            ColumnSpec("EventData", .dict, "Every field of the entry (MESSAGE, _PID, _COMM, SYSLOG_IDENTIFIER, …)."),
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "watch_journald"), WatchFiles.checkAccessor(ctx) else { return ArrayCursor([]) }
        do {
            let journal = try Journal(paths: ctx.strings("filename") ?? [])
            return JournalCursor(journal: journal, raw: ctx.bool("raw") ?? false, cancellation: ctx.context.cancellation)
        } catch {
            ctx.log(.error, "watch_journald: \(error)")
            return ArrayCursor([])
        }
    }
}

/// An open sd-journal positioned after its last entry.
final class Journal {
    private var handle: OpaquePointer?

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init(paths: [String]) throws {
        var journal: OpaquePointer?
        var status: Int32
        if paths.isEmpty {
            status = sd_journal_open(&journal, Int32(SD_JOURNAL_LOCAL_ONLY))
        } else {
            var isFolder: ObjCBool = false
            if paths.count == 1, FileManager.default.fileExists(atPath: paths[0], isDirectory: &isFolder), isFolder.boolValue {
                status = sd_journal_open_directory(&journal, paths[0], 0)
            } else {
                var cStrings = paths.map { strdup($0) }
                cStrings.append(nil)
                defer { for pointer in cStrings { free(pointer) } }
                status = cStrings.withUnsafeMutableBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                        sd_journal_open_files(&journal, $0, 0)
                    }
                }
            }
        }
        guard status >= 0, let journal else {
            throw Failure(description: "cannot open the journal: \(String(cString: strerror(-status)))")
        }
        handle = journal
        // Start after the newest entry: only new ones are reported.
        sd_journal_seek_tail(journal)
        sd_journal_previous(journal)
    }

    deinit { if let handle { sd_journal_close(handle) } }

    /// The next entry's fields, or nil when there is none yet.
    func next() -> (fields: [(String, [UInt8])], realtime: UInt64, cursor: String, boot: String)? {
        guard let handle, sd_journal_next(handle) > 0 else { return nil }
        var fields: [(String, [UInt8])] = []
        var data: UnsafeRawPointer?
        var length = 0
        sd_journal_restart_data(handle)
        while sd_journal_enumerate_data(handle, &data, &length) > 0, let data, fields.count < 1024 {
            let bytes = UnsafeRawBufferPointer(start: data, count: length)
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { continue }
            fields.append((String(decoding: bytes[..<equals], as: UTF8.self), Array(bytes[(equals + 1)...])))
        }
        var realtime: UInt64 = 0
        sd_journal_get_realtime_usec(handle, &realtime)
        var cursor: UnsafeMutablePointer<CChar>?
        var cursorText = ""
        if sd_journal_get_cursor(handle, &cursor) >= 0, let cursor {
            cursorText = String(cString: cursor)
            free(cursor)
        }
        var monotonic: UInt64 = 0
        var boot = sd_id128_t()
        sd_journal_get_monotonic_usec(handle, &monotonic, &boot)
        let bootText = withUnsafeBytes(of: boot.bytes) { $0.map { String(format: "%02x", $0) }.joined() }
        return (fields, realtime, cursorText, bootText)
    }

    /// Waits up to `seconds` for the journal to change.
    func wait(_ seconds: Double) {
        guard let handle else { return }
        _ = sd_journal_wait(handle, UInt64(seconds * 1_000_000))
    }
}

/// Rows of a journal as they are written, waking four times a second to notice cancellation.
final class JournalCursor: RowCursor {
    private let journal: Journal
    private let raw: Bool
    private let cancellation: CancellationFlag
    static let systemSchema = Schema(["Timestamp", "Cursor", "BootID"])
    static let rowSchema = Schema(["System", "EventData"])

    init(journal: Journal, raw: Bool, cancellation: CancellationFlag) {
        self.journal = journal
        self.raw = raw
        self.cancellation = cancellation
    }

    func next() throws -> Value? {
        while true {
            try cancellation.check()
            guard let entry = journal.next() else {
                journal.wait(0.25)
                continue
            }
            let data = Value.dict(Dict(entry.fields.map { ($0.0, Value.string(bytes: $0.1)) }))
            if raw { return data }
            let system = Dict(schema: Self.systemSchema, values: [
                .timestamp(Timestamp(nanoseconds: Int64(clamping: entry.realtime) &* 1000)), .string(entry.cursor), .string(entry.boot),
            ])
            return .dict(Dict(schema: Self.rowSchema, values: [.dict(system), data]))
        }
    }
}
