import ArgumentParser
import Artifacts
import Foundation
import VQL

/// `quarry repl` (and `quarry` with no arguments): the investigator's interactive shell.
struct ReplCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repl",
        abstract: "Interactive VQL shell (reads statements from standard input when it is not a terminal).")

    @Option(name: .customLong("env"), help: "Preset a scope variable, NAME=VALUE (repeatable).")
    var environment: [String] = []

    @OptionGroup var definitions: DefinitionOptions

    func run() throws {
        let variables = try keyValues(environment, option: "--env").mapValues { Value.string($0) }
        let shell = Shell(variables: variables, interactive: isatty(STDIN_FILENO) != 0, repository: definitions.repository())
        shell.run()
    }
}

/// The REPL's state: one session scope across entries, output settings, the last result's columns.
final class Shell {
    let session: Session
    let interactive: Bool
    var mode: OutputFormat
    var timer = false
    var outputHandle: FileHandle = .standardOutput
    var lastColumns: [String] = []
    let cancellation = CancellationFlag()
    /// One SIGINT source for the shell's life (libdispatch does not re-arm a signal source created
    /// again for the same signal). At the prompt the terminal is raw, so Ctrl-C arrives as a key
    /// instead; while a query runs it arrives as SIGINT and cancels the query.
    private var interrupt: QueryInterrupt?

    let repository: ArtifactRepository

    init(variables: [String: Value], interactive: Bool, repository: ArtifactRepository) {
        self.interactive = interactive
        self.repository = repository
        if interactive { interrupt = QueryInterrupt(cancellation: cancellation) }
        self.mode = interactive ? .table : .json
        session = Session(
            registry: QuarryRegistry.make(repository: repository), logger: StreamLogger(minimum: .info), cancellation: cancellation,
            variables: variables)
    }

    func run() {
        if interactive { runInteractive() } else { runBatch() }
    }

