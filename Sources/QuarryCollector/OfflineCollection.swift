import Artifacts
import Foundation
import PrivateFiles
import VQL

/// Runs a collector spec on this host: collects the artifacts into a container named after the
/// host and the time, beside the collector (or in the spec's folder), and encrypts it when the
/// spec says so. An encrypted collection is first written in clear to a hidden private file in the
/// same folder (this host's own data, readable by root only), sealed, then that file is removed.
public struct OfflineCollection {
    public let spec: CollectorSpec
    /// The collector file (for the default output folder).
    public let collectorPath: String
    /// Overrides the spec's output folder (the on-site user's `--output-dir`).
    public var outputDirectory: String?
    /// Builds the VQL registry with every plugin (the executable knows the full list).
    public let makeRegistry: @Sendable (ArtifactRepository) -> Registry

    public init(spec: CollectorSpec, collectorPath: String, makeRegistry: @escaping @Sendable (ArtifactRepository) -> Registry) {
        self.spec = spec
        self.collectorPath = collectorPath
        self.makeRegistry = makeRegistry
    }

    /// The outcome: where the container is and what the collection did.
    public struct Outcome: Sendable {
        public var container: String
        public var summary: CollectionSummary
        public var encrypted: Bool
    }

    /// The repository the spec's artifacts come from: the built-in set plus the spec's own definitions.
    public func repository() throws -> ArtifactRepository {
        let repository = ArtifactRepository.builtin()
        for (i, text) in spec.definitions.enumerated() where !repository.add(text: text, file: "collector-definition-\(i + 1).yaml") {
            throw SealedContainer.SealError("definition \(i + 1) built into the collector does not load: \(repository.problems.map(\.description).joined(separator: "; "))")
        }
        for name in spec.artifacts where repository.artifact(named: name) == nil {
            throw SealedContainer.SealError("the collector names an artifact this quarry does not have: \(name)")
        }
        return repository
    }

    /// Collects; `progress` sees (source, rows so far); `cancellation` stops it early (the container
    /// is still finished, marked cancelled).
    /// `whileClear` sees the clear container once it is complete, before it is sealed (and, when
    /// the spec encrypts, removed): the upload to the server goes from there.
    public func run(cancellation: CancellationFlag, progress: ((String, Int) -> Void)? = nil, whileClear: ((String) -> Void)? = nil) throws -> Outcome {
        let repository = try repository()
        let folder = outputDirectory ?? spec.outputDirectory ?? (collectorPath as NSString).deletingLastPathComponent
        let directory = folder.isEmpty ? "." : folder
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let host = ProcessInfo.processInfo.hostName
        let started = Date()
        let final = directory + "/" + CollectorSpec.containerName(hostname: host, date: started)
        let encrypted = spec.encryption != .none
        let clear = encrypted ? directory + "/.clear-\(getpid())-" + (final as NSString).lastPathComponent : final
        defer { if encrypted { unlink(clear) } }

        var options = CollectionOptions()
        options.parameters = spec.parameters
        options.timeout = spec.timeout
        options.cpuLimit = spec.cpuLimit
        options.maxRows = spec.maxRows
        options.maxUploadBytes = spec.maxUploadBytes
        let collector = try Collector(
            repository: repository, registry: makeRegistry(repository), output: clear, options: options, cancellation: cancellation)
        collector.progress = progress
        var summary = try collector.collect(spec.artifacts)
        summary.output = final
        whileClear?(clear)
        guard encrypted else { return Outcome(container: final, summary: summary, encrypted: false) }

        guard let (metadata, password) = try SealedContainer.keying(spec.encryption, hostname: host, created: started) else {
            return Outcome(container: final, summary: summary, encrypted: false)
        }
        try SealedContainer.seal(plainZip: clear, output: final, metadata: metadata, password: password)
        return Outcome(container: final, summary: summary, encrypted: true)
    }
}
