import FleetCore
import Foundation
import Hummingbird
import QuarryConsole

// The console's pages: clients (search), a client (facts, labels, flows), hunts (progress), a hunt
// (progress, sources, a page of results read from the datastore), the audit log (administrators).
extension FleetServer {
    /// Rows per page of a hunt's results table.
    static let consoleResultRows = 100
    /// Hunts listed (newest first) with their progress.
    static let consoleHuntRows = 200

    func addConsolePages(_ console: RouterGroup<FleetRequestContext>) {
        console.get("clients") { [self] request, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            let query = request.uri.queryParameters
            let text = request.formQuery("q") ?? ""
            let search = ClientSearch(query: text, seen: query.string("seen"))
            let connected = connectedClientIds
            let view = ClientsPageView(
                search: search, query: text, clients: try await store.clients().map { ($0, connected.contains($0.clientId)) }, now: Date().timeIntervalSince1970)
            return consolePage(.clients, title: "Clients", view: view, context: context)
        }
        console.get("clients/:id") { [self] _, context in
            let caller = try context.requireConsoleCaller()
            try caller.require("READ_RESULTS")
            let id = try context.parameters.require("id")
            guard let client = try await store.client(id) else { throw APIFailure(status: 404, message: "no client \(id)") }
            var view = ClientPageView(
                client, connected: connectedClientIds.contains(id), canLabel: caller.user.role.permissions.contains("LABEL_CLIENT"),
                flows: try await store.flows(clientId: id, huntId: nil))
            if caller.user.role.permissions.contains("COLLECT_CLIENT") { view.collectLink = "/clients/" + ConsoleText.pathSegment(id) + "/collect" }
            return consolePage(.client, title: client.hostname.isEmpty ? id : client.hostname, view: view, context: context)
        }
        console.post("clients/:id/labels") { [self] request, context in
            let form = try await ConsoleForm.read(request, context)
            let caller = try context.requireSameSiteForm(form, request)
            try caller.require("LABEL_CLIENT")
            let id = try context.parameters.require("id")
            let add = form.value("add").map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
            let remove = form.value("remove")
            for label in [add, remove].compactMap({ $0 }) where label.utf8.count > 128 {
                throw APIFailure(status: 400, message: "a label is at most 128 bytes (\(label.prefix(20))…)")
            }
            guard try await store.client(id) != nil else { throw APIFailure(status: 404, message: "no client \(id)") }
            let request = LabelRequest(add: add.map { [$0] } ?? [], remove: remove.map { [$0] } ?? [])
            _ = try await store.labelClient(id, add: request.add, remove: request.remove)
            try await audit(caller, "label-client", id, try encode(request))
            poke()
            return ConsoleResponse.redirect("/clients/" + ConsoleText.pathSegment(id))
        }
        console.get("hunts") { [self] _, context in
            let caller = try context.requireConsoleCaller()
            try caller.require("READ_RESULTS")
            var rows: [HuntRowView] = []
            for hunt in try await store.hunts().sorted(by: { $0.createdAt > $1.createdAt }).prefix(Self.consoleHuntRows) {
                rows.append(HuntRowView(hunt, states: try await huntView(hunt.huntId).states))
            }
            return consolePage(.hunts, title: "Hunts", view: ["rows": rows, "newHunt": caller.user.role.permissions.contains("START_HUNT")], context: context)
        }
        console.get("hunts/:id") { [self] request, context in
            let caller = try context.requireConsoleCaller()
            try caller.require("READ_RESULTS")
            var page = try await huntPage(try context.parameters.require("id"), request.uri.queryParameters)
            if caller.user.role.permissions.contains("START_HUNT"), let hunt = try await store.hunt(page.hunt.id) {
                page.actions = HuntActionView.offered(for: hunt, now: Date().timeIntervalSince1970)
            }
            return consolePage(.hunt, title: "Hunt", view: page, context: context)
        }
        // Start, stop, archive: the same call as POST /api/v1/hunts/ID/ACTION.
        console.post("hunts/:id/:action") { [self] request, context in
            let form = try await ConsoleForm.read(request, context)
            let caller = try context.requireSameSiteForm(form, request)
            try caller.require("START_HUNT")
            let id = try context.parameters.require("id")
            let action = try context.parameters.require("action")
            guard ["start", "stop", "archive"].contains(action) else { throw APIFailure(status: 404, message: "no hunt action \(action)") }
            _ = try await changeHunt(id, action: action, caller: caller, raw: try encode(["action": action]))
            return ConsoleResponse.redirect("/hunts/" + ConsoleText.pathSegment(id))
        }
        console.get("hunts/progress") { [self] _, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            return huntsProgressStream()
        }
        console.get("hunts/:id/progress") { [self] _, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            return try await huntProgressStream(try context.parameters.require("id"))
        }
        console.get("hunts/:id/diff") { [self] request, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            let id = try context.parameters.require("id")
            let text = request.uri.queryParameters.string("round")
            let round = try text.map { text in
                guard let round = Int(text) else { throw APIFailure(status: 400, message: "round=\(text): expected a number") }
                return round
            }
            let diff = try await huntDiff(id, round: round)
            let view = HuntDiffPageView(huntId: id, round: diff.round, previous: diff.previous, added: diff.added, removed: diff.removed)
            return consolePage(.huntDiff, title: "Hunt \(id): round \(diff.round)", view: view, context: context)
        }
        console.get("hunts/:id/export") { [self] request, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            let id = try context.parameters.require("id")
            let q = request.uri.queryParameters
            guard let format = ResultExport.Format(rawValue: q.string("format") ?? "csv") else {
                throw APIFailure(status: 400, message: "format= csv or jsonl")
            }
            let view = try await huntView(id)
            guard let chosen = view.sources.first(where: { $0.artifact == q.string("artifact") && $0.source == (q.string("source") ?? "") }) ?? view.sources.first else {
                throw APIFailure(status: 404, message: "hunt \(id) has no results yet")
            }
            let name = [id, chosen.artifact, chosen.source].filter { !$0.isEmpty }.joined(separator: "-") + "." + format.rawValue
            return ResultExport.response(store: store, query: ResultQuery(huntId: id, artifact: chosen.artifact, source: chosen.source,
                                                                          filter: try Self.resultFilter(q)),
                                         format: format, filename: name, chunk: Self.resultChunkRows)
        }
        console.get("audit") { [self] request, context in
            try context.requireConsoleCaller().require("SERVER_ADMIN")
            let text = request.uri.queryParameters.string("before")
            let before = try text.map { text in
                guard let id = Int64(text) else { throw APIFailure(status: 400, message: "before=\(text): expected the id of an audit entry") }
                return id
            }
            let limit = config.limits.auditPageEntries
            let entries = try await store.auditLog(limit: limit, before: before)
            let next = entries.count == limit ? entries.last?.id.map { ConsoleText.link("/audit", [("before", String($0))]) } : nil
            return consolePage(.audit, title: "Audit log", view: ["entries": entries.map(AuditRowView.init), "next": next as Any], context: context)
        }
    }

