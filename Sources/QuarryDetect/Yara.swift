import Foundation
import VQL

/// yara() and proc_yara(): YARA rules over files (read in bounded blocks, never whole) and over
/// the readable memory of a process.
public enum YaraPlugins {
    public static let all: [PluginDeclaration] = [yara, yarax, procYara]

    static let rowSchema = Schema(["Rule", "Meta", "Tags", "String", "File", "FileName"], caseInsensitiveFallback: true)
    static let procSchema = Schema(["Rule", "Meta", "Tags", "String", "Pid", "Region"], caseInsensitiveFallback: true)
    static let stringSchema = Schema(["Name", "Offset", "HexData", "Data"], caseInsensitiveFallback: true)

    public static let yara = PluginDeclaration(
        name: "yara", summary: "Scans files with YARA rules; one row per string match (or per rule without strings).",
        arguments: [
            ArgumentSpec("rules", .any, required: true, "YARA rule text, or a list of strings to look for."),
            ArgumentSpec("files", .stringList, required: true, "Files to scan (paths, OSPath values, pathspecs or a query)."),
            ArgumentSpec("accessor", .string, "How to reach the files: file (default), data (the files are the data itself), zip, process, …"),
            ArgumentSpec("context", .int, "Bytes of context to include around each match (default 0)."),
            ArgumentSpec("number", .int, "At most this many string matches per file (default 1, as Velociraptor)."),
            ArgumentSpec("blocksize", .int, "Read files in blocks of this size (default 100 MiB)."),
            ArgumentSpec("start", .int, "Start scanning at this offset."),
            ArgumentSpec("end", .int, "Stop scanning at this offset."),
            ArgumentSpec("namespace", .string, "The rules' namespace."),
            ArgumentSpec("force_buffers", .bool, "Scan live files in blocksize buffers too (by default they are scanned whole)."),
            ArgumentSpec("workers", .int, "Scan this many files at once, one scanner per thread (default: the number of cores)."),
            ArgumentSpec("ordered", .bool, "Rows in the order of files= (default true); false emits each file's rows as its scan ends."),
        ],
        columns: [
            ColumnSpec("Rule", .string), ColumnSpec("Meta", .dict), ColumnSpec("Tags", .list),
            ColumnSpec("String", .dict, "Name, Offset, HexData, Data of the match (with `context` bytes around it)"), ColumnSpec("File", .dict, "stat of the file"),
            ColumnSpec("FileName", .string),
        ],
        examples: ["SELECT Rule, String.Offset FROM yara(rules=['quarry'], accessor='data', files='hello quarry')"],
        permissions: [.filesystemRead],
        open: scanFiles
    )

    /// Velociraptor's YARA-X variant, same rows as yara(). Quarry links libyara, not YARA-X: rules
    /// in the common language (nearly all) scan the same; YARA-X-only syntax gets libyara's compile
    /// error, and dll_path (where Velociraptor finds the YARA-X library) is not needed.
    public static let yarax = PluginDeclaration(
        name: "yarax", summary: "Scans files with YARA rules like yara() (Velociraptor's YARA-X variant; here on libyara, "
            + "so YARA-X-only syntax is refused with a compile error). One row per string match.",
        arguments: [
            ArgumentSpec("rules", .any, "YARA rule text, or a list of strings to look for."),
            ArgumentSpec("files", .stringList, required: true, "Files to scan (paths, OSPath values, pathspecs or a query)."),
            ArgumentSpec("accessor", .string, "How to reach the files (default file)."),
            ArgumentSpec("context", .int, "Bytes of context to include around each match (default 0)."),
            ArgumentSpec("start", .int, "Start scanning at this offset."),
            ArgumentSpec("end", .int, "Stop scanning at this offset."),
            ArgumentSpec("number", .int, "At most this many string matches per file (default 1)."),
            ArgumentSpec("blocksize", .int, "Read files in blocks of this size (default 100 MiB)."),
            ArgumentSpec("key", .string, "Accepted for Velociraptor's queries: compiled rules are cached per query by their text anyway."),
            ArgumentSpec("namespace", .string, "The rules' namespace."),
            ArgumentSpec("vars", .dict, "External variables the rules use (bool, int, float or string values)."),
            ArgumentSpec("dll_path", .any, "Accepted and unused: the YARA engine is linked in."),
            ArgumentSpec("force_buffers", .bool, "Scan live files in blocksize buffers too."),
        ],
        columns: [
            ColumnSpec("Rule", .string), ColumnSpec("Meta", .dict), ColumnSpec("Tags", .list),
            ColumnSpec("String", .dict, "Name, Offset, HexData, Data of the match"), ColumnSpec("File", .dict, "stat of the file"),
            ColumnSpec("FileName", .string),
        ],
        examples: ["SELECT Rule FROM yarax(rules='rule X { strings: $a = \"quarry\" condition: $a and filesize > Min }', vars=dict(Min=3), accessor='data', files='hello quarry')"],
        permissions: [.filesystemRead],
        open: scanFiles
    )

