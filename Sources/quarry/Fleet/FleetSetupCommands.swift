import ArgumentParser
import Artifacts
import Fleet
import FleetCore
import FleetPostgres
import Foundation
import QuarryResponse
import NIOPosix

/// `quarry config generate|client`: set up a fleet and derive agent configs.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Create a fleet's keys and configs.", subcommands: [GenerateConfig.self, ClientConfigCommand.self])
}

struct GenerateConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "A new CA, server certificate, enrolment secret, server.yaml and the first administrator's api.yaml.")
    @Option(help: "The URL agents and analysts use, https://HOST:PORT.") var serverUrl: String
    @Option(help: "Folder for server.yaml, api.yaml and the server's data.") var dir: String
    @Option(help: "Address to listen on (default: the URL's IP, or 127.0.0.1 for localhost, else 0.0.0.0).") var bind: String?

    func run() throws {
        let generated = try FleetSetup.generate(serverURL: serverUrl, directory: dir, bindAddress: bind)
        print("wrote \(generated.serverConfigPath) (CA, server certificate, enrolment secret; keep it private)")
        print("wrote \(generated.apiConfigPath) (administrator 'admin'; use with --api-config or copy to ~/.quarry/api.yaml)")
        print("next: quarry config client --server-config \(generated.serverConfigPath) > client.yaml")
    }
}

struct ClientConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "client", abstract: "Print an agent config (server URL, pinned CA, enrolment secret).")
    @Option(help: "The server's server.yaml.") var serverConfig: String
    @Option(name: .customLong("label"), help: "A label the agent asks for at enrolment (repeatable).") var labels: [String] = []
    @Option(help: "Instead of printing it, build the agent package quarry-client-FLEET (.deb) with this config into this folder.") var package: String?
    @Option(help: "The fleet's name in the package name (lower-case letters, digits, '-').") var fleet: String = "fleet"
    @Option(help: "The package's compression: xz, gzip or none.") var compression: String = "xz"

    func run() throws {
        let server = try ConfigFile.load(ServerConfig.self, from: serverConfig)
        var client = FleetSetup.clientConfig(from: server)
        client.labels = labels
        let yaml = try ConfigFile.yaml(client)
        if let package {
            print(try DebianPackage(binary: "/proc/self/exe", outputDirectory: package, compression: compression, clientConfig: yaml, fleet: fleet).build())
            return
        }
        print(yaml, terminator: "")
    }
}

/// `quarry server`: run the fleet server until SIGINT/SIGTERM.
struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server", abstract: "Run the fleet server (agents, analyst API, hunts, /metrics).")
    @Option(help: "The server's server.yaml.") var config: String
    @OptionGroup var definitions: DefinitionOptions

    func run() throws {
        let config = try ConfigFile.load(ServerConfig.self, from: self.config)
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try openStore(config)
        let server = try FleetServer(
            config: config, store: store, repository: definitions.repository(), makeRegistry: { QuarryRegistry.make(repository: $0) }, log: fleetLog("server"))
        let systemd = SystemdNotifier()
        let watchdog = WatchdogHolder()
        try blockUntilSignal {
            _ = try await server.start(group: MultiThreadedEventLoopGroup.singleton)
            systemd.notify("READY=1\nSTATUS=serving agents and analysts")
            watchdog.task = systemd.startWatchdog(group: MultiThreadedEventLoopGroup.singleton)
        } onSignal: {
            systemd.notify("STOPPING=1")
            watchdog.task?.cancel()
            await server.stop()
        }
    }

    func openStore(_ config: ServerConfig) throws -> any FleetStore {
        if config.datastore.hasPrefix("sqlite:") { return try SQLiteFleetStore(path: String(config.datastore.dropFirst("sqlite:".count))) }
        if config.datastore.hasPrefix("postgres:") || config.datastore.hasPrefix("postgresql:") {
            return try PostgresFleetStore(url: config.datastore)
        }
        throw ValidationError("datastore '\(config.datastore)': expected sqlite:PATH or postgres://USER@HOST[:PORT]/DATABASE")
    }
}

/// `quarry client`: run the endpoint agent until SIGINT/SIGTERM.
struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "client", abstract: "Run the endpoint agent: enrol, keep a channel to the server, collect.")
    @Option(help: "The agent's client.yaml.") var config: String
    @Option(help: "Folder for the agent's key, certificate and result queue.") var stateDir: String = NSHomeDirectory() + "/.quarry/agent"

    func run() throws {
        let config = try ConfigFile.load(ClientConfig.self, from: self.config)
        // Response actions keep their vault, isolation record and audit journal in the state folder,
        // and isolation keeps the configured server URLs reachable.
        let responseRoot = stateDir + "/response"
        ResponseSettings.configure(stateRoot: responseRoot, servers: config.serverURLs)
        do {
            if let note = try Isolation.reapply(stateRoot: responseRoot) { fleetLog("client")(note) }
        } catch {
            fleetLog("client")("isolation: cannot re-apply: \(error)")
        }
        let agent = try FleetAgent(
            config: config, stateDir: stateDir, group: MultiThreadedEventLoopGroup.singleton,
            makeRegistry: { QuarryRegistry.make(repository: $0) }, log: fleetLog("client"),
            serverContact: { Isolation.heartbeat(stateRoot: responseRoot) },
            isolationState: { Isolation.isInForce(stateRoot: responseRoot) })
        let task = Task { await agent.run() }
        let systemd = SystemdNotifier()
        systemd.notify("READY=1\nSTATUS=agent running")
        let watchdog = systemd.startWatchdog(group: MultiThreadedEventLoopGroup.singleton)
        try blockUntilSignal {} onSignal: {
            systemd.notify("STOPPING=1")
            watchdog?.cancel()
            task.cancel()
        }
    }
}

/// A log line on standard error with the time and the component.
func fleetLog(_ component: String) -> @Sendable (String) -> Void {
    { message in
        let time = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        printError("\(time) \(component): \(message)")
    }
}

/// Runs `start`, then blocks the main thread until SIGINT or SIGTERM, runs `onSignal` and returns.
func blockUntilSignal(_ start: @escaping @Sendable () async throws -> Void, onSignal: @escaping @Sendable () async -> Void) throws {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    signal(SIGPIPE, SIG_IGN)
    let done = DispatchSemaphore(value: 0)
    let failure = ResultBox<Void>()
    let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            Task {
                await onSignal()
                done.signal()
            }
        }
        source.resume()
        return source
    }
    Task {
        do { try await start() } catch {
            failure.set(.failure(error))
            done.signal()
        }
    }
    done.wait()
    sources.forEach { $0.cancel() }
    if case .failure(let error)? = failure.value { throw error }
}

/// The watchdog task, set once the server listens and cancelled on the way out.
final class WatchdogHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Task<Void, Never>?
    var task: Task<Void, Never>? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
