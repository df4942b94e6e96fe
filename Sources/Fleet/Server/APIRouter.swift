import Artifacts
import FleetCore
import Foundation
import VQL

/// An API call's outcome: a status and a JSON body, or an error with a message.
struct APIFailure: Error {
    var status: Int
    var message: String
}

/// The authenticated caller of an API request.
struct Caller {
    var user: UserRecord
    var remote: String

    func require(_ permission: String) throws {
        guard user.role.permissions.contains(permission) else {
            throw APIFailure(status: 403, message: "user \(user.name) (role \(user.role.rawValue)) lacks \(permission)")
        }
    }
}

extension FleetServer {
    /// Entry point of the analyst API (JSON over HTTPS) and /metrics.
    func handleAPI(_ request: HTTPRequest) async -> HTTPResponse {
        metrics.apiRequests.increment()
        if request.method == "GET", request.path == "/metrics" {
            return HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4", body: Data(metrics.text().utf8))
        }
        do {
            let caller = try await authenticate(request)
            let body = try await route(request, caller: caller)
            return HTTPResponse(status: 200, body: body)
        } catch let failure as APIFailure {
            return HTTPResponse(status: failure.status, body: (try? JSONSerialization.data(withJSONObject: ["error": failure.message])) ?? Data())
        } catch {
            return HTTPResponse(status: 500, body: (try? JSONSerialization.data(withJSONObject: ["error": String(describing: error)])) ?? Data())
        }
    }

    private func authenticate(_ request: HTTPRequest) async throws -> Caller {
        guard let header = request.header("Authorization"), header.hasPrefix("Bearer ") else {
            throw APIFailure(status: 401, message: "missing API key (Authorization: Bearer …)")
        }
        let hash = ConfigFile.sha256Hex(String(header.dropFirst(7)))
        if let cached = users.withLockedValue({ $0[hash] }) { return Caller(user: cached, remote: request.remote) }
        guard let user = try await store.user(apiKeySHA256: hash) else { throw APIFailure(status: 401, message: "unknown API key") }
        users.withLockedValue { $0[hash] = user }
        return Caller(user: user, remote: request.remote)
    }

