import Crypto
import Foundation
import Synchronization
import VQL

/// Limits a collection enforces (not advisory).
public struct CollectionOptions: Sendable {
    public var parameters: [String: String] = [:]
    /// Seconds for the whole collection; what has not finished is cancelled and recorded.
    public var timeout: Double?
    /// Rows per source; past it the source is truncated and that is recorded.
    public var maxRows: Int?
    /// Total bytes upload() may store; past it uploads are refused and recorded.
    public var maxUploadBytes: Int64?
    /// Also write CSV beside each JSON result.
    public var csv = false
    /// Percent of one core the collection may use (plugins that walk the disk or read content pace themselves).
    public var cpuLimit: Double?
    public init() {}
}

/// What a collection produced, for the CLI's summary and the container's context file.
public struct CollectionSummary: Sendable {
    public var output: String
    public var rows: [(source: String, count: Int)] = []
    public var uploadedBytes: Int64 = 0
    public var uploads = 0
    public var errors: [String] = []
    public var state = "running"
}

/// Collects artifacts into ONE zip container in Velociraptor's offline-collection layout:
/// `results/<Artifact>%2F<Source>.json` (JSON lines) with `.json.index` (little-endian uint64 row
/// offsets), `uploads/…`, `uploads.json`, `log.json`, `collection_context.json`, `requests.json`,
/// `client_info.json`, and Quarry's `quarry_manifest.json` (sha256 of every member, complete or not).
/// The container is valid after every member, so an interrupted collection stays readable.
public final class Collector: @unchecked Sendable {
    let repository: ArtifactRepository
    let registry: Registry
    let options: CollectionOptions
    let cancellation: CancellationFlag
    let zip: ZipWriter
    private var members: [(name: String, size: UInt64, sha256: String)] = []
    private var summary: CollectionSummary
    private let log = CollectionLog()
    private let started = Date()
    /// Called with (source, rows so far) as rows arrive, for progress on a terminal.
    public var progress: ((String, Int) -> Void)?

    public init(repository: ArtifactRepository, registry: Registry, output: String, options: CollectionOptions, cancellation: CancellationFlag) throws {
        self.repository = repository
        self.registry = registry
        self.options = options
        self.cancellation = cancellation
        self.zip = try ZipWriter(path: output)
        self.summary = CollectionSummary(output: output)
        try writeManifest(complete: false)
    }

    private func writeManifest(complete: Bool) throws {
        let manifest = Value.dict(Dict([
            ("tool", .string("quarry")), ("complete", .bool(complete)), ("state", .string(summary.state)),
            ("members", .list(members.map { .dict(Dict([("name", .string($0.name)), ("size", .int(Int64($0.size))), ("sha256", .string($0.sha256))])) })),
        ]))
        try zip.setTrailer(name: "quarry_manifest.json", data: Data(JSONWriter.string(manifest, pretty: true).utf8))
    }

    /// Adds a member, hashing it on the way, and refreshes the manifest.
    func addMember(_ name: String, reader: (inout [UInt8]) throws -> Int) throws -> (UInt64, String) {
        var sha = SHA256()
        let size = try zip.add(name: name) { buffer in
            let n = try reader(&buffer)
            if n > 0 { sha.update(data: buffer[0..<n]) }
            return n
        }
        let digest = sha.finalize().map { String(format: "%02x", $0) }.joined()
        members.append((name, size, digest))
        try writeManifest(complete: false)
        return (size, digest)
    }

    func addMember(_ name: String, data: Data) throws {
        var remaining = data[...]
        _ = try addMember(name) { buffer in
            let n = min(buffer.count, remaining.count)
            buffer.replaceSubrange(0..<n, with: remaining.prefix(n))
            remaining = remaining.dropFirst(n)
            return n
        }
    }