    /// yara() and yarax(): the rules compiled once, files= streamed through one scanner per worker.
    static func scanFiles(_ ctx: CallContext) -> any RowCursor {
        guard let rules = compiledRules(ctx), let accessor = ctx.accessor() else { return ArrayCursor([]) }
        let options = ScanOptions(
            context: Int(ctx.int("context") ?? 0), number: Int(ctx.int("number") ?? 1),
            blocksize: Int(ctx.int("blocksize") ?? 100 << 20), start: ctx.int("start") ?? 0, end: ctx.int("end"),
            forceBuffers: ctx.bool("force_buffers") ?? false)
        // files= streams (a query's rows are pulled as needed, so LIMIT stops the walk early).
        let source = (try? ctx.rows("files")) ?? ArrayCursor([])
        let workers = Int(min(64, max(1, ctx.int("workers") ?? Int64(ProcessInfo.processInfo.activeProcessorCount))))
        if workers > 1 {
            return YaraWorkers(source: source, accessor: accessor, rules: rules, options: options, ctx: ctx,
                               workers: workers, ordered: ctx.bool("ordered") ?? true)
        }
        guard let scanner = YaraScanner(rules: rules) else {
            source.close()
            ctx.log(.error, "yara: cannot create a YARA scanner")
            return ArrayCursor([])
        }
        var buffer: [UInt8] = []
        var pending: [Value] = []
        return GeneratorCursor(onClose: { source.close() }) {
            while pending.isEmpty {
                try ctx.checkCancelled()
                guard let row = try source.next() else { return nil }
                guard let path = PathValues.path(row, for: accessor) else { continue }
                pending = fileRows(path, accessor: accessor, scanner: scanner, options: options, ctx: ctx, buffer: &buffer)
            }
            return pending.removeFirst()
        }
    }

    /// The call's rules= compiled (cached per query by their text); nil, logged, when they do not compile.
    static func compiledRules(_ ctx: CallContext) -> YaraRules? {
        guard let ruleValue = ctx.value("rules"), let text = YaraEngine.ruleText(from: ruleValue) else {
            ctx.log(.error, "\(ctx.name): rules= must be rule text or a list of strings")
            return nil
        }
        do {
            var externals: [(String, Value)] = []
            if case .dict(let vars)? = ctx.value("vars")?.reduced() { externals = vars.keys.map { ($0, vars[$0] ?? .null) } }
            return try YaraEngine.rules(text, namespace: ctx.string("namespace"), externals: externals, context: ctx.context)
        } catch {
            ctx.log(.error, "\(error)")
            return nil
        }
    }

    struct ScanOptions {
        var context: Int
        var number: Int
        var blocksize: Int
        var start: Int64
        var end: Int64?
        var forceBuffers = false
    }

    static func stringValue(_ match: YaraHit.StringMatch, contextBytes: [UInt8]) -> Value {
        .dict(Dict(schema: stringSchema, values: [
            .string(match.name), .int(match.offset), .list(HexDump.lines(contextBytes.isEmpty ? match.data : contextBytes).map { .string($0) }),
            .string(bytes: contextBytes.isEmpty ? match.data : contextBytes),
        ]))
    }

    static func rows(for hits: [YaraHit], options: ScanOptions, trailer: [Value], schema: Schema, contextReader: (Int64, Int) -> [UInt8]) -> [Value] {
        var rows: [Value] = []
        for hit in hits {
            let head: [Value] = [.string(hit.rule), .dict(hit.meta), .list(hit.tags.map { .string($0) })]
            if hit.strings.isEmpty {
                rows.append(.dict(Dict(schema: schema, values: head + [.null] + trailer)))
            }
            for match in hit.strings {
                var context: [UInt8] = []
                if options.context > 0 {
                    let start = max(0, match.offset - Int64(options.context))
                    let end = match.offset + Int64(match.data.count + options.context)
                    context = contextReader(start, Int(end - start))
                }
                rows.append(.dict(Dict(schema: schema, values: head + [stringValue(match, contextBytes: context)] + trailer)))
            }
        }
        return rows
    }

    /// The File column: the file's stat as Velociraptor prints a file info.
    static func fileDict(_ info: FileInfo) -> Value {
        .dict(Dict([
            ("FullPath", .string(bytes: info.path.text)), ("Size", .int(info.size)), ("Mode", .int(FileMode.goBits(info.mode))),
            ("ModeStr", .string(FileMode.string(info.mode))), ("ModTime", .timestamp(info.mtime ?? .goZero)), ("Data", .dict(info.data)),
            ("Mtime", .timestamp(info.mtime ?? .goZero)), ("Ctime", .timestamp(info.ctime ?? .goZero)), ("Atime", .timestamp(info.atime ?? .goZero)),
        ]))
    }

