import Artifacts
import FleetCore
import Foundation
import Hummingbird
import QuarryConsole

// "Collect" from a client page and "New hunt": an artifact picker and the chosen artifact's
// parameters as a typed form (a hunt's conditions and limits besides). The forms go through the
// same `collect` and `createHunt` calls as /api/v1 (roles, artifact permissions, revoked clients,
// approvals for response artifacts, the parameter check); a refused form comes back with the
// problems beside their fields and the values kept.
extension FleetServer {
    /// Collection timeouts the forms accept (seconds).
    static let consoleTimeoutRange = 1.0...86_400.0

    func addConsoleCollectPages(_ console: RouterGroup<FleetRequestContext>) {
        console.get("clients/:id/collect") { [self] request, context in
            try context.requireConsoleCaller().require("COLLECT_CLIENT")
            let client = try await consoleClient(try context.parameters.require("id"))
            let view = collectView(.client(id: client.clientId, hostname: client.hostname), query: request.formQuery("q") ?? "", artifact: request.formQuery("artifact"))
            return consolePage(.collect, title: "Collect", view: view, context: context)
        }
        console.post("clients/:id/collect") { [self] request, context in
            let form = try await ConsoleForm.read(request, context)
            let caller = try context.requireSameSiteForm(form, request)
            try caller.require("COLLECT_CLIENT")
            let client = try await consoleClient(try context.parameters.require("id"))
            let target = CollectPageView.Target.client(id: client.clientId, hostname: client.hostname)
            let sent = try readCollectForm(form)
            if !sent.problems.isEmpty {
                return consolePage(.collect, title: "Collect", view: collectView(target, sent: sent), context: context, status: .badRequest)
            }
            let body = CollectRequestBody(clientId: client.clientId, request: sent.request)
            switch try await collect(body, caller: caller, raw: try encode(body)) {
            case .started(let flow):
                return ConsoleResponse.redirect("/clients/" + ConsoleText.pathSegment(client.clientId) + "?flow=" + ConsoleText.pathSegment(flow.flowId))
            case .awaitingApproval: return ConsoleResponse.redirect("/actions")
            }
        }
        console.get("hunts/new") { [self] request, context in
            try context.requireConsoleCaller().require("START_HUNT")
            let view = collectView(.hunt(HuntSettingsView()), query: request.formQuery("q") ?? "", artifact: request.formQuery("artifact"))
            return consolePage(.collect, title: "New hunt", view: view, context: context)
        }
        console.post("hunts/new") { [self] request, context in
            let form = try await ConsoleForm.read(request, context)
            let caller = try context.requireSameSiteForm(form, request)
            try caller.require("START_HUNT")
            var sent = try readCollectForm(form)
            let settings = HuntSettingsView(
                description: form.value("description") ?? "", labels: form.value("labels") ?? "", excludeLabels: form.value("exclude_labels") ?? "",
                os: form.value("os") ?? "", expiryHours: form.value("expiry_hours") ?? "", clientLimit: form.value("client_limit") ?? "")
            let hours = Double(settings.expiryHours.trimmingCharacters(in: .whitespaces))
            if hours == nil || !(1...(24.0 * 366)).contains(hours ?? 0) { sent.problems.append("expiry: from 1 hour to a year") }
            let limitText = settings.clientLimit.trimmingCharacters(in: .whitespaces)
            let limit = Int(limitText)
            if !limitText.isEmpty && (limit ?? 0) < 1 { sent.problems.append("client limit: a whole number of at least 1, or empty") }
            if settings.description.count > 1000 { sent.problems.append("description: at most 1000 characters") }
            if !sent.problems.isEmpty {
                return consolePage(.collect, title: "New hunt", view: collectView(.hunt(settings), sent: sent), context: context, status: .badRequest)
            }
            func list(_ text: String) -> [String] { text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
            let os = settings.os.trimmingCharacters(in: .whitespaces)
            var body = HuntRequestBody(
                request: sent.request, conditions: HuntConditions(labels: list(settings.labels), excludeLabels: list(settings.excludeLabels), os: os.isEmpty ? nil : os))
            body.description = settings.description
            body.expiresIn = (hours ?? 168) * 3600
            body.clientLimit = limitText.isEmpty ? nil : limit
            let hunt = try await createHunt(body, caller: caller, raw: try encode(body))
            return ConsoleResponse.redirect("/hunts/" + ConsoleText.pathSegment(hunt.huntId))
        }
    }

    /// What a collect or new-hunt form asked for, and what is wrong with it.
    struct SentCollectForm {
        var artifact: Artifact
        var request: CollectionRequest
        /// The values as sent, by parameter name (to show them again).
        var shown: [String: String]
        var timeout: String
        var problems: [String]
    }

    /// Reads the artifact, its parameters (only values differing from the defaults are kept: the
    /// agent compiles the rest itself) and the timeout from a form, checked as the API checks them.
    func readCollectForm(_ form: ConsoleForm) throws -> SentCollectForm {
        let name = form.value("artifact") ?? ""
        guard let artifact = repository.artifact(named: name), artifact.type == .client else {
            throw APIFailure(status: 400, message: "no client artifact \(name)")
        }
        var values: [String: String] = [:]
        var shown: [String: String] = [:]
        for parameter in artifact.parameters where parameter.type != "hidden" {
            let submitted = form.values("p." + parameter.name)
            guard !submitted.isEmpty else { continue }
            let value = parameter.type == "multichoice" ? Self.jsonList(submitted) : submitted[0]
            shown[parameter.name] = value
            if value != (parameter.defaultValue ?? "") { values[parameter.name] = value }
        }
        var problems = ParameterCheck.problems(artifact, values)
        let timeoutText = (form.value("timeout") ?? "").trimmingCharacters(in: .whitespaces)
        var timeout: Double?
        if !timeoutText.isEmpty {
            if let seconds = Double(timeoutText), Self.consoleTimeoutRange.contains(seconds) {
                timeout = seconds
            } else {
                problems.append("timeout: '\(timeoutText.prefix(20))' is not a number of seconds from 1 to 86400")
            }
        }
        return SentCollectForm(
            artifact: artifact, request: CollectionRequest(artifacts: [artifact.name], parameters: values, timeout: timeout), shown: shown,
            timeout: timeoutText, problems: problems)
    }

    private func consoleClient(_ id: String) async throws -> ClientRecord {
        guard let client = try await store.client(id) else { throw APIFailure(status: 404, message: "no client \(id)") }
        return client
    }

    /// The page for a form that came back refused.
    func collectView(_ target: CollectPageView.Target, sent: SentCollectForm) -> CollectPageView {
        collectView(target, query: "", artifact: sent.artifact.name, values: sent.shown, problems: sent.problems, timeout: sent.timeout)
    }

    /// The page for `target`: the CLIENT artifacts matching `query`, and `artifact`'s form with
    /// `values` (submitted text, by parameter name) and `problems` (whole-form and per-field).
    func collectView(
        _ target: CollectPageView.Target, query: String, artifact name: String?, values: [String: String] = [:], problems: [String] = [], timeout: String = ""
    ) -> CollectPageView {
        let candidates = repository.names.compactMap { repository.artifact(named: $0) }.filter { $0.type == .client }
            .sorted { $0.name < $1.name }.map { (name: $0.name, description: $0.description ?? "") }
        let artifact = name.flatMap { repository.artifact(named: $0) }.flatMap { $0.type == .client ? $0 : nil }
        var fields: [ParameterFieldView] = []
        for (index, parameter) in (artifact?.parameters ?? []).enumerated() where parameter.type != "hidden" {
            let spec = ParameterSpec(
                name: parameter.name, type: parameter.type, defaultValue: parameter.defaultValue ?? "", description: parameter.description ?? "",
                choices: parameter.choices)
            let error = problems.first { $0.hasPrefix(parameter.name + ":") }
            fields.append(ParameterFieldView(spec, value: values[parameter.name], error: error, index: index))
        }
        return CollectPageView(
            target: target, query: query, artifacts: candidates, artifact: artifact?.name, artifactDescription: artifact?.description ?? "",
            fields: fields, problems: problems, timeout: timeout)
    }

    /// Several selected options as the JSON list a multichoice parameter holds.
    static func jsonList(_ values: [String]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: values), let text = String(data: data, encoding: .utf8) else { return "[]" }
        return text
    }
}
