import ArgumentParser
import Artifacts
import Fleet
import Foundation
import PrivateFiles
import QuarryCollector
import VQL

/// `quarry collector build|run|show`: the offline collector — one file an investigator prepares and
/// someone on site runs with no argument, which writes one (optionally encrypted) container.
struct CollectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector", abstract: "Build and run offline collectors.",
        subcommands: [BuildCollector.self, RunCollector.self, ShowCollector.self])
}

/// `quarry collector build`: writes the collector file.
struct BuildCollector: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build", abstract: "Write an offline collector: one file that collects the given artifacts where it runs.",
        discussion: """
            Example: quarry collector build --artifact Linux.Sys.Users --artifact Linux.Sys.Pslist --encrypt-to investigator.pem --output ./collector
            By default the collector is a self-extracting bundle holding quarry and every library it links (it runs on a Linux host without Swift or Quarry's libraries); --no-bundle writes just this quarry executable with the spec appended.
            """)

    @Option(name: .customLong("artifact"), help: "An artifact to collect (repeatable, in order).") var artifacts: [String] = []
    @Option(name: .customLong("args"), help: "Parameter Name=Value (repeatable).") var arguments: [String] = []
    @Option(help: "Stop the collection after this many seconds.") var timeout: Double?
    @Option(help: "Percent of one CPU core the collection may use.") var cpuLimit: Double?
    @Option(help: "At most this many rows per source.") var maxRows: Int?
    @Option(help: "At most this many bytes of uploaded files.") var maxUploadBytes: Int64?
    @Option(help: "Where the collector writes its container (default: the folder it is run from).") var outputDir: String?
    @Option(help: "Encrypt the container to this PEM certificate (or RSA public key): only its private key opens it.") var encryptTo: String?
    @Flag(help: "Encrypt the container with a password typed now (it is built into the collector).") var passwordPrompt = false
    @Flag(help: "Like --password-prompt, reading the password from standard input.") var passwordStdin = false
    @Flag(help: "Write this quarry executable with the spec appended instead of a self-contained bundle.") var noBundle = false
    @Option(help: "The quarry executable to build from (default: this one).") var binary: String?
    @Flag(help: "Send the collection to the fleet server of --api-config when done (a one-time upload token is built in).") var uploadToServer = false
    @Option(help: "Hours the upload token stays valid.") var uploadTokenHours: Double = 168
    @Option(help: "The collector file to write.") var output: String = "collector"
    @OptionGroup var definitions: DefinitionOptions
    @OptionGroup var api: APIOptions

    func run() throws {
        guard !artifacts.isEmpty else { throw ValidationError("give at least one --artifact") }
        let repository = definitions.repository()
        var needed = Set<String>()
        for name in artifacts {
            guard let artifact = repository.artifact(named: name) else {
                let hint = NameSuggester.closest(to: name, in: repository.names).map { " (did you mean \($0)?)" } ?? ""
                throw ValidationError("no artifact named \(name)\(hint)")
            }
            guard artifact.type == .client else { throw ValidationError("\(name) is a \(artifact.type.rawValue) artifact; a collector runs CLIENT artifacts") }
            needed.insert(name)
            needed.formUnion(ArtifactRepository.dependencies(of: artifact))
        }
        var spec = CollectorSpec(artifacts: artifacts)
        for (key, value) in try keyValues(arguments, option: "--args") {
            guard artifacts.contains(where: { repository.artifact(named: $0)?.parameters.contains { $0.name == key } ?? false }) else {
                throw ValidationError("no artifact being collected has a parameter \(key)")
            }
            spec.parameters[key] = value
        }
        // Definitions that are not built in travel with the collector.
        spec.definitions = needed.sorted().compactMap { repository.artifact(named: $0) }.filter { !$0.origin.hasPrefix("builtin:") }.map(\.text)
        spec.timeout = timeout
        spec.cpuLimit = cpuLimit
        spec.maxRows = maxRows
        spec.maxUploadBytes = maxUploadBytes
        spec.outputDirectory = outputDir
        spec.builtAt = Date()
        spec.builtBy = ProcessInfo.processInfo.environment["USER"] ?? ""
        spec.version = QuarryVersion.current
        guard [encryptTo != nil, passwordPrompt, passwordStdin].filter({ $0 }).count <= 1 else {
            throw ValidationError("choose one of --encrypt-to, --password-prompt, --password-stdin")
        }
        if let encryptTo {
            let pem = try String(contentsOfFile: encryptTo, encoding: .utf8)
            // Fail now, not on site: the certificate must take a key.
            _ = try SealedContainer.wrap(password: SealedContainer.randomPassword(), certificatePEM: pem)
            spec.encryption = .x509(certificatePEM: pem)
        } else if passwordPrompt || passwordStdin {
            let password = try PasswordInput.read(prompt: "Password for the collection: ", fromStdin: passwordStdin)
            guard password.count >= 8 else { throw ValidationError("the password needs at least 8 characters") }
            spec.encryption = .password(password)
        }
        if uploadToServer {
            let client = try api.client()
            struct TokenRequest: Encodable, Sendable { var hours: Double }
            let hours = uploadTokenHours
            let grant = try runBlocking { try await client.post("/collections/upload-tokens", body: TokenRequest(hours: hours), as: UploadTokenGrant.self) }
            spec.upload = CollectorSpec.Upload(serverURL: client.config.serverURL, caCertificate: client.config.caCertificate, token: grant.token)
        }
        let trailer = try EmbeddedSpec.trailer(for: spec)
        let executable = binary ?? "/proc/self/exe"
        if noBundle {
            try PlainCollector.write(executable: executable, trailer: trailer, output: output)
        } else {
            try SelfExtractingBundle.build(executable: SelfExtractingBundle.realPath(executable), trailer: trailer, output: output)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.int64Value ?? 0
        print("\(output): \(size / 1_048_576) MiB, \(noBundle ? "needs this machine's libraries" : "self-contained")")
        print(spec.explanation)
    }
}

/// The collector without a bundle: this executable's bytes, then the spec.
enum PlainCollector {
    static func write(executable: String, trailer: Data, output: String) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: executable))
        if (try? EmbeddedSpec.read(path: executable)) ?? nil != nil {
            throw ValidationError("\(executable) is already a collector; build from a plain quarry (--binary)")
        }
        try PrivateFile.write(bytes + trailer, to: output, mode: 0o755)
    }
}