    /// Scans a file in blocks (overlapping so strings across a boundary still match). Devices
    /// that may never end and directories are skipped; a file that shrinks mid-scan is reported.
    static func fileRows(_ path: OSPath, accessor: any Accessor, scanner: YaraScanner, options: ScanOptions, ctx: CallContext, buffer: inout [UInt8]) -> [Value] {
        let context = ctx.context
        let scope = ctx.accessorScope
        let info: FileInfo
        do {
            info = try accessor.stat(path, follow: true, in: scope)
        } catch {
            ctx.logFailure(path, error)
            return []
        }
        // Directories (common in glob output) are skipped quietly.
        if info.isDirectory { return [] }
        guard let file = ctx.open(path, with: accessor) else { return [] }
        defer { file.close() }
        if file.mayNotEnd && options.end == nil {
            context.logOnce(.warning, "yara: \(PathValues.display(path)): not a regular file, skipped")
            return []
        }
        let size = file.size ?? info.size
        let end = min(size, options.end ?? size)
        // Files on the live file system are scanned whole (up to 100 MiB at a time) whatever the
        // blocksize, as Velociraptor scans them from the file: rules that test the header
        // (uint32(0) == …) keep matching. Other accessors are scanned in blocksize buffers.
        let requested = accessor.localPath(path, in: scope) != nil && !options.forceBuffers
            ? max(options.blocksize, Int(min(size, 100 << 20))) : options.blocksize
        let overlap = Int64(min(64 << 10, requested / 2))
        let blocksize = max(Int64(requested), overlap * 2)
        let capacity = Int(min(blocksize, max(0, end - options.start)))
        if buffer.count < capacity {
            // Uninitialised: the reads fill it.
            buffer = [UInt8](unsafeUninitializedCapacity: capacity) { _, count in count = capacity }
        }
        var hits: [YaraHit] = []
        var seen = Set<String>()
        // Sparse files (process memory) are scanned range by range.
        let ranges = (file.ranges ?? [0..<end]).compactMap { range -> Range<Int64>? in
            let lower = max(range.lowerBound, options.start), upper = min(range.upperBound, end)
            return lower < upper ? lower..<upper : nil
        }
        var found = 0
        scanning: for range in ranges {
            var offset = range.lowerBound
            while offset < range.upperBound && !context.cancellation.isCancelled {
                context.throttle?.pace()
                let want = Int(min(blocksize, range.upperBound - offset))
                var got = 0
                do {
                    while got < want {
                        let n = try buffer.withUnsafeMutableBytes {
                            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[got..<want]), at: offset + Int64(got))
                        }
                        if n <= 0 { break }
                        got += n
                    }
                } catch {
                    ctx.logFailure(path, error)
                }
                if got < want && file.ranges == nil {
                    context.logOnce(.warning, "yara: \(PathValues.display(path)) changed during the scan (short read at \(offset))")
                }
                guard got > 0 else { break }
                let blockHits = buffer.withUnsafeBytes {
                    scanner.scan(UnsafeRawBufferPointer(rebasing: $0[0..<got]), base: offset, maxMatches: options.number)
                }
                for var hit in blockHits {
                    hit.strings = hit.strings.filter { seen.insert("\(hit.rule)\u{0}\($0.name)\u{0}\($0.offset)").inserted }
                    if hit.strings.isEmpty && seen.contains("rule:\(hit.rule)") { continue }
                    seen.insert("rule:\(hit.rule)")
                    found += max(1, hit.strings.count)
                    hits.append(hit)
                }
                if found >= options.number { break scanning }
                if got < want || offset + Int64(got) >= range.upperBound { break }
                offset += Int64(got) - overlap
            }
        }
        let trailer: [Value] = [fileDict(info), .string(bytes: path.text)]
        return rows(for: hits, options: options, trailer: trailer, schema: rowSchema) { offset, length in
            (try? file.read(at: offset, count: length)) ?? []
        }
    }

    public static let procYara = PluginDeclaration(
        name: "proc_yara", summary: "Scans the readable memory regions of a process with YARA rules.",
        arguments: [
            ArgumentSpec("pid", .int, required: true, "The process to scan."),
            ArgumentSpec("rules", .any, required: true, "YARA rule text, or a list of strings to look for."),
            ArgumentSpec("context", .int, "Bytes of context around each match."),
            ArgumentSpec("number", .int, "At most this many string matches (default 100)."),
            ArgumentSpec("namespace", .string, "The rules' namespace."),
        ],
        columns: [
            ColumnSpec("Rule", .string), ColumnSpec("Meta", .dict), ColumnSpec("Tags", .list), ColumnSpec("String", .dict),
            ColumnSpec("Pid", .int), ColumnSpec("Region", .dict, "Start, End, Perms, Path of the memory region"),
        ],
        examples: ["SELECT Rule FROM proc_yara(pid=getpid(), rules=['proc_yara example marker'])"],
        permissions: [.machineState]
    ) { ctx in
        guard let pid = ctx.int("pid") else {
            ctx.log(.error, "proc_yara: needs pid=")
            return ArrayCursor([])
        }
        guard let rules = compiledRules(ctx) else { return ArrayCursor([]) }
        guard let scanner = YaraScanner(rules: rules) else {
            ctx.log(.error, "proc_yara: cannot create a YARA scanner")
            return ArrayCursor([])
        }
        let options = ScanOptions(context: Int(ctx.int("context") ?? 0), number: Int(ctx.int("number") ?? 100), blocksize: 64 << 20, start: 0, end: nil)
        return ArrayCursor(processRows(pid: pid, scanner: scanner, options: options, ctx: ctx))
    }

    static func processRows(pid: Int64, scanner: YaraScanner, options: ScanOptions, ctx: CallContext) -> [Value] {
        // /proc files report size 0: read them to the end rather than by their stat size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/maps"),
            let maps = String(data: (try? handle.readToEnd()) ?? Data(), encoding: .utf8)
        else {
            ctx.context.logOnce(.warning, "proc_yara: cannot read /proc/\(pid)/maps")
            return []
        }
        let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            ctx.context.logOnce(.warning, "proc_yara: cannot open /proc/\(pid)/mem: \(String(cString: strerror(errno)))")
            return []
        }
        defer { close(fd) }
        var rows: [Value] = []
        // One buffer for every region, grown to the largest block read.
        var buffer: [UInt8] = []
        for line in maps.split(separator: "\n") {
            if ctx.context.cancellation.isCancelled { break }
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[1].hasPrefix("r") else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16), end > start else { continue }
            let path = fields.count > 5 ? String(fields[5]).trimmingCharacters(in: .whitespaces) : ""
            if path == "[vvar]" || path == "[vsyscall]" { continue }
            let region = Value.dict(Dict([
                ("Start", .int(Int64(bitPattern: start))), ("End", .int(Int64(bitPattern: end))),
                ("Perms", .string(String(fields[1]))), ("Path", .string(path)),
            ]))
            var offset = start
            while offset < end {
                let length = Int(min(UInt64(options.blocksize), end - offset))
                if buffer.count < length {
                    buffer = [UInt8](unsafeUninitializedCapacity: length) { _, count in count = length }
                }
                let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(truncatingIfNeeded: offset)) }
                guard got > 0 else { break }
                let hits = buffer.withUnsafeBytes {
                    scanner.scan(UnsafeRawBufferPointer(rebasing: $0[0..<got]), base: Int64(bitPattern: offset), maxMatches: options.number)
                }
                rows += YaraPlugins.rows(for: hits, options: options, trailer: [.int(pid), region], schema: procSchema) { at, count in
                    var bytes = [UInt8](repeating: 0, count: count)
                    let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(truncatingIfNeeded: at)) }
                    return Array(bytes.prefix(max(0, n)))
                }
                offset += UInt64(got)
            }
        }
        return rows
    }
}

