import Crypto
import Foundation
import PrivateFiles
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
    /// A throttle the caller keeps, used instead of one made from `cpuLimit` (the fleet agent's
    /// watchdog lowers it while the collection runs).
    public var throttle: CPUThrottle?
    /// How often rows reach the container while a source runs.
    public var chunks = ChunkPolicy()
    /// The container's mode: private unless asked otherwise.
    public var containerMode: mode_t = PrivateFile.privateMode
    /// The flow this collection serves, visible to its queries as `_SessionId` (Velociraptor's
    /// name; Linux.Sys.BashShell keys its shell session on it).
    public var sessionId: String?
    /// Further variables the queries see; `config` (`ClientScope`) is set to this process's own
    /// when the caller gives none.
    public var variables: [String: Value] = [:]
    public init() {}
}

/// Something the collection just wrote to the container, for a consumer that forwards results while
/// the collection runs (the agent sends them to the server at once).
public enum CollectionEvent: Sendable {
    /// A chunk of one source's rows (JSON object texts), now in the container.
    case rows(artifact: String, source: String, rows: [String])
    /// An uploaded file, now in the container: its bytes are at `offset` in the container file.
    case upload(name: String, member: String, size: Int64, sha256: String, md5: String, offset: UInt64)
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
/// The container is valid after every member, and rows reach it as the collection goes (chunks, see
/// `ContainerLayout`), so an interrupted collection keeps everything up to its last chunk. Rows wait
/// in memory, never in a spill file; the container is created private (0600 by default).
public final class Collector: @unchecked Sendable {
    let repository: ArtifactRepository
    let registry: Registry
    let options: CollectionOptions
    let cancellation: CancellationFlag
    let zip: ZipWriter
    /// Guards the container, its member list and the manifest (the flusher thread writes too).
    private let zipLock = NSLock()
    private var members: [(name: String, size: UInt64, sha256: String)] = []
    private var summary: CollectionSummary
    private let log = CollectionLog()
    private let started = Date()
    /// The source being collected, for the flusher.
    private let current = Mutex<ResultChunks?>(nil)
    /// The state the manifest records (under `zipLock`).
    private var manifestState = "running"
    /// Called with (source, rows so far) as rows arrive, for progress on a terminal.
    public var progress: ((String, Int) -> Void)?
    /// Called after each chunk of rows (in order) and each upload reaches the container, from the
    /// collecting thread or the flusher's (so it must be thread-safe). It may block to slow the
    /// collection down.
    public var onEvent: ((CollectionEvent) -> Void)?

    public init(repository: ArtifactRepository, registry: Registry, output: String, options: CollectionOptions, cancellation: CancellationFlag) throws {
        self.repository = repository
        self.registry = registry
        self.options = options
        self.cancellation = cancellation
        self.zip = try ZipWriter(path: output, mode: options.containerMode)
        self.summary = CollectionSummary(output: output)
        try writeManifest(complete: false)
    }

    /// The collection's log lines so far (JSON object texts).
    public var logLines: [String] { log.lines.withLock { $0 }.map { JSONWriter.string($0) } }

    /// Writes the manifest as the container's trailing member (under `zipLock`, or before any other thread runs).
    private func writeManifest(complete: Bool) throws {
        let manifest = Value.dict(Dict([
            ("tool", .string("quarry")), ("complete", .bool(complete)), ("state", .string(manifestState)),
            ("members", .list(members.map { .dict(Dict([("name", .string($0.name)), ("size", .int(Int64($0.size))), ("sha256", .string($0.sha256))])) })),
        ]))
        try zip.setTrailer(name: "quarry_manifest.json", data: Data(JSONWriter.string(manifest, pretty: true).utf8))
    }

    /// Adds a member, hashing it on the way, and refreshes the manifest. Returns its size, SHA-256
    /// and where its bytes start in the container file.
    func addMember(_ name: String, reader: (inout [UInt8]) throws -> Int) throws -> (size: UInt64, sha256: String, offset: UInt64) {
        try zipLock.withLock {
            var sha = SHA256()
            let size = try zip.add(name: name) { buffer in
                let n = try reader(&buffer)
                if n > 0 { sha.update(data: buffer[0..<n]) }
                return n
            }
            let digest = sha.finalize().map { String(format: "%02x", $0) }.joined()
            members.append((name, size, digest))
            let offset = zip.lastMemberDataOffset
            try writeManifest(complete: false)
            return (size, digest, offset)
        }
    }

