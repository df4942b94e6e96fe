import Artifacts
import FleetCore
import Foundation
import Hummingbird
import HummingbirdWebSocket
import VQL

extension FleetServer {
    /// The HTTP side of the listener: /metrics, /server.pem, and the analyst API under /api/v1 (JSON, an API key
    /// in `Authorization: Bearer`). Middleware runs in this order: errors as JSON, request count,
    /// the per-address request rate, then, for the API, the key — all before any body is read.
    /// Bodies are read by the routes that take one, each with its own cap (`ServerLimits`).
    func makeRouter() -> Router<FleetRequestContext> {
        let router = Router(context: FleetRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: RequestCountMiddleware(metrics: metrics))
        router.add(middleware: RateLimitMiddleware(limiter: requestLimiter))
        router.get("metrics") { [metrics] _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        // The server's certificate (public), where Velociraptor serves it: agents' artifacts fetch
        // it to check that a frontend is reachable (Linux.Remediation.Quarantine).
        router.get("server.pem") { [certificate = config.server.certificate] _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/x-pem-file"],
                body: .init(byteBuffer: ByteBuffer(string: certificate)))
        }
        let api = router.group("api/v1").add(middleware: APIKeyAuthenticator(keys: keys))
        addClientRoutes(api)
        addFlowRoutes(api)
        addHuntRoutes(api)
        addUserRoutes(api)
        addServerVQLRoutes(api)
        addAlertRoutes(api)
        addMonitoringRoutes(api)
        addServerExtrasRoutes(api)
        addUploadRoutes(api)
        addImportRoutes(api)
        addApprovalRoutes(api)
        addUploadRoutes(api: api, router: router)
        addServerMonitoringRoutes(api)
        addConsoleRoutes(router)
        api.get("results") { [self] request, context in try await results(request, context) }
        api.get("audit") { [self] request, context in try await auditPage(request, context) }
        api.get("artifacts") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(repository.names.compactMap { repository.artifact(named: $0) }.map {
                ArtifactSummary(name: $0.name, description: $0.description ?? "", requiredPermissions: $0.requiredPermissions, parameters: $0.parameters.map(\.name))
            })
        }
        return router
    }

    /// The upgrade side of the listener: the agents' WebSocket at /agent. The peer is known from
    /// the TLS handshake: with a certificate from the fleet's CA it is that client, and its messages
    /// may be as large as a batch; without one it may only enrol, in one small message, and its
    /// upgrades count against its address's request rate.
    func makeAgentRouter() -> Router<FleetRequestContext> {
        let router = Router(context: FleetRequestContext.self)
        let limits = config.limits
        router.ws(
            "agent",
            shouldUpgrade: { [self] _, context in
                if await context.peerCertificateName() == nil, case .deny = requestLimiter.take(context.address) { return .dontUpgrade }
                return .upgrade([:])
            },
            onUpgrade: { [self] inbound, outbound, webSocket in
                let context = webSocket.requestContext
                let name = await context.peerCertificateName()
                try await AgentSocket.serve(
                    inbound: inbound, outbound: outbound, channel: context.channel, certificateName: name, remote: context.remote,
                    maxMessage: name == nil ? limits.maxEnrolmentMessageBytes : limits.maxAgentMessageBytes
                ) { socket in
                    Task { await self.serve(socket) }
                }
            })
        return router
    }

    private func addClientRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("whoami") { _, context in
            let caller = try context.requireCaller()
            return try okJSON(["user": caller.user.name, "role": caller.user.role.rawValue])
        }
        api.get("clients") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(try await clientViews())
        }
        api.get("clients/:id") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            let id = try context.parameters.require("id")
            guard var view = try await clientViews().first(where: { $0.client.clientId == id }) else { throw APIFailure(status: 404, message: "no client \(id)") }
            (view.isolated, view.isolationReportedAt) = ClientIsolation.read(try await store.metadata(MetadataOwner.isolation(id)))
            return try ok(view)
        }
        api.post("clients/:id/labels") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("LABEL_CLIENT")
            let id = try context.parameters.require("id")
            let (body, raw) = try await context.decode(LabelRequest.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard try await store.client(id) != nil else { throw APIFailure(status: 404, message: "no client \(id)") }
            let labels = try await store.labelClient(id, add: body.add, remove: body.remove)
            try await audit(caller, "label-client", id, raw)
            await pushMonitoring(to: id)
            poke()
            return try ok(labels)
        }
        api.post("clients/:id/revoke") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let id = try context.parameters.require("id")
            let raw = try await context.body(of: request, limit: config.limits.maxRequestBodyBytes)
            try await store.revokeClient(id)
            links.withLockedValue { $0[id] }?.close()
            try await audit(caller, "revoke-client", id, raw)
            return try okJSON(["revoked": id])
        }
        api.post("collect") { [self] request, context in
            let (body, raw) = try await context.decode(CollectRequestBody.self, from: request, limit: config.limits.maxCollectionBodyBytes)
            switch try await collect(body, caller: context.requireCaller(), raw: raw) {
            case .started(let flow): return try ok(flow)
            case .awaitingApproval(let action): return jsonResponse(try encode(action), status: .accepted)
            }
        }
    }

    private func addFlowRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("flows") { [self] request, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(try await store.flows(clientId: request.uri.queryParameters.string("client_id"), huntId: request.uri.queryParameters.string("hunt_id")))
        }
        api.get("flows/:id") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            let id = try context.parameters.require("id")
            guard let flow = try await store.flow(id) else { throw APIFailure(status: 404, message: "no flow \(id)") }
            let sources = try await store.resultSources(huntId: nil, flowId: flow.flowId).map { SourceCount(artifact: $0.artifact, source: $0.source, rows: $0.rows) }
            return try ok(FlowView(flow: flow, uploads: try await store.uploads(flowId: flow.flowId), logs: try await store.logs(flowId: flow.flowId), sources: sources))
        }
        api.post("flows/:id/cancel") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("COLLECT_CLIENT")
            let id = try context.parameters.require("id")
            let raw = try await context.body(of: request, limit: config.limits.maxRequestBodyBytes)
            guard let flow = try await store.flow(id) else { throw APIFailure(status: 404, message: "no flow \(id)") }
            try await store.requestCancel(flow.flowId)
            if flow.state == .scheduled {
                try await store.updateFlow(flow.flowId, state: .cancelled, startedAt: nil, endedAt: Date().timeIntervalSince1970, errors: ["cancelled by \(caller.user.name)"])
            } else if flow.state == .running {
                sendCancel(flow)
            }
            try await audit(caller, "cancel-flow", flow.flowId, raw)
            return try ok(try await store.flow(flow.flowId))
        }
    }

    private func addHuntRoutes(_ api: RouterGroup<FleetRequestContext>) {
        api.get("hunts") { [self] _, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(try await store.hunts())
        }
        api.post("hunts") { [self] request, context in
            let (body, raw) = try await context.decode(HuntRequestBody.self, from: request, limit: config.limits.maxCollectionBodyBytes)
            return try ok(try await createHunt(body, caller: context.requireCaller(), raw: raw))
        }
        api.get("hunts/:id") { [self] request, context in
            try context.requireCaller().require("READ_RESULTS")
            var view = try await huntView(try context.parameters.require("id"))
            if request.uri.queryParameters.string("clients") == "0" { view.clients = [] }
            return try ok(view)
        }
        api.get("hunts/:id/diff") { [self] request, context in
            try context.requireCaller().require("READ_RESULTS")
            return try ok(try await huntDiff(try context.parameters.require("id"), round: request.uri.queryParameters.string("round").flatMap { Int($0) }))
        }
        api.post("hunts/:id/:action") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("START_HUNT")
            let raw = try await context.body(of: request, limit: config.limits.maxRequestBodyBytes)
            let id = try context.parameters.require("id")
            switch try context.parameters.require("action") {
            case "add": return try ok(try await addToHunt(id, try decode(HuntAddBody.self, raw), caller: caller, raw: raw))
            case "update": return try ok(try await updateHunt(id, try decode(HuntUpdateBody.self, raw), caller: caller, raw: raw))
            case let action: return try ok(try await changeHunt(id, action: action, caller: caller, raw: raw))
            }
        }
    }

    /// GET /audit?limit=&before=: a page of the audit log, newest first (administrators).
    private func auditPage(_ request: Request, _ context: FleetRequestContext) async throws -> Response {
        try context.requireCaller().require("SERVER_ADMIN")
        let query = request.uri.queryParameters
        let limit = ServerLimits.page(query.int("limit"), default: config.limits.auditPageEntries, max: config.limits.maxAuditPageEntries)
        var before: Int64?
        if let text = query.string("before") {
            guard let id = Int64(text) else { throw APIFailure(status: 400, message: "before=\(text): expected the id of an audit entry") }
            before = id
        }
        return try ok(try await store.auditLog(limit: limit, before: before))
    }

    func audit(_ caller: Caller, _ action: String, _ target: String, _ details: Data) async throws {
        let text = String(data: details, encoding: .utf8).flatMap { $0.isEmpty ? nil : $0 } ?? "{}"
        try await store.audit(AuditEntry(time: Date().timeIntervalSince1970, user: caller.user.name, action: action, target: target, details: text, remote: caller.remote))
    }

    /// Checks artifact names (with "did you mean") and that the caller's role holds every permission
    /// the artifacts (and those they call) require.
    /// Refuses parameter values that no requested artifact declares or that do not fit the declared
    /// type (`ParameterCheck`): a typo is a 400 here, not an error on every agent of a hunt.
    func checkParameters(_ request: CollectionRequest) throws {
        let artifacts = request.artifacts.compactMap { repository.artifact(named: $0) }
        var problems: [String] = []
        for (key, value) in request.parameters.sorted(by: { $0.key < $1.key }) {
            let declaring = artifacts.filter { $0.parameters.contains { $0.name == key } }
            if declaring.isEmpty {
                let names = artifacts.flatMap { $0.parameters.map(\.name) }
                let hint = NameSuggester.closest(to: key, in: names).map { " (did you mean '\($0)'?)" } ?? ""
                problems.append("no requested artifact has a parameter '\(key)'\(hint)")
                continue
            }
            for artifact in declaring {
                if let problem = ParameterCheck.problems(artifact, [key: value]).first { problems.append(problem) }
            }
        }
        if !problems.isEmpty { throw APIFailure(status: 400, message: problems.joined(separator: "; ")) }
    }

    func checkArtifacts(_ names: [String], caller: Caller) throws {
        guard !names.isEmpty else { throw APIFailure(status: 400, message: "no artifact given") }
        var pending = names
        var seen = Set<String>()
        while let name = pending.popLast() {
            guard seen.insert(name).inserted else { continue }
            guard let artifact = repository.artifact(named: name) else {
                let hint = NameSuggester.closest(to: name, in: repository.names).map { " (did you mean \($0)?)" } ?? ""
                throw APIFailure(status: 400, message: "no artifact \(name)\(hint)")
            }
            for permission in artifact.requiredPermissions {
                try caller.require(permission.uppercased())
            }
            pending.append(contentsOf: ArtifactRepository.dependencies(of: artifact))
        }
    }
}

extension Hummingbird.Parameters {
    /// A query parameter as text (the first if repeated).
    func string(_ key: String) -> String? { get(key) }
    /// A query parameter as a number; nil when absent or not a number.
    func int(_ key: String) -> Int? { get(key).flatMap { Int($0) } }
}

/// A 200 answer with `value` as JSON.
func ok<T: Encodable>(_ value: T) throws -> Response {
    jsonResponse(try encode(value))
}

/// A 200 answer with a JSON object.
func okJSON(_ object: [String: Any]) throws -> Response {
    jsonResponse(try json(object))
}

func jsonResponse(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func json(_ object: [String: Any]) throws -> Data {
    try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
}

/// A JSON object as text (log lines, audit details).
func jsonText(_ object: [String: Any]) -> String {
    (try? json(object)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}

func encode<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value)
}

func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch {
        throw APIFailure(status: 400, message: "bad request body: \(error)")
    }
}