/// Hex dump lines for match context, in Go's hex.Dump layout (what Velociraptor shows):
/// "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64              |hello world|", the dump's
/// final newline giving a last empty line.
enum HexDump {
    static func lines(_ bytes: [UInt8]) -> [String] {
        let digits = Array("0123456789abcdef".utf8)
        var lines: [String] = []
        for start in stride(from: 0, to: bytes.count, by: 16) {
            let chunk = bytes[start..<min(bytes.count, start + 16)]
            var line: [UInt8] = []
            var offset = start
            var offsetDigits = [UInt8](repeating: UInt8(ascii: "0"), count: 8)
            for i in (0..<8).reversed() {
                offsetDigits[i] = digits[offset & 15]
                offset >>= 4
            }
            line += offsetDigits + Array("  ".utf8)
            for slot in 0..<16 {
                if slot < chunk.count {
                    let byte = chunk[chunk.startIndex + slot]
                    line += [digits[Int(byte >> 4)], digits[Int(byte & 15)], UInt8(ascii: " ")]
                } else {
                    line += Array("   ".utf8)
                }
                if slot == 7 { line.append(UInt8(ascii: " ")) }
            }
            line += Array(" |".utf8) + chunk.map { $0 >= 32 && $0 < 127 ? $0 : UInt8(ascii: ".") } + [UInt8(ascii: "|")]
            lines.append(String(decoding: line, as: UTF8.self))
        }
        return lines + [""]
    }
}
