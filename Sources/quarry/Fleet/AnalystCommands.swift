import ArgumentParser
import Fleet
import FleetCore
import Foundation
import VQL

/// Where an analyst command finds the server and its credentials.
struct APIOptions: ParsableArguments {
    @Option(help: "The analyst's api.yaml (server URL, pinned CA, user, API key).")
    var apiConfig: String = NSHomeDirectory() + "/.quarry/api.yaml"

    func client() throws -> APIClient {
        try APIClient(config: ConfigFile.load(APIConfig.self, from: apiConfig))
    }
}

/// Output format of analyst commands that print rows.
struct FormatOption: ParsableArguments {
    @Option(help: "table, json, jsonl or csv (default: table on a terminal, json otherwise).") var format: String?

    func writer() throws -> RowWriter {
        if let format {
            guard let chosen = OutputFormat(rawValue: format) else { throw ValidationError("unknown format '\(format)' (table, json, jsonl, csv)") }
            return RowWriter(format: chosen)
        }
        return RowWriter(format: isatty(STDOUT_FILENO) == 1 ? .table : .json)
    }

    func print(_ rows: [Value]) throws {
        let writer = try writer()
        writer.beginStatement()
        rows.forEach(writer.write)
        writer.endStatement()
        writer.flush()
    }

    /// Prints every row of a results query as the pages arrive (json, jsonl and csv stream; a table
    /// needs them all first).
    func printResults(_ client: APIClient, _ query: [String: String?]) throws {
        let writer = try writer()
        writer.beginStatement()
        var after: ResultCursor?
        while true {
            let cursor = after
            let page = try runBlocking { try await client.resultsPage(query, after: cursor) }
            page.map(ServerPlugins.resultValue).forEach(writer.write)
            writer.flush()
            guard page.count >= APIClient.resultPageRows, let last = page.last else { break }
            after = last.cursor
        }
        writer.endStatement()
        writer.flush()
    }
}

func isoTime(_ seconds: Double?) -> Value {
    seconds.map { .timestamp(Timestamp(seconds: $0)) } ?? .null
}

/// `quarry clients list|show|label`.
struct ClientsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clients", abstract: "Enrolled endpoints.", subcommands: [ListClients.self, ShowClient.self, LabelClient.self])
}

func clientRow(_ view: ClientView) -> Value {
    let c = view.client
    return .dict(Dict([
        ("ClientId", .string(c.clientId)), ("Hostname", .string(c.hostname)), ("Fqdn", .string(c.fqdn)), ("OS", .string(c.os)),
        ("Kernel", .string(c.kernel)), ("IPs", .list(c.ips.map { .string($0) })), ("Labels", .list(c.labels.map { .string($0) })),
        ("Connected", .bool(view.connected)), ("LastSeen", isoTime(c.lastSeen)), ("Enrolled", isoTime(c.enrolledAt)), ("Revoked", .bool(c.revoked)),
    ] + (view.isolated.map { [("Isolated", Value.bool($0)), ("IsolationReported", isoTime(view.isolationReportedAt))] } ?? [])))
}

struct ListClients: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List enrolled clients.")
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        try format.print(try runBlocking { try await client.get("/clients", as: [ClientView].self) }.map(clientRow))
    }
}

struct ShowClient: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One client, with its recent flows.")
    @Argument var clientId: String
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let id = clientId
        let view = try runBlocking { try await client.get("/clients/\(id)", as: ClientView.self) }
        let flows = try runBlocking { try await client.get("/flows", query: ["client_id": id], as: [FlowRecord].self) }
        try format.print([clientRow(view)])
        try format.print(flows.map(flowRow))
    }
}

struct LabelClient: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "label", abstract: "Add or remove labels of a client.")
    @Argument var clientId: String
    @Option(name: .customLong("add"), help: "Label to add (repeatable).") var add: [String] = []
    @Option(name: .customLong("remove"), help: "Label to remove (repeatable).") var remove: [String] = []
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let (id, body) = (clientId, LabelRequest(add: add, remove: remove))
        let labels = try runBlocking { try await client.post("/clients/\(id)/labels", body: body, as: [String].self) }
        print("\(id): \(labels.joined(separator: ", "))")
    }
}

func flowRow(_ flow: FlowRecord) -> Value {
    .dict(Dict([
        ("FlowId", .string(flow.flowId)), ("ClientId", .string(flow.clientId)), ("HuntId", flow.huntId.map { .string($0) } ?? .null),
        ("Round", .from(flow.round)), ("Artifacts", .list(flow.request.artifacts.map { .string($0) })), ("State", .string(flow.state.rawValue)),
        ("Rows", .from(flow.rows)), ("UploadedBytes", .int(flow.uploadedBytes)), ("Created", isoTime(flow.createdAt)), ("Started", isoTime(flow.startedAt)),
        ("Ended", isoTime(flow.endedAt)), ("Errors", .list(flow.errors.map { .string($0) })), ("Creator", .string(flow.creator)),
    ]))
}

/// Limits shared by `collect` and `hunt create`.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("args"), help: "Artifact parameter NAME=VALUE (repeatable).") var args: [String] = []
    @Option(help: "Seconds the collection may run on each client.") var timeout: Double?
    @Option(help: "Most rows per source.") var maxRows: Int?
    @Option(help: "Most bytes of uploads per client.") var maxUploadBytes: Int64?
    @Option(help: "Percent of one core the collection may use.") var cpuLimit: Double?

    func request(_ artifacts: [String]) throws -> CollectionRequest {
        CollectionRequest(
            artifacts: artifacts, parameters: try keyValues(args, option: "--args"), timeout: timeout, maxRows: maxRows, maxUploadBytes: maxUploadBytes,
            cpuLimit: cpuLimit)
    }
}

/// `quarry collect CLIENT ARTIFACT…`: a collection on one client.
struct CollectClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collect", abstract: "Collect artifacts on one client through the server.")
    @Argument(help: "Client ID.") var clientId: String
    @Argument(help: "Artifact names.") var artifacts: [String]
    @OptionGroup var limits: LimitOptions
    @Flag(help: "Wait for the flow to end and print its rows.") var wait = false
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let body = CollectRequestBody(clientId: clientId, request: try limits.request(artifacts))
        let flow = try runBlocking { try await client.post("/collect", body: body, as: FlowRecord.self) }
        guard wait else {
            print(flow.flowId)
            return
        }
        let id = flow.flowId
        var current = flow
        while !current.state.isFinal {
            Thread.sleep(forTimeInterval: 0.5)
            current = try runBlocking { try await client.get("/flows/\(id)", as: FlowView.self) }.flow
        }
        printError("\(id): \(current.state.rawValue), \(current.rows) rows\(current.errors.isEmpty ? "" : "; " + current.errors.joined(separator: "; "))")
        try format.printResults(client, ["flow_id": id])
        if current.state != .finished { throw ExitCode(1) }
    }
}