    func addMember(_ name: String, data: Data) throws {
        _ = try addMember(name, reader: ZipWriter.reader(data))
    }

    /// Writes the source's buffered rows as its next chunk and tells `onEvent`.
    private func flush(_ chunks: ResultChunks, final: Bool) throws {
        try chunks.flushLock.withLock {
            guard let chunk = chunks.take(final: final) else { return }
            try addMember(chunk.rowsMember, data: Data(chunk.json))
            try addMember(chunk.rowsMember + ".index", data: Data(chunk.index))
            if let csv = chunk.csv { try addMember(String(chunk.rowsMember.dropLast(".json".count)) + ".csv", data: Data(csv)) }
            if let onEvent, chunk.rows > 0 {
                let rows = chunk.json.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
                onEvent(.rows(artifact: chunks.artifact, source: chunks.source, rows: rows))
            }
        }
    }

    /// Flushes the running source's rows when they have waited long enough (a timer calls it).
    private func flushIfDue() {
        guard let chunks = current.withLock({ $0 }) else { return }
        let interval = options.chunks.interval(elapsed: Date().timeIntervalSince(started))
        guard chunks.due(now: Date(), interval: interval) else { return }
        do {
            try flush(chunks, final: false)
        } catch {
            chunks.failure = error
        }
    }

    /// Runs every artifact; the container is finished (or marked cancelled/incomplete) on return.
    public func collect(_ names: [String]) throws -> CollectionSummary {
        var variables = options.variables
        if let id = options.sessionId { variables["_SessionId"] = .string(id) }
        if variables[ClientScope.variable] == nil { variables[ClientScope.variable] = ClientScope.config() }
        let session = Session(registry: registry, logger: log, cancellation: cancellation, variables: variables)
        // What the queries left running (shell sessions, temporary files) ends with the collection.
        defer { session.context.finish() }
        if let throttle = options.throttle {
            session.context.throttle = throttle
        } else if let limit = options.cpuLimit {
            session.context.throttle = CPUThrottle(percent: limit)
        }
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
        let flusher = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "quarry.collector.flush"))
        flusher.schedule(deadline: .now() + 0.25, repeating: 0.25)
        flusher.setEventHandler { [weak self] in self?.flushIfDue() }
        flusher.resume()
        defer { flusher.cancel() }
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
        guard try ArtifactPlugin.holds(compiled.precondition, prelude: compiled.prelude, in: env.child()) else {
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
            try runSource(
                ResultChunks(label: step.label, artifact: compiled.name, source: source.name ?? "", csv: options.csv),
                statements: step.statements, scope: step.scope)
        }
    }

    /// Runs one source, its rows reaching the container in chunks as they come.
    private func runSource(_ chunks: ResultChunks, statements: [Statement], scope: Env) throws {
        let label = chunks.label
        current.withLock { $0 = chunks }
        defer { current.withLock { $0 = nil } }
        var count = 0
        do {
            let cursor = try StatementRunner.open(statements, in: scope)
            defer { cursor.close() }
            while let row = try cursor.next() {
                if let max = options.maxRows, count >= max {
                    summary.errors.append("\(label): truncated at max rows \(max)")
                    log.log(.warning, "\(label): truncated at \(max) rows (--max-rows)")
                    break
                }
                if let failure = chunks.failure { throw failure }
                if chunks.append(row.materialized(), policy: options.chunks) { try flush(chunks, final: false) }
                count += 1
                progress?(label, count)
            }
        } catch is QueryCancelled {
            summary.errors.append("\(label): cancelled after \(count) rows")
            log.log(.warning, "\(label): cancelled after \(count) rows")
        } catch let error as ZipError {
            throw error
        } catch {
            summary.errors.append("\(label): \(error)")
            log.log(.error, "\(label): \(error)")
        }
        try flush(chunks, final: true)
        if let failure = chunks.failure { throw failure }
        summary.rows.append((label, count))
    }

    private func finish(requests: [Value], uploads: ContainerUploads) throws {
        // Members are written by this thread only from here (the flusher has nothing left).
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
        let complete = summary.state == "finished" || summary.state == "finished with errors"
        try zipLock.withLock {
            manifestState = summary.state
            try writeManifest(complete: complete)
        }
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
        let (size, sha, offset) = try collector.addMember(member) { buffer in
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
        collector.onEvent?(.upload(name: name, member: member, size: Int64(size), sha256: sha, md5: digest, offset: offset))
        return (member, Int64(size), sha, digest)
    }
}
