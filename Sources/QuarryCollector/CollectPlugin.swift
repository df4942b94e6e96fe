import Artifacts
import Foundation
import PrivateFiles
import VQL

/// `collect()`: Velociraptor's plugin for collecting artifacts into a container from VQL — what
/// `quarry artifacts collect --output` does, inside a query (an artifact that packages its own
/// evidence, a server job that prepares a triage container). One row: the container's path.
public enum CollectPlugin {
    public static func declaration(repository: ArtifactRepository) -> PluginDeclaration {
        PluginDeclaration(
            name: "collect",
            summary: "Collects artifacts into a container (Velociraptor's layout, 0600) and yields one row: Container, its path. With password=, the container is sealed (metadata.json + an AES-256 data.zip that 7-Zip opens).",
            arguments: [
                ArgumentSpec("artifacts", .stringList, required: true, "The artifacts to collect."),
                ArgumentSpec("output", .string, "The container to write (default: a new file in the temporary folder)."),
                ArgumentSpec("args", .any, "Parameters: a dict of NAME=value, or of artifact name → dict of its parameters."),
                ArgumentSpec("password", .string, "Seal the container with this password."),
                ArgumentSpec("format", .string, "jsonl (default) or csv (a CSV beside each JSON result); csv_only is treated as csv."),
                ArgumentSpec("timeout", .float, "Seconds the whole collection may take."),
                ArgumentSpec("cpu_limit", .float, "Percent of one core the collection may use."),
                ArgumentSpec("artifact_definitions", .any, "Accepted for compatibility (definitions come from the repository)."),
                ArgumentSpec("level", .int, "Accepted for compatibility (members are deflated)."),
                ArgumentSpec("report", .string, "Accepted for compatibility (ignored, as in Velociraptor)."),
                ArgumentSpec("template", .string, "Accepted for compatibility (ignored)."),
                ArgumentSpec("ops_per_sec", .int, "Accepted for compatibility (ignored)."),
                ArgumentSpec("iops_limit", .float, "Accepted for compatibility (ignored)."),
                ArgumentSpec("progress_timeout", .float, "Accepted for compatibility (ignored)."),
                ArgumentSpec("metadata", .query, "Accepted for compatibility (ignored)."),
                ArgumentSpec("concurrency", .int, "Accepted for compatibility (artifacts are collected one after another)."),
                ArgumentSpec("remapping", .string, "Accepted for compatibility (not supported: refused when given)."),
            ],
            columns: [ColumnSpec("Container", .string, "The container's path.")],
            examples: ["SELECT Container FROM collect(artifacts='Linux.Sys.Users', output=tempfile(extension='.zip'))"],
            permissions: [.filesystemWrite]
        ) { ctx in
            guard let names = ctx.strings("artifacts"), !names.isEmpty else { throw CollectFailure("collect(): artifacts= names nothing") }
            if ctx.string("remapping").map({ !$0.isEmpty }) ?? false { throw CollectFailure("collect(): remapping= is not supported") }
            for name in names where repository.artifact(named: name) == nil {
                var message = "collect(): no artifact \(name)"
                if let suggestion = NameSuggester.closest(to: name, in: repository.names) { message += " (did you mean '\(suggestion)'?)" }
                throw CollectFailure(message)
            }
            var options = CollectionOptions()
            options.parameters = parameters(ctx.value("args"), names: names)
            options.timeout = ctx.double("timeout")
            options.cpuLimit = ctx.double("cpu_limit")
            options.csv = (ctx.string("format") ?? "jsonl").hasPrefix("csv")
            let output = ctx.string("output") ?? NSTemporaryDirectory() + "collection-\(UInt32.random(in: 0...UInt32.max)).zip"
            let password = ctx.string("password")
            let plain = password == nil ? output : output + ".plain-\(getpid())"
            defer { if password != nil { unlink(plain) } }
            let collector = try Collector(repository: repository, registry: ctx.context.registry, output: plain, options: options,
                                          cancellation: ctx.context.cancellation)
            let summary = try collector.collect(names)
            for (source, count) in summary.rows { ctx.log(.info, "collect(): \(source): \(count) rows") }
            for error in summary.errors { ctx.log(.warning, "collect(): \(error)") }
            if let password {
                let host = ProcessInfo.processInfo.hostName
                if let (metadata, key) = try SealedContainer.keying(.password(password), hostname: host, created: Date()) {
                    try SealedContainer.seal(plainZip: plain, output: output, metadata: metadata, password: key)
                }
            }
            return ArrayCursor([.dict(Dict([("Container", .string(output))]))])
        }
    }

    /// `args=`: flat NAME=value pairs, or artifact name → dict of its parameters (Velociraptor's
    /// offline collector passes the latter), as one parameter table.
    static func parameters(_ value: Value?, names: [String]) -> [String: String] {
        guard case .dict(let args)? = value?.reduced().materialized() else { return [:] }
        var result: [String: String] = [:]
        for (key, value) in args.pairs {
            if names.contains(key), case .dict(let inner) = value {
                for (name, parameter) in inner.pairs { result[name] = text(parameter) }
            } else {
                result[key] = text(value)
            }
        }
        return result
    }

    static func text(_ value: Value) -> String {
        switch value {
        case .string(let s): return s
        case .bool(let b): return b ? "Y" : "N"
        case .null: return ""
        default: return JSONWriter.string(value)
        }
    }
}

/// Why collect() could not start.
struct CollectFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