    /// Runs every artifact; the container is finished (or marked cancelled/incomplete) on return.
    public func collect(_ names: [String]) throws -> CollectionSummary {
        let session = Session(registry: registry, logger: log, cancellation: cancellation)
        if let limit = options.cpuLimit { session.context.throttle = CPUThrottle(percent: limit) }
        let uploads = ContainerUploads(collector: self, limit: options.maxUploadBytes)
        session.context.setService(UploadService.key, uploads as any UploadDestination)
        var timer: DispatchSourceTimer?
        if let timeout = options.timeout {
            let t = DispatchSource.makeTimerSource(queue: .global())
            t.schedule(deadline: .now() + timeout)
            t.setEventHandler { [log, cancellation] in
                log.log(.error, "collection timed out after \(timeout) s: cancelling")
                cancellation.cancel()
            }
            t.resume()
            timer = t
        }
        defer { timer?.cancel() }
        var requests: [Value] = []
        clientInfo(session)
        for name in names {
            guard let artifact = repository.artifact(named: name) else {
                summary.errors.append("no artifact \(name)")
                log.log(.error, "no artifact \(name)")
                continue
            }
            let parameters = options.parameters.filter { key, _ in artifact.parameters.contains { $0.name == key } }
            do {
                let compiled = try ArtifactCompiler.compile(artifact, parameters: parameters, repository: repository)
                for source in compiled.sources {
                    requests.append(.dict(Dict([("artifact", .string(artifact.name)), ("source", .string(source.name ?? "")), ("vql", .string(compiled.text(for: source)))])))
                }
                try run(compiled, session: session)
            } catch {
                summary.errors.append("\(artifact.name): \(error)")
                log.log(.error, "\(artifact.name): \(error)")
            }
            if cancellation.isCancelled { break }
        }
        summary.state = cancellation.isCancelled ? (summary.errors.contains { $0.contains("timed out") } ? "timed out" : "cancelled") : (summary.errors.isEmpty ? "finished" : "finished with errors")
        try finish(requests: requests, uploads: uploads)
        return summary
    }

    private func clientInfo(_ session: Session) {
        guard registry.plugin("info") != nil, let rows = try? session.run("SELECT * FROM info()"), let first = rows.last??.first else { return }
        try? addMember("client_info.json", data: Data(JSONWriter.string(first.materialized(), pretty: true).utf8))
    }

    private func run(_ compiled: CompiledArtifact, session: Session) throws {
        let env = session.root.child()
        guard try ArtifactPlugin.holds(compiled.precondition, in: env.child()) else {
            log.log(.info, "\(compiled.name): precondition false, not collected")
            return
        }
        let plan = try SourcePlan(compiled, in: env)
        for source in compiled.sources {
            if cancellation.isCancelled {
                summary.errors.append("\(compiled.name): cancelled before source \(source.name ?? "")")
                break
            }
            guard let step = try plan.prepare(source) else {
                log.log(.info, "\(compiled.name)/\(source.name ?? ""): source precondition false, not collected")
                continue
            }
            try runSource(label: step.label, statements: step.statements, scope: step.scope)
        }
    }

    /// Streams one source's rows into a temporary JSON-lines file, then adds it and its index.
    private func runSource(label: String, statements: [Statement], scope: Env) throws {
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-rows-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: temporary, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        guard let out = FileHandle(forWritingAtPath: temporary) else { throw ZipError(message: "cannot write \(temporary)") }
        var index = Data()
        var csv = Data()
        var csvColumns: [String]?
        var offset: UInt64 = 0
        var count = 0
        var buffer: [UInt8] = []
        do {
            let cursor = try StatementRunner.open(statements, in: scope)
            defer { cursor.close() }
            while let row = try cursor.next() {
                if let max = options.maxRows, count >= max {
                    summary.errors.append("\(label): truncated at max rows \(max)")
                    log.log(.warning, "\(label): truncated at \(max) rows (--max-rows)")
                    break
                }
                let value = row.materialized()
                withUnsafeBytes(of: offset.littleEndian) { index.append(contentsOf: $0) }
                buffer.removeAll(keepingCapacity: true)
                JSONWriter.write(value, into: &buffer)
                buffer.append(0x0A)
                offset += UInt64(buffer.count)
                try out.write(contentsOf: buffer)
                if options.csv, case .dict(let d) = value {
                    if csvColumns == nil {
                        csvColumns = d.keys
                        csv.append(Data((d.keys.map(CellText.csvField).joined(separator: ",") + "\n").utf8))
                    }
                    csv.append(Data(((csvColumns ?? []).map { CellText.csvField(CellText.text(d[$0] ?? .null)) }.joined(separator: ",") + "\n").utf8))
                }
                count += 1
                progress?(label, count)
            }
        } catch is QueryCancelled {
            summary.errors.append("\(label): cancelled after \(count) rows")
            log.log(.warning, "\(label): cancelled after \(count) rows")
        } catch {
            summary.errors.append("\(label): \(error)")
            log.log(.error, "\(label): \(error)")
        }
        try out.close()
        let base = "results/" + label.replacingOccurrences(of: "/", with: "%2F")
        guard let input = FileHandle(forReadingAtPath: temporary) else { throw ZipError(message: "cannot read \(temporary)") }
        defer { try? input.close() }
        _ = try addMember(base + ".json") { buffer in
            let data = try input.read(upToCount: buffer.count) ?? Data()
            buffer.replaceSubrange(0..<data.count, with: data)
            return data.count
        }
        try addMember(base + ".json.index", data: index)
        if options.csv { try addMember(base + ".csv", data: csv) }
        summary.rows.append((label, count))
    }

