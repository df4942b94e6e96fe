import ArgumentParser
import Fleet
import FleetCore
import Foundation
import VQL

/// `quarry respond kill|quarantine|restore|isolate|unisolate|list`: the analyst's side of response.
/// Each action collects one built-in Linux.Response.* artifact on the client through the server
/// (so the server's role check — REMEDIATION — and its audit log, which keeps the request with
/// its reason, apply), waits for it, prints what happened and exits non-zero when it did not.
struct RespondCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "respond", abstract: "Act on a client: kill, quarantine, restore, isolate, unisolate; list actions.",
        subcommands: [
            RespondKill.self, RespondQuarantine.self, RespondRestore.self, RespondIsolate.self, RespondUnisolate.self, RespondList.self,
            RespondApprove.self, RespondDeny.self,
        ])
}

/// What every action takes: the client, a reason (required: it is what the audit trail is for),
/// how long to wait, and the server.
struct ResponseOptions: ParsableArguments {
    @Argument(help: "Client ID.") var clientId: String
    @Option(help: "Why (required; kept in the server's audit log and the agent's journal).") var reason: String
    @Option(help: "Seconds to wait for the client to act.") var wait: Double = 120
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
    }

    /// Collects `artifact` with `parameters` (plus the reason), waits, prints the rows; throws
    /// ExitCode(1) when the flow did not finish or `succeeded` rejects its rows.
    func act(_ artifact: String, _ parameters: [String: String], succeeded: ([Value]) -> Bool) throws {
        let client = try api.client()
        var all = parameters
        all["Reason"] = reason
        let body = CollectRequestBody(clientId: clientId, request: CollectionRequest(artifacts: [artifact], parameters: all, timeout: wait))
        switch try runBlocking({ try await client.collect(body) }) {
        case .started(let flow):
            try ResponseWaiter(client: client, format: format, wait: wait).finish(flow, artifact: artifact, succeeded: succeeded)
        case .awaitingApproval(let action):
            printError("\(action.id): \(artifact) on \(clientId) awaits a second analyst's approval: quarry respond approve \(action.id)")
            print(action.id)
            throw ExitCode(ResponseWaiter.awaitingApproval)
        }
    }
}

/// Waits for a response flow to end, prints its rows, and fails when it did not do what it should.
struct ResponseWaiter {
    /// The exit status of an action that waits for approval (neither done nor failed).
    static let awaitingApproval: Int32 = 3
    let client: APIClient
    let format: FormatOption
    let wait: Double

    func finish(_ flow: FlowRecord, artifact: String, succeeded: ([Value]) -> Bool) throws {
        let clientId = flow.clientId
        let deadline = Date().addingTimeInterval(wait + 30)
        var current = flow
        while !current.state.isFinal {
            guard Date() < deadline else {
                printError("\(flow.flowId): no answer from \(clientId) within \(Int(wait)) s (the action may still run when it connects)")
                throw ExitCode(1)
            }
            Thread.sleep(forTimeInterval: 0.3)
            current = try runBlocking { try await client.get("/flows/\(flow.flowId)", as: FlowView.self) }.flow
        }
        let rows = try runBlocking { try await client.allResults(["flow_id": flow.flowId]) }.map(ServerPlugins.resultValue)
        let errors = current.errors.isEmpty ? "" : "; " + current.errors.joined(separator: "; ")
        printError("\(flow.flowId): \(artifact) on \(clientId): \(current.state.rawValue), \(rows.count) rows\(errors)")
        try format.print(rows)
        if current.state != .finished || !succeeded(rows) { throw ExitCode(1) }
    }
}

/// A row's column as text ("" when absent).
private func column(_ row: Value, _ name: String) -> String {
    let value = row.member(name)
    return value.isNull ? "" : (value.stringValue ?? "")
}

/// `quarry respond kill CLIENT --pid N [--tree] --reason TEXT`.
struct RespondKill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Kill a process (or its whole tree) on a client.")
    @OptionGroup var options: ResponseOptions
    @Option(help: "Process ID.") var pid: Int
    @Flag(help: "Kill its descendants too.") var tree = false

    func run() throws {
        try options.act("Linux.Response.KillProcess", ["Pid": String(pid), "Tree": tree ? "Y" : ""]) { rows in
            !rows.isEmpty && rows.allSatisfy { $0.member("Killed").isTruthy }
        }
    }
}

/// `quarry respond quarantine CLIENT --path P [--upload] --reason TEXT`: prints the quarantine id.
struct RespondQuarantine: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "quarantine", abstract: "Move a file into the client's quarantine vault.")
    @OptionGroup var options: ResponseOptions
    @Option(help: "The file's path on the client.") var path: String
    @Flag(help: "Upload the file to the server before quarantining it.") var upload = false

    func run() throws {
        try options.act("Linux.Response.QuarantineFile", ["Path": path, "Upload": upload ? "Y" : ""]) { rows in
            guard let id = rows.first.map({ column($0, "Id") }), id.hasPrefix("Q.") else { return false }
            print(id)
            return true
        }
    }
}

