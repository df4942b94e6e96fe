import Foundation
import VQL

/// Output formats for rows: an aligned table for people, JSON, JSON lines or CSV for machines.
enum OutputFormat: String, CaseIterable {
    case table, json, jsonl, csv
}

/// Streams rows of one statement after another to a file handle in the chosen format. With
/// `flushWhenIdle()`, rows that wait in a table page or the buffer are printed once no row has
/// come for a moment, so never-ending event queries show each row as it arrives.
final class RowWriter: @unchecked Sendable {
    private let lock = NSLock()
    private var idleTimer: DispatchSourceTimer?
    private var lastWrite = RowWriter.monotonicMilliseconds()
    private let format: OutputFormat
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var rowsInStatement = 0
    private var csvColumns: [String]?
    private var tablePage: [Value] = []
    private let terminalWidth: Int
    /// Rows buffered before a table page is printed (widths are measured per page).
    private let pageSize = 200

    init(format: OutputFormat, handle: FileHandle = .standardOutput, terminalWidth: Int = RowWriter.detectTerminalWidth()) {
        self.format = format
        self.handle = handle
        self.terminalWidth = terminalWidth
    }

    static func detectTerminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"], let n = Int(columns) { return n }
        return 120
    }

    /// Prints pending rows after 300 ms without a new one (for queries that wait for events).
    func flushWhenIdle() {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 0.2, repeating: 0.2)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            self.lock.withLock {
                guard RowWriter.monotonicMilliseconds() &- self.lastWrite > 300 else { return }
                if self.format == .table { self.flushTable() } else { self.flush() }
            }
        }
        timer.resume()
        idleTimer = timer
    }

    deinit { idleTimer?.cancel() }

    func beginStatement() {
        lock.lock()
        defer { lock.unlock() }
        rowsInStatement = 0
        csvColumns = nil
        tablePage = []
        if format == .json { buffer.append(UInt8(ascii: "[")) }
    }

    func write(_ row: Value) {
        let row = row.materialized()
        lock.lock()
        defer { lock.unlock() }
        lastWrite = RowWriter.monotonicMilliseconds()
        switch format {
        case .json:
            buffer.append(contentsOf: rowsInStatement == 0 ? [0x0A] : [UInt8(ascii: ","), 0x0A])
            writeJSONRow(row)
        case .jsonl:
            writeJSONRow(row)
            buffer.append(0x0A)
        case .csv:
            writeCSV(row)
        case .table:
            tablePage.append(row)
            // Pages print when full, or after half a second, so slow queries show rows early.
            if tablePage.count >= pageSize || RowWriter.monotonicMilliseconds() &- lastFlush > 500 { flushTable() }
        }
        rowsInStatement += 1
        // Rows stream: flush when the buffer is large, or when rows arrive slowly (so a person
        // watching a long query sees each row within ~50 ms of its production).
        if buffer.count > 1 << 16 || RowWriter.monotonicMilliseconds() &- lastFlush > 50 { flush() }
    }

    private var lastFlush = RowWriter.monotonicMilliseconds()

    static func monotonicMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }

    /// Rows of one query share a schema: their keys are escaped once and reused.
    private var cachedSchema: Schema?
    private var cachedKeys: [[UInt8]] = []

    private func writeJSONRow(_ row: Value) {
        guard case .dict(let d) = row else {
            JSONWriter.write(row, into: &buffer)
            return
        }
        if cachedSchema !== d.schema {
            cachedSchema = d.schema
            cachedKeys = d.keys.enumerated().map { i, key in
                var bytes: [UInt8] = i == 0 ? [UInt8(ascii: "{")] : [UInt8(ascii: ",")]
                JSONWriter.write(.string(key), into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                return bytes
            }
        }
        if d.values.isEmpty {
            buffer.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")])
            return
        }
        for i in 0..<d.values.count {
            buffer.append(contentsOf: cachedKeys[i])
            JSONWriter.write(d.values[i], into: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    func endStatement() {
        lock.lock()
        defer { lock.unlock() }
        switch format {
        case .json: buffer.append(contentsOf: rowsInStatement == 0 ? [UInt8(ascii: "]"), 0x0A] : [0x0A, UInt8(ascii: "]"), 0x0A])
        case .table: flushTable()
        default: break
        }
        flush()
    }

    func flush() {
        lastFlush = RowWriter.monotonicMilliseconds()
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeCSV(_ row: Value) {
        guard case .dict(let d) = row else { return }
        if csvColumns == nil {
            csvColumns = d.keys
            buffer.append(contentsOf: d.keys.map(CellText.csvField).joined(separator: ",").utf8)
            buffer.append(0x0A)
        }
        let cells = (csvColumns ?? []).map { CellText.csvField(CellText.text(d[$0] ?? .null)) }
        buffer.append(contentsOf: cells.joined(separator: ",").utf8)
        buffer.append(0x0A)
    }

    private func flushTable() {
        guard !tablePage.isEmpty else { return }
        buffer.append(contentsOf: TableRenderer.render(tablePage, width: terminalWidth).utf8)
        tablePage = []
        flush()
    }
}

/// Aligned tables that fit the terminal: long cells are cut with "…", newlines shown as ⏎.
enum TableRenderer {
    static func render(_ rows: [Value], width: Int) -> String {
        var columns: [String] = []
        for row in rows {
            if case .dict(let d) = row {
                for k in d.keys where !columns.contains(k) { columns.append(k) }
            }
        }
        guard !columns.isEmpty else { return "" }
        let cells: [[String]] = rows.map { row in
            guard case .dict(let d) = row else { return columns.map { _ in "" } }
            return columns.map { CellText.text(d[$0] ?? .null).replacingOccurrences(of: "\n", with: "⏎") }
        }
        var widths = columns.map { $0.count }
        for row in cells {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        // Shrink the widest columns until the table fits.
        let separators = 3 * columns.count + 1
        while widths.reduce(0, +) + separators > width {
            guard let widest = widths.indices.max(by: { widths[$0] < widths[$1] }), widths[widest] > 8 else { break }
            widths[widest] -= 1
        }
        func fit(_ s: String, _ w: Int) -> String {
            if s.count <= w { return s + String(repeating: " ", count: w - s.count) }
            return String(s.prefix(max(0, w - 1))) + "…"
        }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "+\n"
        var out = rule
        out += "| " + zip(columns, widths).map { fit($0, $1) }.joined(separator: " | ") + " |\n"
        out += rule
        for row in cells {
            out += "| " + zip(row, widths).map { fit($0, $1) }.joined(separator: " | ") + " |\n"
        }
        out += rule
        return out
    }
}
