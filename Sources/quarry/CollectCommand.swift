import ArgumentParser
import Artifacts
import Foundation
import QuarryCollector
import VQL

/// `quarry artifacts collect NAME…`: runs artifacts on this host into one zip container.
struct CollectArtifacts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect", abstract: "Collect artifacts on this host into one zip container.",
        discussion: "Example: quarry artifacts collect Linux.Sys.Users Linux.Sys.Pslist --output triage.zip")

    @Argument(help: "Artifact names.") var names: [String]
    @Option(name: .customLong("args"), help: "Parameter Name=Value (repeatable; applies to every artifact that declares it).") var arguments: [String] = []
    @Option(help: "The container to write.") var output: String = "collection.zip"
    @Option(help: "json (default), csv (also write CSV beside each result) or jsonl (also print rows to stdout).") var format: String = "json"
    @Option(help: "Cancel the collection after this many seconds.") var timeout: Double?
    @Option(help: "At most this many rows per source.") var maxRows: Int?
    @Option(help: "At most this many bytes of uploads.") var maxUploadBytes: Int64?
    @Option(help: "Percent of one CPU core the collection may use (glob, hash, yara pace themselves).") var cpuLimit: Double?
    @Option(help: "The container's file mode in octal (default 600: only its owner may read the evidence).") var outputMode: String = "600"
    @OptionGroup var definitions: DefinitionOptions
    @OptionGroup var clientScope: ClientScopeOptions

    func run() throws {
        let repository = definitions.repository()
        for name in names where repository.artifact(named: name) == nil {
            let hint = NameSuggester.closest(to: name, in: repository.names).map { " (did you mean \($0)?)" } ?? ""
            throw ValidationError("no artifact named \(name)\(hint)")
        }
        var options = CollectionOptions()
        for (key, value) in try keyValues(arguments, option: "--args") {
            guard names.contains(where: { repository.artifact(named: $0)?.parameters.contains { $0.name == key } ?? false }) else {
                throw ValidationError("no artifact being collected has a parameter \(key)")
            }
            options.parameters[key] = value
        }
        options.variables[ClientScope.variable] = try clientScope.config()
        options.timeout = timeout
        options.maxRows = maxRows
        options.maxUploadBytes = maxUploadBytes
        options.csv = format == "csv"
        options.cpuLimit = cpuLimit
        guard let mode = mode_t(outputMode, radix: 8), mode <= 0o777 else {
            throw ValidationError("--output-mode \(outputMode): expected an octal file mode such as 600 or 640")
        }
        options.containerMode = mode
        let cancellation = CancellationFlag()
        let interrupt = InterruptHandler(cancellation: cancellation)
        defer { interrupt.stop() }
        let collector = try Collector(
            repository: repository, registry: QuarryRegistry.make(repository: repository), output: output, options: options,
            cancellation: cancellation)
        let tty = isatty(STDERR_FILENO) != 0
        if tty {
            collector.progress = { source, rows in
                if rows % 100 == 1 { FileHandle.standardError.write(Data("\r\(source): \(rows) rows\u{1B}[K".utf8)) }
            }
        }
        let summary = try collector.collect(names)
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if format == "jsonl" {
            let reader = try ZipReader(path: output)
            for source in ContainerLayout.sources(reader) {
                try ContainerLayout.forEachRow(reader, source) { row in
                    FileHandle.standardOutput.write(Data(row) + Data([0x0A]))
                    return true
                }
            }
            return
        }
        print("\(summary.output): \(summary.state)")
        for (source, count) in summary.rows { print("  \(source): \(count) rows") }
        if summary.uploads > 0 { print("  uploads: \(summary.uploads) files, \(summary.uploadedBytes) bytes") }
        for error in summary.errors { print("  problem: \(error)") }
    }
}

/// `quarry collection show out.zip`: the manifest and a table per source.
struct CollectionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collection", abstract: "Inspect collection containers.", subcommands: [ShowCollection.self, DecryptCollection.self, EncryptCollection.self, ImportCollection.self])
}

