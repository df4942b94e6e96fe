import FleetCore
import Foundation
import Hummingbird
import QuarryConsole

/// The console's flow page (`/flows/ID`) and its export (`/flows/ID/export`): what a client's
/// collection produced, paged and exported like a hunt's results. Readers may see them.
extension FleetServer {
    func addConsoleFlowPages(_ console: RouterGroup<FleetRequestContext>) {
        console.get("flows/:id") { [self] request, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            let id = try context.parameters.require("id")
            let view = try await flowPage(id, request.uri.queryParameters)
            return consolePage(.flow, title: "Flow " + id, view: view, context: context)
        }
        console.get("flows/:id/export") { [self] request, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            let id = try context.parameters.require("id")
            let q = request.uri.queryParameters
            guard let format = ResultExport.Format(rawValue: q.string("format") ?? "csv") else {
                throw APIFailure(status: 400, message: "format= csv or jsonl")
            }
            guard try await store.flow(id) != nil else { throw APIFailure(status: 404, message: "no flow \(id)") }
            let sources = try await store.resultSources(huntId: nil, flowId: id)
            guard let chosen = sources.first(where: { $0.artifact == q.string("artifact") && $0.source == (q.string("source") ?? "") }) ?? sources.first else {
                throw APIFailure(status: 404, message: "flow \(id) has no results")
            }
            let name = [id, chosen.artifact, chosen.source].filter { !$0.isEmpty }.joined(separator: "-") + "." + format.rawValue
            return ResultExport.response(store: store, query: ResultQuery(flowId: id, artifact: chosen.artifact, source: chosen.source),
                                         format: format, filename: name, chunk: Self.resultChunkRows)
        }
    }

    /// A flow with one page of one source's results (the first source unless `artifact`/`source`
    /// say) after the cursor `after`.
    private func flowPage(_ id: String, _ query: Hummingbird.Parameters) async throws -> FlowPageView {
        guard let flow = try await store.flow(id) else { throw APIFailure(status: 404, message: "no flow \(id)") }
        let sources = try await store.resultSources(huntId: nil, flowId: id)
        let chosen = sources.first { $0.artifact == query.string("artifact") && $0.source == (query.string("source") ?? "") } ?? sources.first
        let base = "/flows/" + ConsoleText.pathSegment(id)
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
        var rows: [ResultRow] = []
        if let chosen {
            rows = try await store.results(
                ResultQuery(flowId: id, artifact: chosen.artifact, source: chosen.source, limit: Self.consoleResultRows, after: after))
        }
        let here: [(String, String?)] = [("artifact", chosen?.artifact), ("source", chosen?.source)]
        let next = rows.count == Self.consoleResultRows ? rows.last.map { ConsoleText.link(base, here + [("after", $0.cursor.description)]) } : nil
        let first = after == nil ? nil : ConsoleText.link(base, here)
        var page = FlowPageView(
            flow, sources: counts, results: ResultTableView(rows: rows, next: next, first: first),
            uploads: try await store.uploads(flowId: id), logs: try await store.logs(flowId: id))
        if chosen != nil {
            page.exportCSV = ConsoleText.link(base + "/export", here + [("format", "csv")])
            page.exportJSONL = ConsoleText.link(base + "/export", here + [("format", "jsonl")])
        }
        return page
    }
}
