import Foundation
import QuarryDetect
import QuarryHost
import Testing
import VQL
@testable import Artifacts

/// trace() into real uploads, and Velociraptor's own diagnostics artifacts (Generic.Client.VQL,
/// Generic.Client.Profile, Generic.Client.Trace) run unchanged with --definitions semantics.
@Suite struct DiagnosticsArtifactTests {
    /// Velociraptor's artifacts in the shared material; the tests that run them skip without it.
    static let sharedArtifacts = packageRoot + "/../shared/conformance/velociraptor-artifacts"
    static var hasSharedArtifacts: Bool { FileManager.default.fileExists(atPath: sharedArtifacts) }

    static func velociraptor(_ text: String, uploads: String? = nil) throws -> (rows: [Value], log: [String]) {
        let repository = ArtifactRepository()
        repository.load(directory: sharedArtifacts)
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        repository.install(into: registry)
        let logger = MemoryLogger()
        let session = Session(registry: registry, logger: logger)
        if let uploads { session.context.setService(UploadService.key, DirectoryUploads(root: uploads) as any UploadDestination) }
        return ((try session.run(text).last ?? nil) ?? [], logger.messages)
    }

    @Test func traceUploadsASnapshot() throws {
        let dir = try BuiltinArtifactTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = try BuiltinArtifactTests.host("SELECT trace() AS T FROM scope()") {
            $0.context.setService(UploadService.key, DirectoryUploads(root: dir) as any UploadDestination)
        }.rows
        let stored = rows.first?.member("T").member("Path").stringValue ?? ""
        #expect(stored.hasPrefix("trace/trace-") && stored.hasSuffix(".json"))
        let text = (try? String(contentsOfFile: dir + "/" + stored, encoding: .utf8)) ?? ""
        let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect((json?["Threads"] as? [Any])?.isEmpty == false)
        #expect((json?["Metrics"] as? [String: Any])?["VmRSSBytes"] != nil)
        #expect(rows.first?.member("T").member("Size").intValue == Int64(text.utf8.count))
    }

    @Test func traceWithoutUploadsWarns() throws {
        let (rows, log) = try BuiltinArtifactTests.host("SELECT trace() AS T FROM scope()")
        #expect(rows.first?.member("T").isNull == true)
        #expect(log.contains { $0.hasPrefix("WARN") && $0.contains("trace()") })
    }

    @Test(.enabled(if: hasSharedArtifacts, "the shared Velociraptor artifacts are absent"))
    func velociraptorClientVQLRunsACommandInIsolation() throws {
        let (rows, log) = try Self.velociraptor("SELECT * FROM Artifact.Generic.Client.VQL(Command='SELECT 6 * 7 AS Answer FROM scope()')")
        #expect(rows.contains { $0.member("Answer").intValue == 42 }, "\(log)")
    }

    @Test(.enabled(if: hasSharedArtifacts, "the shared Velociraptor artifacts are absent"))
    func velociraptorClientProfileSources() throws {
        let (metrics, log) = try Self.velociraptor("SELECT * FROM Artifact.Generic.Client.Profile(source='Metrics')")
        #expect(metrics.contains { $0.member("Line").member("Name").stringValue == "VmRSSBytes" }, "\(log)")
        let memory = try Self.velociraptor("SELECT * FROM Artifact.Generic.Client.Profile(source='Memory')").rows
        #expect(!memory.isEmpty)
        let queries = try Self.velociraptor("SELECT * FROM Artifact.Generic.Client.Profile(source='AllQueries')").rows
        #expect(queries.contains { $0.member("Query").stringValue?.contains("profile(queries=TRUE)") == true })
    }

    @Test(.enabled(if: hasSharedArtifacts, "the shared Velociraptor artifacts are absent"))
    func velociraptorClientTraceUploads() throws {
        let dir = try BuiltinArtifactTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (rows, log) = try Self.velociraptor("SELECT * FROM Artifact.Generic.Client.Trace(FrequencySec=1) LIMIT 1", uploads: dir)
        #expect(rows.first?.member("TraceFile").member("Path").stringValue?.hasPrefix("trace/") == true, "\(log)")
    }
}

/// Velociraptor's Linux.Sys.BashShell, unchanged: its stateful source (shell_session) when the
/// function exists, its execve() source with Stateful=N.
@Suite struct BashShellArtifactTests {
    @Test(.enabled(if: DiagnosticsArtifactTests.hasSharedArtifacts, "the shared Velociraptor artifacts are absent"))
    func velociraptorBashShellKeepsASessionPerFlow() throws {
        let (rows, log) = try DiagnosticsArtifactTests.velociraptor("""
            LET _SessionId <= 'F.TESTSHELL/1'
            SELECT * FROM Artifact.Linux.Sys.BashShell(Command='cd /proc && pwd && echo quarry-$((6*7))', CommandId=7, Timeout=2)
            """)
        #expect(rows.contains { $0.member("CommandId").intValue == 7 }, "the acknowledgement row: \(rows) \(log)")
        let stdout = rows.compactMap { $0.member("Stdout").stringValue }.joined()
        #expect(stdout.contains("/proc\nquarry-42"), "\(rows) \(log)")
        #expect(rows.contains { ($0.member("Command").stringValue ?? "").contains("cd /proc") })
        #expect(log.contains { $0.contains("Started session F.TESTSHELL") }, "\(log)")
    }

    @Test(.enabled(if: DiagnosticsArtifactTests.hasSharedArtifacts, "the shared Velociraptor artifacts are absent"))
    func velociraptorBashShellWithoutStateRunsOneCommand() throws {
        let (rows, log) = try DiagnosticsArtifactTests.velociraptor("SELECT * FROM Artifact.Linux.Sys.BashShell(Command='echo one-shot', Stateful='N')")
        #expect(rows.contains { $0.member("Stdout").stringValue == "one-shot\n" }, "\(rows) \(log)")
    }
}
