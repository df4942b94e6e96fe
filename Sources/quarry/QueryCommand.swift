import ArgumentParser
import Fleet
import Foundation
import Artifacts
import QuarryDetect
import VQL

/// `quarry query 'VQL'`: runs a text of statements in one scope and streams the rows.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run VQL statements and print their rows.",
        discussion: """
            The text may hold several statements; they share one scope. With --format json each SELECT \
            prints one JSON array, in order; LET prints nothing. Examples:
              quarry query "SELECT * FROM info()"
              echo "SELECT _value FROM range(end=3)" | quarry query --format jsonl
            """
    )

    @Argument(help: "The VQL text (omit to read --file or standard input).")
    var vql: String?

    @Option(name: .shortAndLong, help: "Read the VQL text from this file.")
    var file: String?

    @Option(help: "table, json, jsonl or csv (default: table on a terminal, json otherwise).")
    var format: String?

    @Option(name: .customLong("env"), help: "Preset a scope variable, NAME=VALUE (repeatable).")
    var environment: [String] = []

    @OptionGroup var definitions: DefinitionOptions

    @OptionGroup var clientScope: ClientScopeOptions

    @Option(help: "Write the query log to this file instead of standard error.")
    var log: String?

    @Option(help: "Folder where upload() stores files (created when missing).")
    var uploadDir: String?

    @Option(help: "Run file plugins against this folder as the root (a mounted image or extracted tree).")
    var root: String?

    @Option(help: "Query the results in this collection container with source(artifact=, source=).")
    var collection: String?

    @Flag(help: "Only parse and bind the text: report syntax errors and unknown names, run nothing.")
    var check = false

    @Flag(help: "Add the fleet server's plugins and functions (clients(), flows(), hunts(), collect_client(), hunt(), label()…).")
    var server = false

    @Option(help: "The analyst's api.yaml for --server.")
    var apiConfig: String = NSHomeDirectory() + "/.quarry/api.yaml"

    @Flag(help: "Also log debug messages (e.g. 'Symbol not found').")
    var verbose = false

    func run() throws {
        let text = try readText()
        let outputFormat: OutputFormat
        if let format {
            guard let f = OutputFormat(rawValue: format) else {
                throw ValidationError("unknown format '\(format)' (expected table, json, jsonl or csv)")
            }
            outputFormat = f
        } else {
            outputFormat = isatty(STDOUT_FILENO) != 0 ? .table : .json
        }
        var variables = try keyValues(environment, option: "--env").mapValues { Value.string($0) }
        if variables[ClientScope.variable] == nil { variables[ClientScope.variable] = try clientScope.config() }
        let statements: [Statement]
        do {
            statements = try Parser.parse(text)
        } catch {
            printError(error.render(source: text))
            throw ExitCode(1)
        }
        let registry = QuarryRegistry.make(repository: definitions.repository())
        if let collection {
            registry.add(plugins: [CollectionSource.plugin(reader: try ZipReader(path: collection))])
        }
        var api: APIClient?
        if server {
            registry.add(plugins: ServerPlugins.plugins, functions: ServerPlugins.functions, accessors: ServerPlugins.accessors)
            if !check { api = try APIClient(config: ConfigFile.load(APIConfig.self, from: apiConfig)) }
        }
        let problems = Binder.check(statements, registry: registry, knownNames: Set(variables.keys))
        if check {
            for problem in problems { printError("warning: " + problem.render(source: text)) }
            print("ok: \(statements.count) statements parse")
            return
        }
        if !problems.isEmpty {
            for problem in problems { printError(problem.render(source: text)) }
            throw ExitCode(1)
        }
        let logger: QueryLogger
        if let log {
            guard FileManager.default.createFile(atPath: log, contents: nil), let handle = FileHandle(forWritingAtPath: log) else {
                throw ValidationError("cannot write the log file '\(log)'")
            }
            logger = StreamLogger(handle: handle, minimum: verbose ? .debug : .info)
        } else {
            logger = StreamLogger(minimum: verbose ? .debug : .info)
        }
        let cancellation = CancellationFlag()
        let interrupt = InterruptHandler(cancellation: cancellation)
        defer { interrupt.stop() }
        let session = Session(registry: registry, logger: logger, cancellation: cancellation, variables: variables)
        // Temporary files and folders the queries made are removed however the run ends.
        defer { session.context.finish() }
        if let uploadDir {
            try FileManager.default.createDirectory(atPath: uploadDir, withIntermediateDirectories: true)
            session.context.setService(UploadFunction.serviceKey, DirectoryUploads(root: uploadDir) as any UploadDestination)
        }
        if let root { session.context.setService("host.root", root) }
        if let api { ServerPlugins.install(api: api, into: session.context) }
        let writer = RowWriter(format: outputFormat)
        writer.flushWhenIdle()
        defer { session.close() }
        for statement in statements {
            do {
                switch try session.prepare(statement) {
                case .bound: continue
                case .rows(let cursor, _):
                    defer { cursor.close() }
                    writer.beginStatement()
                    while let row = try cursor.next() { writer.write(row) }
                    writer.endStatement()
                }
            } catch is QueryCancelled {
                writer.endStatement()
                printError("query cancelled")
                throw ExitCode(130)
            } catch {
                writer.endStatement()
                printError("error: \(error)")
                throw ExitCode(1)
            }
        }
    }

    private func readText() throws -> String {
        if let vql { return vql }
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read '\(file)'")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let data = FileHandle.standardInput.readDataToEndOfFile()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Turns Ctrl-C into query cancellation: plugins see the flag and stop; a second Ctrl-C exits.
final class InterruptHandler: @unchecked Sendable {
    private let source: DispatchSourceSignal
    private var count = 0

    init(cancellation: CancellationFlag) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            self.count += 1
            if self.count > 1 { exit(130) }
            cancellation.cancel()
        }
        source.resume()
    }

    func stop() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