    private func finish(requests: [Value], uploads: ContainerUploads) throws {
        try addMember("requests.json", data: Data(JSONWriter.string(.list(requests), pretty: true).utf8))
        try addMember("uploads.json", data: Data(uploads.records.withLock { $0 }.map { JSONWriter.string($0) + "\n" }.joined().utf8))
        summary.uploads = uploads.records.withLock { $0.count }
        summary.uploadedBytes = uploads.total.withLock { $0 }
        try addMember("log.json", data: Data(log.lines.withLock { $0 }.map { JSONWriter.string($0) + "\n" }.joined().utf8))
        let context = Value.dict(Dict([
            ("start", .timestamp(Timestamp(seconds: started.timeIntervalSince1970))),
            ("end", .timestamp(Timestamp(seconds: Date().timeIntervalSince1970))),
            ("state", .string(summary.state)),
            ("rows", .dict(Dict(summary.rows.map { ($0.source, Value.from($0.count)) }))),
            ("total_rows", .from(summary.rows.reduce(0) { $0 + $1.count })),
            ("uploaded_files", .from(summary.uploads)), ("uploaded_bytes", .int(summary.uploadedBytes)),
            ("errors", .list(summary.errors.map { .string($0) })),
        ]))
        try addMember("collection_context.json", data: Data(JSONWriter.string(context, pretty: true).utf8))
        try writeManifest(complete: summary.state == "finished" || summary.state == "finished with errors")
    }
}

/// The collection's log: every message with its time and level (log.json), also to stderr.
final class CollectionLog: QueryLogger {
    let lines = Mutex<[Value]>([])
    private let echo = StreamLogger(minimum: .warning)

    func log(_ level: LogLevel, _ message: String) {
        let entry = Value.dict(Dict([
            ("time", .timestamp(Timestamp(seconds: Date().timeIntervalSince1970))), ("level", .string(level.rawValue)),
            ("message", .string(message)),
        ]))
        lines.withLock { $0.append(entry) }
        echo.log(level, message)
    }
}

/// upload() inside a collection: files go into the container under uploads/, names sanitised.
final class ContainerUploads: UploadDestination, @unchecked Sendable {
    unowned let collector: Collector
    let limit: Int64?
    let total = Mutex<Int64>(0)
    let records = Mutex<[Value]>([])
    private let lock = NSLock()

    init(collector: Collector, limit: Int64?) {
        self.collector = collector
        self.limit = limit
    }

    func store(name: String, reader: (inout [UInt8]) throws -> Int) throws -> (path: String, size: Int64, sha256: String, md5: String) {
        let parts = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).map(String.init)
        guard !parts.contains(".."), !parts.filter({ !$0.isEmpty && $0 != "." }).isEmpty else {
            throw ZipError(message: "refusing upload name '\(name)': it would escape the container")
        }
        let member = "uploads/" + parts.filter { !$0.isEmpty && $0 != "." }.joined(separator: "/")
        lock.lock()
        defer { lock.unlock() }
        let used = total.withLock { $0 }
        if let limit, used >= limit { throw ZipError(message: "max upload bytes (\(limit)) reached") }
        var md5 = Insecure.MD5()
        var written: Int64 = 0
        let (size, sha) = try collector.addMember(member) { buffer in
            var n = try reader(&buffer)
            if let limit, used + written + Int64(n) > limit { n = Int(max(0, limit - used - written)) }
            if n > 0 { md5.update(data: buffer[0..<n]) }
            written += Int64(n)
            return n
        }
        total.withLock { $0 += Int64(size) }
        let digest = md5.finalize().map { String(format: "%02x", $0) }.joined()
        records.withLock {
            $0.append(.dict(Dict([("Name", .string(name)), ("StoredName", .string(member)), ("Size", .int(Int64(size))), ("Sha256", .string(sha)), ("Md5", .string(digest))])))
        }
        return (member, Int64(size), sha, digest)
    }
}
