import FleetCore
import Foundation
import VQL

/// Starting, reading and cancelling one collection from VQL.
extension ServerFlows {
    /// Artifact parameters from `env` (for every artifact) and `spec` ({Artifact: {Param: value}});
    /// our requests carry one set of parameters, so spec entries of all artifacts are merged into it.
    static func parameters(_ ctx: CallContext) -> [String: String] {
        var parameters: [String: String] = [:]
        func add(_ value: Value?) {
            guard case .dict(let dict)? = value?.reduced() else { return }
            for key in dict.keys {
                let item = dict[key]?.reduced() ?? .null
                parameters[key] = item.stringValue ?? JSONWriter.string(item.materialized())
            }
        }
        add(ctx.value("env"))
        add(ctx.value("args"))
        if case .dict(let spec)? = ctx.value("spec")?.reduced() {
            for key in spec.keys { add(spec[key]) }
        }
        return parameters
    }

    /// The collection request the arguments describe (artifacts, parameters, limits).
    static func request(_ ctx: CallContext) -> CollectionRequest {
        var artifacts = ctx.strings("artifacts") ?? []
        if artifacts.isEmpty, case .dict(let spec)? = ctx.value("spec")?.reduced() { artifacts = spec.keys }
        return CollectionRequest(
            artifacts: artifacts, parameters: parameters(ctx), timeout: ctx.double("timeout"), maxRows: ctx.int("max_rows").map { Int($0) },
            maxUploadBytes: ctx.int("max_bytes"), cpuLimit: ctx.double("cpu_limit"))
    }

    static let collectClient = FunctionDeclaration(
        name: "collect_client",
        summary: "Schedules a collection of artifacts on one client and returns the new flow (its flow_id, request and state).",
        arguments: [
            ArgumentSpec("client_id", .string, required: true, "The client."),
            ArgumentSpec("artifacts", .stringList, required: true, "Artifacts to collect (may be left out when spec names them)."),
            ArgumentSpec("env", .dict, "Parameters for the artifacts."),
            ArgumentSpec("spec", .dict, "Parameters per artifact: {Artifact: {Parameter: value}}."),
            ArgumentSpec("args", .dict, "Parameters for the artifacts (Quarry's older name for env)."),
            ArgumentSpec("timeout", .int, "Seconds the collection may run."), ArgumentSpec("max_rows", .int, "Most rows the collection may return."),
            ArgumentSpec("max_bytes", .int, "Most bytes it may upload."), ArgumentSpec("cpu_limit", .float, "Percent of one CPU it may use."),
        ],
        returns: .dict,
        examples: ["SELECT collect_client(client_id='C.0123456789abcdef', artifacts='Generic.Client.Info').flow_id AS FlowId FROM scope()"]
    ) { ctx in
        guard let client = ctx.string("client_id") else { return .null }
        let body = CollectRequestBody(clientId: client, request: request(ctx))
        if let local = LocalFleet.of(ctx) { return local.collect(body, ctx) }
        return ServerPlugins.call(ctx, "collect_client") { api in row(try await api.post("/collect", body: body, as: FlowRecord.self)) }
    }

    static let getFlow = FunctionDeclaration(
        name: "get_flow", summary: "One flow's record, as a row of flows() shows it (with the sources that have rows).",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("flow_id", .string, required: true, "The flow.")],
        returns: .dict,
        examples: ["SELECT get_flow(client_id='C.0123456789abcdef', flow_id='F.0123456789abcdef').state AS State FROM scope()"]
    ) { ctx in
        guard let client = ctx.string("client_id"), let flow = ctx.string("flow_id") else { return .null }
        return ServerPlugins.call(ctx, "get_flow") { api in
            let view = try await fetchView(api, flow, client: client)
            return row(view.flow, sources: view.sources)
        }
    }

    static let cancelFlow = FunctionDeclaration(
        name: "cancel_flow", summary: "Cancels a flow that is waiting or running; returns the flow as it is then.",
        arguments: [ArgumentSpec("client_id", .string, required: true, "The client."), ArgumentSpec("flow_id", .string, required: true, "The flow.")],
        returns: .dict,
        examples: ["SELECT cancel_flow(client_id='C.0123456789abcdef', flow_id='F.0123456789abcdef').status AS Status FROM scope()"]
    ) { ctx in
        guard let client = ctx.string("client_id"), let flow = ctx.string("flow_id") else { return .null }
        return ServerPlugins.call(ctx, "cancel_flow") { api in
            _ = try await fetchView(api, flow, client: client)
            let cancelled = try await api.post("/flows/\(ServerPlugins.segment(flow))/cancel", body: [String: String](), as: FlowRecord.self)
            return row(cancelled)
        }
    }
}
