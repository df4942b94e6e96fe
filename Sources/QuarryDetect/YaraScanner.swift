import CYara
import Foundation
import Synchronization
import VQL

/// One libyara scanner over a shared compiled rule set. A scanner keeps per-scan state, so each
/// thread owns one (as the yara command line tool does); the rules are compiled once and shared.
final class YaraScanner {
    private let rules: YaraRules
    private let pointer: UnsafeMutablePointer<YR_SCANNER>
    private let collector = Collector()

    private final class Collector {
        var hits: [YaraHit] = []
        var base: Int64 = 0
        var maxMatches = 1
    }

    /// Nil when libyara cannot allocate the scanner.
    init?(rules: YaraRules, timeout: Int32 = 600) {
        var scanner: UnsafeMutablePointer<YR_SCANNER>?
        guard yr_scanner_create(rules.pointer, &scanner) == ERROR_SUCCESS, let scanner else { return nil }
        self.rules = rules
        self.pointer = scanner
        yr_scanner_set_timeout(scanner, timeout)
        // The collector lives as long as the scanner that calls back into it.
        yr_scanner_set_callback(
            scanner,
            { context, message, data, user in
                guard message == quarry_msg_rule_matching(), let context, let user,
                    let rule = data?.assumingMemoryBound(to: YR_RULE.self)
                else { return CALLBACK_CONTINUE }
                let collector = Unmanaged<Collector>.fromOpaque(user).takeUnretainedValue()
                collector.hits.append(YaraEngine.hit(rule, context: context, base: collector.base, maxMatches: collector.maxMatches))
                return CALLBACK_CONTINUE
            }, Unmanaged.passUnretained(collector).toOpaque())
    }

    deinit { yr_scanner_destroy(pointer) }

    /// Scans one buffer; offsets are reported relative to `base`.
    func scan(_ buffer: UnsafeRawBufferPointer, base: Int64, maxMatches: Int) -> [YaraHit] {
        guard let address = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return [] }
        collector.hits = []
        collector.base = base
        collector.maxMatches = maxMatches
        _ = yr_scanner_scan_mem(pointer, address, buffer.count)
        defer { collector.hits = [] }
        return collector.hits
    }
}

/// yara()'s worker pool: a feeder thread pulls files= and hands paths through a bounded queue to
/// `workers` threads, each with its own scanner and read buffer. With `ordered` (the default)
/// rows come out in the order of files=, whatever order the scans finish in; otherwise as each
/// file finishes. At most `window` files are between the feeder and the consumer at any time, so
/// memory stays bounded even when one large file holds back the files after it.
final class YaraWorkers: RowCursor {
    private struct Scanned {
        let index: Int
        let rows: [Value]
    }

    private let results: BoundedQueue<Scanned>
    private let feed: BoundedQueue<(Int, OSPath)>
    private let tokens: BoundedQueue<Bool>
    private let shared: Shared
    private let cancellation: CancellationFlag
    private let ordered: Bool
    private var waiting: [Int: [Value]] = [:]
    private var expected = 0
    private var pending: [Value] = []
    private var head = 0

    init(source: RowCursor, accessor: any Accessor, rules: YaraRules, options: YaraPlugins.ScanOptions, ctx: CallContext,
         workers: Int, ordered: Bool) {
        // Wide enough that one large file does not idle the other workers while rows wait for it
        // (with workers * 4, ordered scans of /usr/bin ran at 1.33× `yara -p 2`; unordered at 1.05×).
        let window = workers * 64
        let results = BoundedQueue<Scanned>(capacity: window)
        let feed = BoundedQueue<(Int, OSPath)>(capacity: workers * 2)
        let tokens = BoundedQueue<Bool>(capacity: window)
        for _ in 0..<window { tokens.put(true) }
        self.results = results
        self.feed = feed
        self.tokens = tokens
        self.ordered = ordered
        self.cancellation = ctx.context.cancellation
        let shared = Shared(source: source, accessor: accessor, rules: rules, options: options, ctx: ctx, workers: workers)
        self.shared = shared
        Thread.detachNewThread {
            // The feeder owns the source: it alone pulls and closes it.
            defer {
                shared.source.close()
                feed.finish()
            }
            var index = 0
            do {
                while tokens.take() != nil {
                    if shared.ctx.context.cancellation.isCancelled { break }
                    guard let row = try shared.source.next() else { break }
                    guard let path = PathValues.path(row, for: shared.accessor) else {
                        tokens.put(true)
                        continue
                    }
                    if !feed.put((index, path)) { break }
                    index += 1
                }
            } catch {
                shared.failure.withLock { $0 = error }
            }
        }
        for _ in 0..<workers {
            Thread.detachNewThread {
                let scanner = YaraScanner(rules: shared.rules)
                if scanner == nil { shared.ctx.context.logOnce(.error, "yara: cannot create a YARA scanner") }
                var buffer: [UInt8] = []
                while let (index, path) = feed.take() {
                    var rows: [Value] = []
                    if let scanner, !shared.ctx.context.cancellation.isCancelled {
                        rows = YaraPlugins.fileRows(path, accessor: shared.accessor, scanner: scanner, options: shared.options,
                                                    ctx: shared.ctx, buffer: &buffer)
                    }
                    if !results.put(Scanned(index: index, rows: rows)) { break }
                }
                if shared.remaining.withLock({ $0 -= 1; return $0 }) == 0 { results.finish() }
            }
        }
    }

    /// What the threads share: the caller's context is only read (accessors and logging are
    /// thread-safe); the source is pulled by the feeder alone.
    private final class Shared: @unchecked Sendable {
        let failure = Mutex<(any Error)?>(nil)
        let remaining: Mutex<Int>
        let source: RowCursor
        let accessor: any Accessor
        let rules: YaraRules
        let options: YaraPlugins.ScanOptions
        let ctx: CallContext
        init(source: RowCursor, accessor: any Accessor, rules: YaraRules, options: YaraPlugins.ScanOptions, ctx: CallContext, workers: Int) {
            self.remaining = Mutex(workers)
            self.source = source
            self.accessor = accessor
            self.rules = rules
            self.options = options
            self.ctx = ctx
        }
    }

    func next() throws -> Value? {
        while true {
            if head < pending.count {
                head += 1
                return pending[head - 1]
            }
            try cancellation.check()
            if ordered, let rows = waiting.removeValue(forKey: expected) {
                deliver(rows)
                continue
            }
            guard let scanned = results.take() else {
                if let error = shared.failure.withLock({ $0 }) { throw error }
                return nil
            }
            if ordered && scanned.index != expected {
                waiting[scanned.index] = scanned.rows
                continue
            }
            deliver(scanned.rows)
        }
    }

    private func deliver(_ rows: [Value]) {
        pending = rows
        head = 0
        expected += 1
        tokens.put(true)
    }

    func close() {
        results.close()
        feed.close()
        tokens.close()
    }

    /// A cursor dropped without close() still lets its threads end.
    deinit { close() }
}