/// `quarry collector run --spec FILE`: what a collector does when run (the bundle's header calls it).
struct RunCollector: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the collection a collector file describes.")
    @Option(help: "The collector file whose spec to run.") var spec: String
    @Option(help: "Write the container into this folder instead.") var outputDir: String?
    @Flag(help: "Only check that the spec reads (used by the bundle to test where it unpacked).") var probe = false
    @Flag(name: .customLong("what"), help: "Say what the collector collects, and exit.") var explain = false

    func run() throws {
        guard let loaded = try EmbeddedSpec.read(path: spec) else { throw ValidationError("\(spec) is not a collector (no spec at its end)") }
        if probe { return }
        if explain {
            print(loaded.explanation)
            print("\nOptions: --output-dir DIR  write the container into DIR instead.")
            return
        }
        try CollectorRunner.run(loaded, collectorPath: spec, outputDir: outputDir)
    }
}

/// `quarry collector show FILE`: the spec of a collector file.
struct ShowCollector: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print what a collector file collects.")
    @Argument(help: "The collector file.") var path: String
    @Flag(help: "Print the spec as JSON (encryption secrets hidden).") var json = false

    func run() throws {
        guard var loaded = try EmbeddedSpec.read(path: path) else { throw ValidationError("\(path) is not a collector") }
        guard json else { return print(loaded.explanation) }
        if case .password = loaded.encryption { loaded.encryption = .password("(hidden)") }
        if loaded.upload != nil { loaded.upload?.token = "(hidden)" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(loaded), as: UTF8.self))
    }
}