struct ShowCollection: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a container's context and a table per source.")
    @Argument(help: "The container.") var path: String
    @Option(help: "Rows to show per source.") var rows: Int = 20

    func run() throws {
        if let sealed = try SealedContainer.metadata(path: path) {
            print("\(path): encrypted (\(sealed.summary))")
            if let fingerprint = sealed.CertificateSHA256 { print("  opens with the private key of the certificate whose SHA-256 is \(fingerprint)") }
            print("  decrypt it first: quarry collection decrypt \(path) \(sealed.Scheme == "X509" ? "--key KEY.pem" : "--password-stdin") --output clear.zip")
            return
        }
        let reader = try ZipReader(path: path)
        if let context = try? reader.read("collection_context.json") { print(String(decoding: context, as: UTF8.self)) }
        if let manifest = try? JSONParser.parse(bytes: [UInt8](reader.read("quarry_manifest.json"))) {
            print("manifest: complete=\(manifest.member("complete").isTruthy), \(manifest.member("members").listElements?.count ?? 0) members")
        }
        for source in ContainerLayout.sources(reader) {
            print("\n\(source.label)\(source.members.count > 1 ? " (\(source.members.count) parts)" : "")")
            var values: [Value] = []
            try ContainerLayout.forEachRow(reader, source) { row in
                if let value = try? JSONParser.parse(bytes: Array(row)) { values.append(value) }
                return values.count < rows
            }
            print(TableRenderer.render(values, width: RowWriter.detectTerminalWidth()), terminator: "")
        }
    }
}

/// `source(artifact=, source=)` over a container given with `quarry query --collection`.
enum CollectionSource {
    static func plugin(reader: ZipReader) -> PluginDeclaration {
        PluginDeclaration(
            name: "source", summary: "Rows an artifact source collected into the container given with --collection.",
            arguments: [ArgumentSpec("artifact", .string, required: true, "The artifact name."), ArgumentSpec("source", .string, "The source name.")]
        ) { ctx in
            guard let artifact = ctx.string("artifact") else { return ArrayCursor([]) }
            let label = artifact + (ctx.string("source").map { "/" + $0 } ?? "")
            let sources = ContainerLayout.sources(reader)
            guard let source = sources.first(where: { $0.label == label }) else {
                ctx.log(.error, "source(): no results for \(label) in the container (has: \(sources.map(\.label).joined(separator: ", ")))")
                return ArrayCursor([])
            }
            return ContainerRowCursor(reader: reader, source: source, ctx: ctx)
        }
    }
}

/// The rows of one source in a container, parsed one at a time as the query pulls them (the parts
/// are read from the file in pieces, never whole).
final class ContainerRowCursor: RowCursor {
    private let reader: ZipReader
    private let members: [String]
    private let ctx: CallContext
    private var member = 0
    private var stream: MemberStream?
    private var carry: [UInt8] = []
    private var start = 0

    init(reader: ZipReader, source: ContainerLayout.Source, ctx: CallContext) {
        self.reader = reader
        self.members = source.members
        self.ctx = ctx
    }

    func next() throws -> Value? {
        while true {
            if let newline = carry[start...].firstIndex(of: 0x0A) {
                let line = carry[start..<newline]
                start = newline + 1
                if line.isEmpty { continue }
                do {
                    return try JSONParser.parse(bytes: Array(line))
                } catch {
                    ctx.log(.warning, "source(): skipping a row that is not JSON: \(error)")
                    continue
                }
            }
            carry.removeSubrange(0..<start)
            start = 0
            if let chunk = try readMore() {
                carry.append(contentsOf: chunk)
                continue
            }
            // The last row of a part may lack its newline.
            if !carry.isEmpty {
                carry.append(0x0A)
                continue
            }
            guard member < members.count else { return nil }
            stream = try reader.open(members[member])
            member += 1
        }
    }

    private func readMore() throws -> Data? {
        guard let stream else { return nil }
        if let chunk = try stream.read(max: 1 << 20) { return chunk }
        self.stream = nil
        return nil
    }

    func close() { stream = nil }
}