    private func route(_ request: HTTPRequest, caller: Caller) async throws -> Data {
        let parts = request.path.split(separator: "/").map(String.init)
        guard parts.count >= 3, parts[0] == "api", parts[1] == "v1" else { throw APIFailure(status: 404, message: "no such endpoint \(request.path)") }
        let rest = Array(parts.dropFirst(2))
        switch (request.method, rest.first ?? "", rest.count) {
        case ("GET", "whoami", 1):
            return try json(["user": caller.user.name, "role": caller.user.role.rawValue])
        case ("GET", "clients", 1):
            try caller.require("READ_RESULTS")
            return try encode(try await clientViews())
        case ("GET", "clients", 2):
            try caller.require("READ_RESULTS")
            guard let view = try await clientViews().first(where: { $0.client.clientId == rest[1] }) else { throw APIFailure(status: 404, message: "no client \(rest[1])") }
            return try encode(view)
        case ("POST", "clients", 3) where rest[2] == "labels":
            try caller.require("LABEL_CLIENT")
            let body = try decode(LabelRequest.self, request.body)
            guard try await store.client(rest[1]) != nil else { throw APIFailure(status: 404, message: "no client \(rest[1])") }
            let labels = try await store.labelClient(rest[1], add: body.add, remove: body.remove)
            try await audit(caller, "label-client", rest[1], request.body)
            poke()
            return try encode(labels)
        case ("POST", "clients", 3) where rest[2] == "revoke":
            try caller.require("SERVER_ADMIN")
            try await store.revokeClient(rest[1])
            links.withLockedValue { $0[rest[1]] }?.close()
            try await audit(caller, "revoke-client", rest[1], request.body)
            return try json(["revoked": rest[1]])
        case ("POST", "collect", 1):
            let body = try decode(CollectRequestBody.self, request.body)
            return try encode(try await collect(body, caller: caller, raw: request.body))
        case ("GET", "flows", 1):
            try caller.require("READ_RESULTS")
            return try encode(try await store.flows(clientId: request.query["client_id"], huntId: request.query["hunt_id"]))
        case ("GET", "flows", 2):
            try caller.require("READ_RESULTS")
            guard let flow = try await store.flow(rest[1]) else { throw APIFailure(status: 404, message: "no flow \(rest[1])") }
            return try encode(FlowView(flow: flow, uploads: try await store.uploads(flowId: flow.flowId), logs: try await store.logs(flowId: flow.flowId)))
        case ("POST", "flows", 3) where rest[2] == "cancel":
            try caller.require("COLLECT_CLIENT")
            guard let flow = try await store.flow(rest[1]) else { throw APIFailure(status: 404, message: "no flow \(rest[1])") }
            try await store.requestCancel(flow.flowId)
            if flow.state == .scheduled {
                try await store.updateFlow(flow.flowId, state: .cancelled, startedAt: nil, endedAt: Date().timeIntervalSince1970, errors: ["cancelled by \(caller.user.name)"])
            } else if flow.state == .running {
                sendCancel(flow)
            }
            try await audit(caller, "cancel-flow", flow.flowId, request.body)
            return try encode(try await store.flow(flow.flowId))
        case ("GET", "results", 1):
            try caller.require("READ_RESULTS")
            let q = request.query
            let query = ResultQuery(
                huntId: q["hunt_id"], flowId: q["flow_id"], clientId: q["client_id"], artifact: q["artifact"], source: q["source"],
                round: q["round"].flatMap(Int.init), limit: q["limit"].flatMap(Int.init), offset: q["offset"].flatMap(Int.init) ?? 0)
            return try encode(try await store.results(query))
        case ("GET", "hunts", 1):
            try caller.require("READ_RESULTS")
            return try encode(try await store.hunts())
        case ("POST", "hunts", 1):
            let body = try decode(HuntRequestBody.self, request.body)
            return try encode(try await createHunt(body, caller: caller, raw: request.body))
        case ("GET", "hunts", 2):
            try caller.require("READ_RESULTS")
            var view = try await huntView(rest[1])
            if request.query["clients"] == "0" { view.clients = [] }
            return try encode(view)
        case ("GET", "hunts", 3) where rest[2] == "diff":
            try caller.require("READ_RESULTS")
            return try encode(try await huntDiff(rest[1], round: request.query["round"].flatMap(Int.init)))
        case ("POST", "hunts", 3):
            try caller.require("START_HUNT")
            return try encode(try await changeHunt(rest[1], action: rest[2], caller: caller, raw: request.body))
        case ("POST", "users", 1):
            try caller.require("SERVER_ADMIN")
            let body = try decode(UserRequestBody.self, request.body)
            let key = ConfigFile.randomSecret()
            try await store.addUser(UserRecord(name: body.name, role: body.role, apiKeySHA256: ConfigFile.sha256Hex(key), createdAt: Date().timeIntervalSince1970))
            try await audit(caller, "add-user", body.name, try JSONEncoder().encode(["name": body.name, "role": body.role.rawValue]))
            return try json(["name": body.name, "role": body.role.rawValue, "api_key": key])
        case ("GET", "users", 1):
            try caller.require("SERVER_ADMIN")
            return try encode(try await store.users().map { ["name": $0.name, "role": $0.role.rawValue] })
        case ("GET", "audit", 1):
            try caller.require("SERVER_ADMIN")
            return try encode(try await store.auditLog(limit: request.query["limit"].flatMap(Int.init) ?? 200))
        case ("GET", "artifacts", 1):
            try caller.require("READ_RESULTS")
            return try encode(repository.names.compactMap { repository.artifact(named: $0) }.map {
                ArtifactSummary(name: $0.name, description: $0.description ?? "", requiredPermissions: $0.requiredPermissions, parameters: $0.parameters.map(\.name))
            })
        default:
            throw APIFailure(status: 404, message: "no such endpoint \(request.method) \(request.path)")
        }
    }

    func audit(_ caller: Caller, _ action: String, _ target: String, _ details: Data) async throws {
        let text = String(data: details, encoding: .utf8).flatMap { $0.isEmpty ? nil : $0 } ?? "{}"
        try await store.audit(AuditEntry(time: Date().timeIntervalSince1970, user: caller.user.name, action: action, target: target, details: text, remote: caller.remote))
    }

    /// Checks artifact names (with "did you mean") and that the caller's role holds every permission
    /// the artifacts (and those they call) require.
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
