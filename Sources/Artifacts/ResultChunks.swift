import Foundation
import VQL

/// When a running source's buffered rows become a chunk in the container: every `rows` rows or
/// `bytes` bytes, and at least every few seconds — `seconds` at first, growing with the collection's
/// age (a twentieth of it, at most a minute) so a long collection does not fill its container with
/// thousands of tiny parts.
public struct ChunkPolicy: Sendable {
    public var rows = 10_000
    public var bytes = 8 << 20
    public var seconds = 1.0
    public init() {}

    func interval(elapsed: Double) -> Double { min(60, max(seconds, elapsed / 20)) }
}

/// The rows of the source being collected that are not in the container yet (JSON lines, their
/// index and CSV), in memory and bounded by the chunk policy: there is no spill file to leak or
/// outlive the process. `take` hands them over as the next chunk, named by `ContainerLayout`.
final class ResultChunks: @unchecked Sendable {
    struct Chunk {
        var rowsMember: String
        var json: [UInt8]
        var index: [UInt8]
        var csv: [UInt8]?
        var rows: Int
    }

    let label: String
    let artifact: String
    let source: String
    private let csv: Bool
    private let lock = NSLock()
    /// Held for the whole of a flush, so chunks reach the container (and the agent) in order.
    let flushLock = NSLock()
    private var json: [UInt8] = []
    private var index: [UInt8] = []
    private var csvText: [UInt8] = []
    private var csvColumns: [String]?
    private var rows = 0
    private var part = 0
    private var finished = false
    private var lastFlush = Date()
    /// A failed write from the flusher thread, for the collecting thread to report.
    var failure: (any Error)? {
        get { lock.withLock { storedFailure } }
        set { lock.withLock { storedFailure = newValue } }
    }
    private var storedFailure: (any Error)?

    init(label: String, artifact: String, source: String, csv: Bool) {
        self.label = label
        self.artifact = artifact
        self.source = source
        self.csv = csv
    }

    /// Buffers one row; true when the buffer is full enough to flush now.
    func append(_ value: Value, policy: ChunkPolicy) -> Bool {
        lock.withLock {
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { index.append(contentsOf: $0) }
            JSONWriter.write(value, into: &json)
            json.append(0x0A)
            if csv, case .dict(let d) = value {
                if csvColumns == nil {
                    csvColumns = d.keys
                    csvText.append(contentsOf: (d.keys.map(CellText.csvField).joined(separator: ",") + "\n").utf8)
                }
                csvText.append(contentsOf: ((csvColumns ?? []).map { CellText.csvField(CellText.text(d[$0] ?? .null)) }.joined(separator: ",") + "\n").utf8)
            }
            rows += 1
            return rows >= policy.rows || json.count >= policy.bytes
        }
    }

    /// Whether buffered rows have waited long enough to be flushed.
    func due(now: Date, interval: Double) -> Bool {
        lock.withLock { rows > 0 && !finished && now.timeIntervalSince(lastFlush) >= interval }
    }

    /// The buffered rows as the next chunk (nil when there is nothing to write). The last call
    /// (`final`) names a source that never needed a part by Velociraptor's single-file name.
    func take(final: Bool) -> Chunk? {
        lock.withLock {
            guard !finished else { return nil }
            if final { finished = true }
            lastFlush = Date()
            if rows == 0 && !(final && part == 0) { return nil }
            let whole = final && part == 0
            if !whole { part += 1 }
            let chunk = Chunk(
                rowsMember: ContainerLayout.rows(label: label, part: whole ? nil : part), json: json, index: index,
                csv: csv ? (csvColumns == nil && !whole ? nil : csvText) : nil, rows: rows)
            json = []
            index = []
            csvText = []
            csvColumns = nil
            rows = 0
            return chunk
        }
    }
}
