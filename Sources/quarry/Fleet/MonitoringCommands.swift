import ArgumentParser
import Fleet
import FleetCore
import Foundation
import VQL

/// `quarry monitoring add|rm|show`: the client monitoring table (event artifacts every agent, or
/// every agent with a label, runs continuously), or with `--server` the server's (SERVER_EVENT
/// artifacts the server runs in-process: detection over the events agents send).
struct MonitoringCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitoring", abstract: "The monitoring tables: event artifacts agents (or, with --server, the server) run continuously.",
        subcommands: [AddMonitoring.self, RemoveMonitoring.self, ShowMonitoring.self])
}

func monitoringRows(_ table: [MonitoringEntry]) -> [Value] {
    table.map { entry in
        .dict(Dict([
            ("Artifact", .string(entry.artifact)), ("Label", entry.label.isEmpty ? .null : .string(entry.label)),
            ("Parameters", .dict(Dict(entry.parameters.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))),
            ("Creator", .string(entry.creator)), ("Updated", isoTime(entry.updatedAt)),
        ]))
    }
}

struct AddMonitoring: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an event artifact to the table (or replace its parameters).")
    @Argument(help: "A CLIENT_EVENT artifact (a SERVER_EVENT artifact with --server).") var artifact: String
    @Option(name: .customLong("args"), help: "Artifact parameter as NAME=VALUE (repeatable).") var args: [String] = []
    @Option(help: "Only clients with this label run it (default: every client).") var label: String?
    @Flag(help: "The server monitoring table (administrators only).") var server = false
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        var parameters: [String: String] = [:]
        for arg in args {
            guard let equals = arg.firstIndex(of: "="), equals != arg.startIndex else { throw ValidationError("--args \(arg): expected NAME=VALUE") }
            parameters[String(arg[..<equals])] = String(arg[arg.index(after: equals)...])
        }
        if server && label != nil { throw ValidationError("--label is for the client table: the server runs each artifact once") }
        let client = try api.client()
        let body = MonitoringRequest(artifact: artifact, parameters: parameters, label: label)
        let path = server ? "/server-monitoring" : "/monitoring"
        let table = try runBlocking { try await client.post(path, body: body, as: [MonitoringEntry].self) }
        try format.print(monitoringRows(table))
    }
}

struct RemoveMonitoring: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an event artifact from the table (agents, or the server, stop it).")
    @Argument var artifact: String
    @Option(help: "The label of the entry (default: the entry for every client).") var label: String?
    @Flag(help: "The server monitoring table (the server stops the artifact).") var server = false
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        if server && label != nil { throw ValidationError("--label is for the client table") }
        let client = try api.client()
        let body = MonitoringRequest(artifact: artifact, label: label)
        let path = server ? "/server-monitoring/remove" : "/monitoring/remove"
        let table = try runBlocking { try await client.post(path, body: body, as: [MonitoringEntry].self) }
        try format.print(monitoringRows(table))
    }
}

struct ShowMonitoring: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the monitoring table.")
    @Flag(help: "The server monitoring table.") var server = false
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        guard server else {
            try format.print(monitoringRows(try runBlocking { try await client.monitoringTable() }))
            return
        }
        // The server's table with how each artifact fares on the frontend that answers.
        let (table, statuses) = try runBlocking { (try await client.serverMonitoringTable(), try await client.serverMonitoringStatus()) }
        let byArtifact = Dictionary(statuses.map { ($0.artifact, $0) }, uniquingKeysWith: { a, _ in a })
        try format.print(zip(table, monitoringRows(table)).map { entry, row in
            guard case .dict(var dict) = row else { return row }
            dict["Label"] = nil
            let status = byArtifact[entry.artifact]
            dict["State"] = status.map { .string($0.state) } ?? .string("not running here")
            dict["Restarts"] = status.map { .from($0.restarts) } ?? .null
            dict["Rows"] = status.map { .from($0.rows) } ?? .null
            dict["Alerts"] = status.map { .from($0.alerts) } ?? .null
            dict["LastProblem"] = status?.lastProblem.map { .string($0) } ?? .null
            return .dict(dict)
        })
    }
}

/// `quarry events ARTIFACT`: event rows the server stored, oldest first; `--follow` keeps reading
/// new rows as they arrive (polling once a second) until interrupted.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Read event rows stored on the server (of clients, or of the server's own event artifacts).")
    @Argument(help: "The event artifact (ARTIFACT or ARTIFACT/SOURCE).") var artifact: String
    @Option(help: "Only this client's rows.") var client: String?
    @Option(help: "From this time: seconds since 1970, an ISO 8601 time, or an age such as 15m, 2h, 7d.") var since: String?
    @Option(help: "Before this time (same forms as --since).") var until: String?
    @Flag(help: "Keep printing rows as they arrive.") var follow = false
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        func time(_ text: String?, _ name: String) throws -> String? {
            guard let text else { return nil }
            guard let value = EventRows.parseTime(text) else { throw ValidationError("--\(name) \(text): expected seconds, an ISO 8601 time or an age (15m, 2h, 7d)") }
            return String(value)
        }
        var name = artifact, source: String?
        if let slash = artifact.firstIndex(of: "/") {
            name = String(artifact[..<slash])
            source = String(artifact[artifact.index(after: slash)...])
        }
        let query: [String: String?] = ["artifact": name, "source": source, "client_id": client, "since": try time(since, "since"), "until": try time(until, "until")]
        let api = try self.api.client()
        let writer = try format.writer()
        if follow && format.format != "jsonl" { throw ValidationError("--follow prints rows as they come: use --format jsonl") }
        writer.beginStatement()
        var after: EventCursor?
        while true {
            let cursor = after
            let page = try runBlocking { try await api.eventsPage(query, after: cursor) }
            page.map(EventRows.value).forEach(writer.write)
            writer.flush()
            if let last = page.last { after = last.cursor }
            if page.count >= 20_000 { continue }
            guard follow else { break }
            Thread.sleep(forTimeInterval: 1)
        }
        writer.endStatement()
        writer.flush()
    }
}
