import ArgumentParser
import Artifacts
import Foundation
import VQL

/// `quarry monitor ARTIFACT…`: runs event artifacts on this host until Ctrl-C (or SIGTERM),
/// writing each source's rows as JSON lines, one file per UTC day.
struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Run event (CLIENT_EVENT) artifacts locally and write their rows as JSON lines, a file per day.",
        discussion: """
            Rows go to DIR/<Artifact>[/<Source>]/YYYY-MM-DD.jsonl (UTC days; files 0600, folders 0700); the query \
            log goes to standard error. Ctrl-C or SIGTERM stops every artifact cleanly. Example:
              quarry monitor Linux.Events.ProcessExecutions Linux.Events.DNS --output-dir /var/lib/quarry/events
            """)

    @Argument(help: "Event artifact names.") var names: [String]
    @Option(name: .customLong("args"), help: "Parameter Name=Value (repeatable; applies to every artifact that declares it).") var arguments: [String] = []
    @Option(help: "Folder for the JSON-lines files (created when missing).") var outputDir: String = "events"
    @Flag(help: "Also print each row to standard output as JSON lines.") var print = false
    @Flag(help: "Also log debug messages.") var verbose = false
    @OptionGroup var definitions: DefinitionOptions

    func run() throws {
        let repository = definitions.repository()
        for name in names where repository.artifact(named: name) == nil {
            let hint = NameSuggester.closest(to: name, in: repository.names).map { " (did you mean \($0)?)" } ?? ""
            throw ValidationError("no artifact named \(name)\(hint)")
        }
        let parameters = try keyValues(arguments, option: "--args")
        for key in parameters.keys where !names.contains(where: { repository.artifact(named: $0)?.parameters.contains { $0.name == key } ?? false }) {
            throw ValidationError("no artifact being monitored has a parameter \(key)")
        }
        let writer = try DailyJSONLWriter(directory: outputDir)
        let cancellation = CancellationFlag()
        let interrupt = InterruptHandler(cancellation: cancellation)
        defer { interrupt.stop() }
        let terminate = TerminationHandler(cancellation: cancellation)
        defer { terminate.stop() }
        let logger = StreamLogger(minimum: verbose ? .debug : .info)
        let echo = print
        let monitor = EventMonitor(repository: repository, registry: QuarryRegistry.make(repository: repository),
                                   parameters: parameters, cancellation: cancellation)
        printError("monitoring \(names.joined(separator: ", ")) into \(outputDir) (Ctrl-C stops)")
        let problems = try monitor.run(names, logger: logger) { label, row in
            do {
                try writer.write(label: label, row: row)
            } catch {
                logger.log(.error, "monitor: \(error)")
                cancellation.cancel()
            }
            if echo { FileHandle.standardOutput.write(Data((JSONWriter.string(row) + "\n").utf8)) }
        }
        if !problems.isEmpty && !cancellation.isCancelled { throw ExitCode(1) }
    }
}

/// SIGTERM stops a monitor as Ctrl-C does.
final class TerminationHandler: @unchecked Sendable {
    private let source: DispatchSourceSignal

    init(cancellation: CancellationFlag) {
        signal(SIGTERM, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler { cancellation.cancel() }
        source.resume()
    }

    func stop() {
        source.cancel()
        signal(SIGTERM, SIG_DFL)
    }
}
