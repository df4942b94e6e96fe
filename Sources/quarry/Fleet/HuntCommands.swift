import ArgumentParser
import Fleet
import FleetCore
import Foundation
import VQL

/// `quarry hunt …`: fan artifacts out over the fleet, once or on a schedule.
struct HuntCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hunt", abstract: "Hunts: collect artifacts across the fleet.",
        subcommands: [CreateHunt.self, ListHunts.self, ShowHunt.self, HuntAction.Stop.self, HuntAction.Start.self, HuntAction.Archive.self, HuntResults.self, HuntDiffCommand.self, WaitHunt.self, DownloadHunt.self])
}

/// "7d", "12h", "30m", "90s" or plain seconds.
func parseDuration(_ text: String) throws -> Double {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800]
    if let seconds = Double(text) { return seconds }
    guard let unit = text.last, let factor = units[unit], let amount = Double(text.dropLast()), amount > 0 else {
        throw ValidationError("'\(text)' is not a duration (e.g. 90s, 30m, 12h, 7d)")
    }
    return amount * factor
}

struct CreateHunt: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a hunt; it starts at once unless --paused.")
    @Argument(help: "Artifact names.") var artifacts: [String]
    @OptionGroup var limits: LimitOptions
    @Option(name: .customLong("label"), help: "Only clients with this label (repeatable: any of them).") var labels: [String] = []
    @Option(name: .customLong("exclude-label"), help: "Skip clients with this label (repeatable).") var excludeLabels: [String] = []
    @Option(help: "Only clients with this OS (e.g. linux).") var os: String?
    @Option(help: "Expire after this long (e.g. 7d, 12h).") var expires: String = "7d"
    @Option(help: "Most clients per round.") var clientLimit: Int?
    @Option(help: "Most new clients per minute, N or N/min.") var rate: String?
    @Option(help: "Run in rounds on this cron schedule (5 fields, or @every 10m).") var schedule: String?
    @Option(help: "What the hunt is for.") var description: String = ""
    @Flag(help: "Create the hunt paused (start it with `hunt start`).") var paused = false
    @OptionGroup var api: APIOptions

    func run() throws {
        var body = HuntRequestBody(request: try limits.request(artifacts), conditions: HuntConditions(labels: labels, excludeLabels: excludeLabels, os: os))
        body.description = description
        body.expiresIn = try parseDuration(expires)
        body.clientLimit = clientLimit
        if let rate {
            let number = rate.hasSuffix("/min") ? String(rate.dropLast(4)) : rate
            guard let perMinute = Int(number), perMinute > 0 else { throw ValidationError("--rate takes N or N/min, got '\(rate)'") }
            body.ratePerMinute = perMinute
        }
        body.schedule = schedule
        body.paused = paused
        let client = try api.client()
        let request = body
        let hunt = try runBlocking { try await client.post("/hunts", body: request, as: HuntRecord.self) }
        print(hunt.huntId)
    }
}

func huntRow(_ hunt: HuntRecord) -> Value {
    .dict(Dict([
        ("HuntId", .string(hunt.huntId)), ("State", .string(hunt.state.rawValue)), ("Artifacts", .list(hunt.request.artifacts.map { .string($0) })),
        ("Round", .from(hunt.round)), ("Schedule", hunt.schedule.map { .string($0) } ?? .null), ("Created", isoTime(hunt.createdAt)),
        ("Expires", isoTime(hunt.expiresAt)), ("Creator", .string(hunt.creator)), ("Description", .string(hunt.description)),
    ]))
}

struct ListHunts: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List hunts, newest first.")
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption
    @Flag(help: "Include archived hunts.") var all = false

    func run() throws {
        let client = try api.client()
        let hunts = try runBlocking { try await client.get("/hunts", as: [HuntRecord].self) }
        try format.print(hunts.filter { all || $0.state != .archived }.map(huntRow))
    }
}