    /// A hunt with one page of one source's results (the first source unless `artifact`/`source`
    /// say), read from the datastore after the cursor `after`: the page costs the same at row 10 as at row 10⁶.
    private func huntPage(_ id: String, _ query: Hummingbird.Parameters) async throws -> HuntPageView {
        let view = try await huntView(id)
        let section = try await resultSection(
            base: "/hunts/" + ConsoleText.pathSegment(id), sources: view.sources.map { ($0.artifact, $0.source, $0.rows) }, query: query
        ) { artifact, source, after in
            ResultQuery(huntId: id, artifact: artifact, source: source, limit: Self.consoleResultRows, after: after)
        }
        var page = HuntPageView(view.hunt, states: view.states, sources: section.sources, results: section.results)
        page.exportCSV = section.exportCSV
        page.exportJSONL = section.exportJSONL
        page.filter = section.filter
        return page
    }

    /// One source's page of results under `base` (a hunt's or a flow's page): the source the
    /// query names (else the first), its rows after the cursor `after` read from the datastore —
    /// so the page costs the same at row 10 as at row 10⁶ — the links to the next and first
    /// pages, the source picker and the export links.
    func resultSection(
        base: String, sources: [(artifact: String, source: String, rows: Int)], query: Hummingbird.Parameters,
        _ makeQuery: (_ artifact: String, _ source: String, _ after: ResultCursor?) -> ResultQuery
    ) async throws -> ConsoleResultSection {
        let chosen = sources.first { $0.artifact == query.string("artifact") && $0.source == (query.string("source") ?? "") } ?? sources.first
        let counts = sources.map { source in
            CountView(
                name: source.source.isEmpty ? source.artifact : source.artifact + "/" + source.source, count: source.rows,
                link: ConsoleText.link(base, [("artifact", source.artifact), ("source", source.source)]),
                selected: source.artifact == chosen?.artifact && source.source == chosen?.source)
        }
        var after: ResultCursor?
        if let text = query.string("after") {
            guard let cursor = ResultCursor(text) else { throw APIFailure(status: 400, message: "after=\(text): expected FLOW/SEQ/INDEX") }
            after = cursor
        }
        let filter = try Self.resultFilter(query)
        var rows: [ResultRow] = []
        if let chosen {
            var page = makeQuery(chosen.artifact, chosen.source, after)
            page.filter = filter
            rows = try await store.results(page)
        }
        let source: [(String, String?)] = [("artifact", chosen?.artifact), ("source", chosen?.source)]
        let here = source + [("column", filter?.column), ("contains", filter?.contains)]
        let next = rows.count == Self.consoleResultRows ? rows.last.map { ConsoleText.link(base, here + [("after", $0.cursor.description)]) } : nil
        let first = after == nil ? nil : ConsoleText.link(base, here)
        var section = ConsoleResultSection(sources: counts, results: ResultTableView(rows: rows, next: next, first: first))
        if let chosen {
            section.exportCSV = ConsoleText.link(base + "/export", here + [("format", "csv")])
            section.exportJSONL = ConsoleText.link(base + "/export", here + [("format", "jsonl")])
            section.filter = ResultFilterView(
                action: base, artifact: chosen.artifact, source: chosen.source, table: section.results, column: filter?.column,
                contains: filter?.contains, clear: filter == nil ? nil : ConsoleText.link(base, source))
        }
        return section
    }
}
