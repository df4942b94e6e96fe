import FleetCore
import Foundation
import VQL

/// Creating and changing hunts from VQL.
extension ServerHunts {
    /// `expires` as seconds from now: a timestamp, or a number of seconds since 1970 (microseconds
    /// when it is that large, as Velociraptor's times are).
    static func expiresIn(_ value: Value?) -> Double? {
        let now = Date().timeIntervalSince1970
        switch value?.reduced() {
        case .timestamp(let t)?: return t.seconds - now
        case let v?:
            guard var seconds = v.doubleValue else { return nil }
            if seconds > 1e14 { seconds /= 1e6 }
            return seconds - now
        case nil: return nil
        }
    }

    static let hunt = FunctionDeclaration(
        name: "hunt",
        summary: "Creates a hunt over the fleet and returns it (its hunt_id, state and request). It starts at once unless pause=TRUE.",
        arguments: [
            ArgumentSpec("artifacts", .stringList, required: true, "Artifacts to collect (may be left out when spec names them)."),
            ArgumentSpec("description", .string, "What the hunt is for."),
            ArgumentSpec("expires", .any, "When the hunt stops scheduling clients (a timestamp; default in 7 days)."),
            ArgumentSpec("env", .dict, "Parameters for the artifacts."),
            ArgumentSpec("spec", .dict, "Parameters per artifact: {Artifact: {Parameter: value}}."),
            ArgumentSpec("timeout", .int, "Seconds each collection may run."), ArgumentSpec("max_rows", .int, "Most rows per client."),
            ArgumentSpec("max_bytes", .int, "Most bytes each client may upload."), ArgumentSpec("cpu_limit", .float, "Percent of one CPU per client."),
            ArgumentSpec("pause", .bool, "Create it paused."), ArgumentSpec("include_labels", .stringList, "Only clients with one of these labels."),
            ArgumentSpec("exclude_labels", .stringList, "Never clients with one of these labels."), ArgumentSpec("os", .string, "Only clients of this OS (e.g. linux)."),
        ],
        returns: .dict,
        examples: ["SELECT hunt(artifacts='Linux.Sys.Pslist', description='who runs', include_labels='web').hunt_id AS HuntId FROM scope()"]
    ) { ctx in
        var body = HuntRequestBody(
            request: ServerFlows.request(ctx),
            conditions: HuntConditions(labels: ctx.strings("include_labels") ?? [], excludeLabels: ctx.strings("exclude_labels") ?? [], os: ctx.string("os")))
        body.description = ctx.string("description") ?? ""
        body.paused = ctx.bool("pause") ?? false
        if ctx.has("expires") {
            guard let seconds = expiresIn(ctx.value("expires")), seconds > 0 else {
                ctx.log(.error, "hunt: expires must be a time in the future")
                return .null
            }
            body.expiresIn = seconds
        }
        let request = body
        return ServerPlugins.call(ctx, "hunt") { api in row(try await api.post("/hunts", body: request, as: HuntRecord.self)) }
    }

    static let huntAdd = FunctionDeclaration(
        name: "hunt_add",
        summary: "Adds one client to a hunt (whatever the hunt's conditions say) and returns the client's flow in it.",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("hunt_id", .string, required: true, "The hunt.")],
        returns: .dict,
        examples: ["SELECT hunt_add(client_id='C.0123456789abcdef', hunt_id='H.0123abcd').flow_id AS FlowId FROM scope()"]
    ) { ctx in
        guard let client = ctx.string("client_id"), let huntId = ctx.string("hunt_id") else { return .null }
        return ServerPlugins.call(ctx, "hunt_add") { api in
            ServerFlows.row(try await api.post("/hunts/\(ServerPlugins.segment(huntId))/add", body: HuntAddBody(clientId: client), as: FlowRecord.self))
        }
    }

    static let huntUpdate = FunctionDeclaration(
        name: "hunt_update",
        summary: "Starts or stops a hunt, or changes its description, expiry or labels; returns the hunt as it is then.",
        arguments: [
            ArgumentSpec("hunt_id", .string, required: true, "The hunt."), ArgumentSpec("start", .bool, "Start (or restart) it."),
            ArgumentSpec("stop", .bool, "Stop it."), ArgumentSpec("description", .string, "A new description."),
            ArgumentSpec("expires", .any, "A new expiry (a timestamp)."), ArgumentSpec("add_labels", .stringList, "Labels to add to its conditions."),
            ArgumentSpec("del_labels", .stringList, "Labels to remove from its conditions."),
        ],
        returns: .dict,
        examples: ["SELECT hunt_update(hunt_id='H.0123abcd', description='renamed').hunt_description AS Description FROM scope()"]
    ) { ctx in
        guard let huntId = ctx.string("hunt_id") else { return .null }
        var expiresAt: Double?
        if ctx.has("expires") {
            guard let seconds = expiresIn(ctx.value("expires")) else {
                ctx.log(.error, "hunt_update: expires must be a time")
                return .null
            }
            expiresAt = Date().timeIntervalSince1970 + seconds
        }
        let update = HuntUpdateBody(
            description: ctx.string("description"), expiresAt: expiresAt, addLabels: ctx.strings("add_labels") ?? [], removeLabels: ctx.strings("del_labels") ?? [])
        let changes = update.description != nil || update.expiresAt != nil || !update.addLabels.isEmpty || !update.removeLabels.isEmpty
        let start = ctx.bool("start") ?? false, stop = ctx.bool("stop") ?? false
        return ServerPlugins.call(ctx, "hunt_update") { api in
            let path = "/hunts/\(ServerPlugins.segment(huntId))"
            var hunt = try await fetchView(api, huntId).hunt
            if changes { hunt = try await api.post(path + "/update", body: update, as: HuntRecord.self) }
            if stop { hunt = try await api.post(path + "/stop", body: [String: String](), as: HuntRecord.self) }
            if start && !stop { hunt = try await api.post(path + "/start", body: [String: String](), as: HuntRecord.self) }
            return row(hunt)
        }
    }
}
