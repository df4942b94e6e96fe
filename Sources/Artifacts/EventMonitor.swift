import Foundation
import Synchronization
import VQL

/// Runs event (CLIENT_EVENT) artifacts continuously: every source of every artifact in its own
/// thread and session, rows handed to a sink as they come, until cancelled. Used by `quarry
/// monitor`, the agent's monitoring table and the server's (SERVER_EVENT artifacts), which hands
/// each session its services through `prepare`.
public final class EventMonitor: @unchecked Sendable {
    let repository: ArtifactRepository
    let registry: Registry
    let parameters: [String: String]
    let cancellation: CancellationFlag
    let prepare: (@Sendable (Session) -> Void)?
    /// Called first on each source's own thread (the agent's watchdog counts that thread's CPU).
    let onSourceThread: (@Sendable () -> Void)?
    /// What every session sees besides the parameters (`config`, see `ClientScope`).
    let variables: [String: Value]

    public init(
        repository: ArtifactRepository, registry: Registry, parameters: [String: String], cancellation: CancellationFlag,
        prepare: (@Sendable (Session) -> Void)? = nil, onSourceThread: (@Sendable () -> Void)? = nil,
        variables: [String: Value] = [ClientScope.variable: ClientScope.config()]
    ) {
        self.variables = variables
        self.repository = repository
        self.registry = registry
        self.parameters = parameters
        self.cancellation = cancellation
        self.prepare = prepare
        self.onSourceThread = onSourceThread
    }

    /// A source's rows: its label ("Artifact" or "Artifact/Source"), then each row.
    public typealias Sink = @Sendable (_ label: String, _ row: Value) -> Void

    /// Compiles the artifacts (errors thrown before anything runs), then runs every source until
    /// all end or `cancellation` is set. Returns the problems met while running.
    public func run(_ names: [String], logger: QueryLogger, sink: @escaping Sink) throws -> [String] {
        var compiled: [CompiledArtifact] = []
        for name in names {
            guard let artifact = repository.artifact(named: name) else { throw ArtifactProblem(file: name, line: 1, column: 1, message: "no artifact \(name)", isWarning: false) }
            if artifact.type != .clientEvent && artifact.type != .serverEvent {
                logger.log(.warning, "\(name) is a \(artifact.type.rawValue) artifact, not an event artifact: it runs once")
            }
            let own = parameters.filter { key, _ in artifact.parameters.contains { $0.name == key } }
            compiled.append(try ArtifactCompiler.compile(artifact, parameters: own, repository: repository))
        }
        let problems = ProblemList()
        let group = DispatchGroup()
        for artifact in compiled {
            let session = Session(registry: registry, logger: logger, cancellation: cancellation, variables: variables)
            prepare?(session)
            let env = session.root.child()
            do {
                guard try ArtifactPlugin.holds(artifact.precondition, prelude: artifact.prelude, in: env.child()) else {
                    logger.log(.info, "\(artifact.name): precondition false, not run")
                    continue
                }
            } catch {
                problems.append("\(artifact.name): \(error)")
                continue
            }
            for source in artifact.sources {
                // Each source in its own scope and thread: event sources never end.
                let sourceSession = Session(registry: registry, logger: logger, cancellation: cancellation, variables: variables)
                prepare?(sourceSession)
                let box = UncheckedBox((artifact, source, sourceSession))
                let onSourceThread = self.onSourceThread
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    onSourceThread?()
                    let (artifact, source, session) = box.value
                    do {
                        let plan = try SourcePlan(artifact, in: session.root.child())
                        guard let step = try plan.prepare(source) else {
                            logger.log(.info, "\(artifact.name)/\(source.name ?? ""): source precondition false, not run")
                            return
                        }
                        let cursor = try StatementRunner.open(step.statements, in: step.scope)
                        defer { cursor.close() }
                        while let row = try cursor.next() { sink(step.label, row.materialized()) }
                    } catch is QueryCancelled {
                    } catch {
                        let message = "\(artifact.name)\(source.name.map { "/" + $0 } ?? ""): \(error)"
                        logger.log(.error, message)
                        problems.append(message)
                    }
                }
            }
        }
        group.wait()
        return problems.all
    }
}

/// Problems gathered from the source threads.
final class ProblemList: Sendable {
    private let items = Mutex<[String]>([])
    func append(_ problem: String) { items.withLock { $0.append(problem) } }
    var all: [String] { items.withLock { $0 } }
}

/// Hands a value to exactly one other thread.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Event rows as JSON lines, one file per source and UTC day:
/// `DIRECTORY/<Artifact>[/<Source>]/YYYY-MM-DD.jsonl`, created 0600 (folders 0700) from the first
/// syscall, appended row by row; a new day starts a new file.
public final class DailyJSONLWriter: @unchecked Sendable {
    private let directory: String
    private let lock = NSLock()
    private var open: [String: (day: String, fd: Int32)] = [:]
    private let clock: @Sendable () -> Date

    public init(directory: String, clock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.directory = directory
        self.clock = clock
        try Self.makeFolder(directory)
    }

    deinit { for entry in open.values { close(entry.fd) } }

    static func makeFolder(_ path: String) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw ArtifactProblem(file: path, line: 1, column: 1, message: "\(path) is not a folder", isWarning: false) }
            return
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    static func day(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%04d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
    }

    /// The file a label's rows go to today.
    public func path(for label: String, at date: Date) -> String {
        let parts = label.split(separator: "/").map { $0.replacingOccurrences(of: "..", with: "_") }
        return ([directory] + parts + [Self.day(date) + ".jsonl"]).joined(separator: "/")
    }

    public func write(label: String, row: Value) throws {
        var line: [UInt8] = []
        JSONWriter.write(row, into: &line)
        line.append(0x0A)
        let now = clock()
        let day = Self.day(now)
        try lock.withLock {
            var fd: Int32
            if let entry = open[label], entry.day == day {
                fd = entry.fd
            } else {
                if let entry = open[label] { close(entry.fd) }
                let path = path(for: label, at: now)
                try Self.makeFolder((path as NSString).deletingLastPathComponent)
                fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
                guard fd >= 0 else {
                    throw ArtifactProblem(file: path, line: 1, column: 1, message: "cannot write \(path): \(String(cString: strerror(errno)))", isWarning: false)
                }
                open[label] = (day, fd)
            }
            var written = 0
            while written < line.count {
                let n = line[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                guard n > 0 else {
                    if errno == EINTR { continue }
                    throw ArtifactProblem(file: label, line: 1, column: 1, message: "write failed: \(String(cString: strerror(errno)))", isWarning: false)
                }
                written += n
            }
        }
    }
}