/// Runs a spec with progress on a terminal and a summary at the end; exits non-zero on failure.
enum CollectorRunner {
    static func run(_ spec: CollectorSpec, collectorPath: String, outputDir: String?) throws {
        var collection = OfflineCollection(spec: spec, collectorPath: collectorPath) { QuarryRegistry.make(repository: $0) }
        collection.outputDirectory = outputDir
        let cancellation = CancellationFlag()
        let interrupt = InterruptHandler(cancellation: cancellation)
        defer { interrupt.stop() }
        let tty = isatty(STDERR_FILENO) != 0
        printError("Quarry collector: collecting \(spec.artifacts.joined(separator: ", "))")
        let uploaded = ResultBox<ImportOutcome>()
        let outcome = try collection.run(cancellation: cancellation, progress: { source, rows in
            if tty && rows % 100 == 1 { FileHandle.standardError.write(Data("\r  \(source): \(rows) rows\u{1B}[K".utf8)) }
        }, whileClear: { clear in
            guard let upload = spec.upload else { return }
            printError("Sending the collection to \(upload.serverURL) …")
            let host = ProcessInfo.processInfo.hostName
            uploaded.set(Result { try runBlocking { try await CollectionUploader(serverURL: upload.serverURL, caCertificate: upload.caCertificate, token: upload.token).upload(path: clear, hostname: host) } })
        })
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        print("\(outcome.container): \(outcome.summary.state)\(outcome.encrypted ? ", encrypted" : "")")
        for (source, count) in outcome.summary.rows { print("  \(source): \(count) rows") }
        if outcome.summary.uploads > 0 { print("  uploads: \(outcome.summary.uploads) files, \(outcome.summary.uploadedBytes) bytes") }
        for error in outcome.summary.errors { print("  problem: \(error)") }
        switch uploaded.value {
        case .success(let flow)?:
            print("Sent to the server: flow \(flow.flowId) of \(flow.clientId). The file stays here as a copy.")
        case .failure(let error)?:
            print("Could not send it to the server: \(error)")
            print("Send \((outcome.container as NSString).lastPathComponent) to the investigator instead.")
            throw ExitCode(1)
        case nil:
            print("Send \((outcome.container as NSString).lastPathComponent) to the investigator.")
        }
        if outcome.summary.state != "finished" { throw ExitCode(1) }
    }

    /// When this executable carries a spec (a `--no-bundle` collector), runs it and exits; returns
    /// otherwise. `--help` says what it collects; `--output-dir DIR` is the only option.
    static func runIfEmbedded() {
        let spec: CollectorSpec
        do {
            guard let embedded = try EmbeddedSpec.read(path: "/proc/self/exe") else { return }
            spec = embedded
        } catch {
            // The file ends like a collector but its spec does not check out: never run it.
            printError("collector: \(error)")
            exit(1)
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.contains("--help") || arguments.contains("-h") {
            print(spec.explanation)
            print("\nOptions: --output-dir DIR  write the container into DIR instead.")
            exit(0)
        }
        var outputDir: String?
        if let i = arguments.firstIndex(of: "--output-dir"), i + 1 < arguments.count { outputDir = arguments[i + 1] }
        do {
            try run(spec, collectorPath: SelfExtractingBundle.realPath("/proc/self/exe"), outputDir: outputDir)
            exit(0)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            printError("collector: \(error)")
            exit(1)
        }
    }
}

/// A password from the terminal (not echoed) or from standard input.
enum PasswordInput {
    static func read(prompt: String, fromStdin: Bool) throws -> String {
        if !fromStdin, isatty(STDIN_FILENO) != 0, let typed = getpass(prompt) {
            return String(cString: typed)
        }
        guard let line = readLine(strippingNewline: true) else { throw ValidationError("no password on standard input") }
        return line
    }
}