struct ShowHunt: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "A hunt's progress: per-client states of its current round.")
    @Argument var huntId: String
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let id = huntId
        let view = try runBlocking { try await client.get("/hunts/\(id)", as: HuntView.self) }
        let states = view.states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        printError("\(id): \(view.hunt.state.rawValue), round \(view.hunt.round): \(states.isEmpty ? "no clients yet" : states)")
        for source in view.sources { printError("  \(source.artifact)\(source.source.isEmpty ? "" : "/" + source.source): \(source.rows) rows") }
        try format.print(view.clients.map {
            .dict(Dict([
                ("ClientId", .string($0.clientId)), ("FlowId", .string($0.flowId)), ("Round", .from($0.round)), ("State", .string($0.state.rawValue)),
                ("Rows", .from($0.rows)), ("Errors", .list($0.errors.map { .string($0) })),
            ]))
        })
    }
}

/// `hunt stop|start|archive ID`.
enum HuntAction {
    static func run(_ action: String, _ id: String, _ api: APIOptions) throws {
        let client = try api.client()
        let hunt = try runBlocking { try await client.post("/hunts/\(id)/\(action)", body: [String: String](), as: HuntRecord.self) }
        print("\(hunt.huntId): \(hunt.state.rawValue)")
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a hunt (clients not yet reached are cancelled).")
        @Argument var huntId: String
        @OptionGroup var api: APIOptions
        func run() throws { try HuntAction.run("stop", huntId, api) }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a paused or stopped hunt.")
        @Argument var huntId: String
        @OptionGroup var api: APIOptions
        func run() throws { try HuntAction.run("start", huntId, api) }
    }

    struct Archive: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "archive", abstract: "Archive a hunt (hidden from `hunt list`).")
        @Argument var huntId: String
        @OptionGroup var api: APIOptions
        func run() throws { try HuntAction.run("archive", huntId, api) }
    }
}

struct HuntResults: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "results", abstract: "Rows a hunt collected, with ClientId, FlowId and Fqdn.")
    @Argument var huntId: String
    @Option(help: "Only this artifact.") var artifact: String?
    @Option(help: "Only this source.") var source: String?
    @Option(help: "Only this round of a scheduled hunt.") var round: Int?
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let query: [String: String?] = ["hunt_id": huntId, "artifact": artifact, "source": source, "round": round.map(String.init)]
        try format.printResults(client, query)
    }
}

struct HuntDiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Rows a scheduled hunt's round added or removed since the round before.")
    @Argument var huntId: String
    @Option(help: "The round to compare with the one before (default: the current round).") var round: Int?
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let (id, round) = (huntId, round)
        let diff = try runBlocking { try await client.get("/hunts/\(id)/diff", query: ["round": round.map(String.init)], as: HuntDiff.self) }
        printError("\(id): round \(diff.round) vs \(diff.previous): \(diff.added.count) added, \(diff.removed.count) removed")
        func tagged(_ row: ResultRow, _ change: String) -> Value {
            guard case .dict(let dict) = ServerPlugins.resultValue(row) else { return .null }
            return .dict(Dict([("Diff", .string(change))] + dict.keys.map { ($0, dict[$0] ?? .null) }))
        }
        try format.print(diff.added.map { tagged($0, "added") } + diff.removed.map { tagged($0, "removed") })
    }
}

struct WaitHunt: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait until N clients finished the hunt's current round (or a timeout).")
    @Argument var huntId: String
    @Option(help: "Clients that must be done.") var clients: Int
    @Option(help: "Give up after this many seconds.") var timeout: Double = 120
    @Option(help: "Wait for this round (default: the current one).") var round: Int?
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let id = huntId
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let view = try runBlocking { try await client.get("/hunts/\(id)", as: HuntView.self) }
            let done = view.clients.filter { $0.state.isFinal && (round == nil || $0.round == round) }.count
            if done >= clients && (round == nil || view.hunt.round >= (round ?? 0)) {
                printError("\(id): \(done) clients done in round \(view.hunt.round)")
                return
            }
            if Date() > deadline {
                printError("\(id): only \(done) of \(clients) clients done after \(Int(timeout)) s")
                throw ExitCode(1)
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }
}