    /// Non-terminal input: read everything, run it, no prompts or colour.
    private func runBatch() {
        let text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        var pending = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if pending.isEmpty && trimmed.hasPrefix(".") {
                if !dotCommand(trimmed) { return }
                continue
            }
            pending += (pending.isEmpty ? "" : "\n") + line
            if StatementCompleteness.isComplete(pending) && !trimmed.isEmpty {
                execute(pending)
                pending = ""
            }
        }
        if !pending.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { execute(pending) }
    }

    private func runInteractive() {
        let history = (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.quarry_history"
        let editor = LineEditor(historyFile: history)
        editor.completer = { [unowned self] before in
            Completion(
                registry: session.context.registry, variables: session.root.visibleNames, lastColumns: lastColumns,
                artifactNames: repository.names
            ).complete(before)
        }
        say("Quarry VQL shell — .help for commands, Ctrl-D to quit.")
        var pending = ""
        var interruptedOnEmpty = false
        while true {
            let prompt = pending.isEmpty ? "vql> " : "...> "
            switch editor.readLine(prompt: prompt) {
            case .endOfFile:
                return
            case .interrupted:
                if pending.isEmpty {
                    if interruptedOnEmpty { return }
                    interruptedOnEmpty = true
                    say("(press Ctrl-C again or Ctrl-D to quit)")
                }
                pending = ""
                continue
            case .line(let line):
                interruptedOnEmpty = false
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if pending.isEmpty && trimmed.hasPrefix(".") {
                    editor.remember(trimmed)
                    if !dotCommand(trimmed) { return }
                    continue
                }
                pending += (pending.isEmpty ? "" : "\n") + line
                guard StatementCompleteness.isComplete(pending) else { continue }
                let text = pending
                pending = ""
                if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
                editor.remember(text)
                execute(text)
            }
        }
    }

    /// Parses, checks and runs a text; rows stream to the output; Ctrl-C cancels.
    func execute(_ text: String) {
        let statements: [Statement]
        do {
            statements = try Parser.parse(text)
        } catch {
            printError(error.render(source: text))
            return
        }
        let problems = Binder.check(statements, registry: session.context.registry, knownNames: Set(session.root.visibleNames))
        if !problems.isEmpty {
            for p in problems { printError(p.render(source: text)) }
            return
        }
        cancellation.reset()
        let writer = RowWriter(format: mode, handle: outputHandle)
        for statement in statements {
            let started = Date()
            var rows = 0
            do {
                switch try session.prepare(statement) {
                case .bound: continue
                case .rows(let cursor, _):
                    defer { cursor.close() }
                    writer.beginStatement()
                    var columns: [String] = []
                    while let row = try cursor.next() {
                        if rows == 0, case .dict(let d) = row { columns = d.keys }
                        writer.write(row)
                        rows += 1
                    }
                    writer.endStatement()
                    if !columns.isEmpty { lastColumns = columns }
                    if rows == 0 && mode == .table { say("(no rows)") }
                }
            } catch is QueryCancelled {
                writer.endStatement()
                printError("query cancelled after \(rows) rows")
                return
            } catch {
                writer.endStatement()
                printError("error: \(error)")
                return
            }
            if timer {
                say(String(format: "Run time: %.3f s, %d rows", Date().timeIntervalSince(started), rows))
            }
        }
    }

    /// Runs a dot command; false means quit.
    func dotCommand(_ line: String) -> Bool {
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        let registry = session.context.registry
        switch parts[0] {
        case ".quit", ".exit", ".q":
            return false
        case ".help":
            say("""
                Statements end when brackets and quotes balance and the text parses (a SELECT without
                FROM waits for more unless it ends with ';'). LET definitions persist.
                .mode table|json|jsonl|csv   output format          .timer on|off   time each query
                .output FILE | .output       send rows to FILE      .plugins [pattern]
                .functions [pattern]         .describe NAME         .artifacts [regex]
                .collect NAME                .quit
                Keys: ←/→ Home/End (Ctrl-A/E), ↑/↓ history, Ctrl-R search, Tab completes,
                Ctrl-C cancels the line or a running query (twice at an empty prompt quits), Ctrl-D quits.
                """)
        case ".mode":
            if let m = OutputFormat(rawValue: argument) { mode = m } else { printError("usage: .mode table|json|jsonl|csv") }
        case ".timer":
            timer = argument.lowercased() == "on"
        case ".output":
            if argument.isEmpty {
                outputHandle = .standardOutput
            } else if FileManager.default.createFile(atPath: argument, contents: nil), let h = FileHandle(forWritingAtPath: argument) {
                outputHandle = h
            } else {
                printError("cannot write \(argument)")
            }
        case ".plugins":
            for p in registry.plugins.values.sorted(by: { $0.name < $1.name })
            where argument.isEmpty || p.name.localizedCaseInsensitiveContains(argument) {
                say("\(p.name)(\(p.arguments.map(\.name).joined(separator: ", ")))  — \(p.summary)")
            }
        case ".functions":
            for f in registry.functions.values.sorted(by: { $0.name < $1.name })
            where argument.isEmpty || f.name.localizedCaseInsensitiveContains(argument) {
                say("\(f.name)(\(f.arguments.map(\.name).joined(separator: ", ")))  — \(f.summary)")
            }
        case ".describe":
            if let p = registry.plugin(argument) {
                say(Describe.plugin(p))
            } else if let f = registry.function(argument) {
                say(Describe.function(f))
            } else {
                let all = Array(registry.plugins.keys) + Array(registry.functions.keys)
                printError("no plugin or function '\(argument)'" + (NameSuggester.closest(to: argument, in: all).map { " (did you mean '\($0)'?)" } ?? ""))
            }
        case ".artifacts":
            let regex = argument.isEmpty ? nil : try? CompiledRegex(argument, caseInsensitive: true)
            for artifact in repository.artifacts where regex?.matches(artifact.name) ?? true {
                say("\(artifact.name)  — \((artifact.description ?? "").split(separator: "\n").first.map(String.init) ?? "")")
            }
        case ".collect":
            guard repository.artifact(named: argument) != nil else {
                printError("no artifact \(argument)" + (NameSuggester.closest(to: argument, in: repository.names).map { " (did you mean \($0)?)" } ?? ""))
                return true
            }
            execute("SELECT * FROM Artifact.\(argument)()")
        default:
            printError("unknown command \(parts[0]) (try .help)")
        }
        return true
    }
}

/// SIGINT while a query runs: cancel it (plugins stop at their next check) and return to the prompt.
final class QueryInterrupt: @unchecked Sendable {
    private let source: DispatchSourceSignal

    init(cancellation: CancellationFlag) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { cancellation.cancel() }
        source.resume()
    }

    deinit {
        source.cancel()
    }
}

/// Writes a line to standard output unbuffered, so messages stay in order with the rows (which
/// RowWriter writes through the same file handle).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
