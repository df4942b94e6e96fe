import ArgumentParser
import Artifacts
import Foundation
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
    @OptionGroup var definitions: DefinitionOptions

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
        options.timeout = timeout
        options.maxRows = maxRows
        options.maxUploadBytes = maxUploadBytes
        options.csv = format == "csv"
        options.cpuLimit = cpuLimit
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
            for member in reader.members where member.name.hasPrefix("results/") && member.name.hasSuffix(".json") {
                FileHandle.standardOutput.write(try reader.read(member.name))
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
    static let configuration = CommandConfiguration(commandName: "collection", abstract: "Inspect collection containers.", subcommands: [ShowCollection.self])
}

struct ShowCollection: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a container's context and a table per source.")
    @Argument(help: "The container.") var path: String
    @Option(help: "Rows to show per source.") var rows: Int = 20

    func run() throws {
        let reader = try ZipReader(path: path)
        if let context = try? reader.read("collection_context.json") { print(String(decoding: context, as: UTF8.self)) }
        if let manifest = try? JSONParser.parse(bytes: [UInt8](reader.read("quarry_manifest.json"))) {
            print("manifest: complete=\(manifest.member("complete").isTruthy), \(manifest.member("members").listElements?.count ?? 0) members")
        }
        for member in reader.members where member.name.hasPrefix("results/") && member.name.hasSuffix(".json") {
            let name = member.name.dropFirst("results/".count).dropLast(".json".count).replacingOccurrences(of: "%2F", with: "/")
            print("\n\(name)")
            let lines = try reader.read(member.name).split(separator: 0x0A).prefix(rows)
            let values = lines.compactMap { try? JSONParser.parse(bytes: [UInt8]($0)) }
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
            let member = "results/" + label.replacingOccurrences(of: "/", with: "%2F") + ".json"
            guard let data = try? reader.read(member) else {
                let available = reader.members.map(\.name).filter { $0.hasSuffix(".json") && $0.hasPrefix("results/") }
                ctx.log(.error, "source(): no results for \(label) in the container (has: \(available.joined(separator: ", ")))")
                return ArrayCursor([])
            }
            return ArrayCursor(data.split(separator: 0x0A).compactMap { try? JSONParser.parse(bytes: [UInt8]($0)) })
        }
    }
}