/// `quarry respond restore CLIENT --id Q.… [--overwrite] --reason TEXT`.
struct RespondRestore: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: "Put a quarantined file back exactly where and as it was.")
    @OptionGroup var options: ResponseOptions
    @Option(help: "Quarantine ID (Q. and hex digits).") var id: String
    @Flag(help: "Replace a file now at the original path.") var overwrite = false

    func run() throws {
        try options.act("Linux.Response.RestoreFile", ["Id": id, "Overwrite": overwrite ? "Y" : ""]) { rows in
            rows.contains { column($0, "Id") == id }
        }
    }
}

/// `quarry respond isolate CLIENT [--servers …] [--dns …] [--deadman S] --reason TEXT`.
struct RespondIsolate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "isolate", abstract: "Cut a client off the network except from the Quarry server.")
    @OptionGroup var options: ResponseOptions
    @Option(help: "Comma-separated servers to keep reachable (default: the agent's server URLs).") var servers: String?
    @Option(help: "Comma-separated DNS resolver addresses to keep reachable.") var dns: String?
    @Option(help: "Lift isolation after this many seconds without the server (0: never).") var deadman: Int = 600

    func run() throws {
        var parameters = ["DeadmanSeconds": String(deadman)]
        parameters["Servers"] = servers
        parameters["DNS"] = dns
        try options.act("Linux.Response.Isolate", parameters) { rows in rows.contains { $0.member("Isolated").isTruthy } }
    }
}

/// `quarry respond unisolate CLIENT --reason TEXT`.
struct RespondUnisolate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unisolate", abstract: "Lift a client's isolation (exactly what isolate added).")
    @OptionGroup var options: ResponseOptions

    func run() throws {
        try options.act("Linux.Response.Unisolate", [:]) { rows in rows.contains { !$0.member("Isolated").isTruthy } }
    }
}

/// `quarry respond list [CLIENT]`: response actions (flows of Linux.Response.* artifacts), newest first.
struct RespondList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Response actions taken, with who asked, why, and their state.")
    @Argument(help: "Only this client.") var clientId: String?
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let flows = try runBlocking { try await client.get("/flows", query: ["client_id": clientId], as: [FlowRecord].self) }
        let actions = flows.filter { $0.request.artifacts.contains { $0.hasPrefix("Linux.Response.") } }.sorted { $0.createdAt > $1.createdAt }
        // Actions held for approval (or denied) have no flow yet: they come first.
        let held = try runBlocking { try await client.get("/respond/actions", query: ["client_id": clientId], as: [PendingAction].self) }.filter { $0.state != .approved }
        let heldRows: [Value] = held.map { action in
            .dict(Dict([
                ("FlowId", .string(action.id)), ("ClientId", .string(action.clientId)), ("Action", .string(action.request.artifacts.joined(separator: ","))),
                ("State", .string(action.state == .pending ? "awaiting approval" : "denied by \(action.decidedBy ?? "?")")),
                ("Creator", .string(action.requester)), ("Created", isoTime(action.createdAt)), ("Reason", .string(action.reason)),
                ("Parameters", .string(action.request.parameters.filter { $0.key != "Reason" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))),
                ("Errors", .string(action.decisionReason ?? "")),
            ]))
        }
        try format.print(heldRows + actions.map { flow in
            .dict(Dict([
                ("FlowId", .string(flow.flowId)), ("ClientId", .string(flow.clientId)),
                ("Action", .string(flow.request.artifacts.joined(separator: ","))), ("State", .string(flow.state.rawValue)),
                ("Creator", .string(flow.creator)), ("Created", isoTime(flow.createdAt)),
                ("Reason", .string(flow.request.parameters["Reason"] ?? "")),
                ("Parameters", .string(flow.request.parameters.filter { $0.key != "Reason" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))),
                ("Errors", .string(flow.errors.joined(separator: "; "))),
            ]))
        })
    }
}

/// `quarry respond approve A.… [--reason TEXT]`: a second analyst lets a pending action run, then
/// waits for it like the action itself would have.
struct RespondApprove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve another analyst's pending response action, and wait for it.")
    @Argument(help: "The action ID (A.…).") var actionId: String
    @Option(help: "A note kept with the decision.") var reason: String?
    @Option(help: "Seconds to wait for the client to act.") var wait: Double = 120
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let (id, note) = (actionId, reason)
        let action = try runBlocking { try await client.post("/respond/actions/\(id)/approve", body: ["reason": note], as: PendingAction.self) }
        guard let flowId = action.flowId else { throw ValidationError("\(id) was approved but started no flow") }
        let flow = try runBlocking { try await client.get("/flows/\(flowId)", as: FlowView.self) }.flow
        try ResponseWaiter(client: client, format: format, wait: wait).finish(flow, artifact: action.request.artifacts.joined(separator: ",")) { _ in true }
    }
}

/// `quarry respond deny A.… --reason TEXT`.
struct RespondDeny: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deny", abstract: "Refuse another analyst's pending response action.")
    @Argument(help: "The action ID (A.…).") var actionId: String
    @Option(help: "Why (kept with the decision).") var reason: String
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let (id, note) = (actionId, reason)
        let action = try runBlocking { try await client.post("/respond/actions/\(id)/deny", body: ["reason": note], as: PendingAction.self) }
        print("\(action.id): denied by \(action.decidedBy ?? "?")")
    }
}
