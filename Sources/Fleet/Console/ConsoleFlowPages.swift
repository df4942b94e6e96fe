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
        console.get("flows/:id/progress") { [self] _, context in
            try context.requireConsoleCaller().require("READ_RESULTS")
            return try await flowProgressStream(try context.parameters.require("id"))
        }
        console.get("flows/:id/uploads/:sha256") { [self] _, context in
            let caller = try context.requireConsoleCaller()
            try caller.require("READ_RESULTS")
            return try await consoleUploadResponse(context, caller: caller)
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
            return ResultExport.response(store: store, query: ResultQuery(flowId: id, artifact: chosen.artifact, source: chosen.source,
                                                                          filter: try Self.resultFilter(q)),
                                         format: format, filename: name, chunk: Self.resultChunkRows)
        }
    }

    /// A flow with one page of one source's results (`resultSection`).
    private func flowPage(_ id: String, _ query: Hummingbird.Parameters) async throws -> FlowPageView {
        guard let flow = try await store.flow(id) else { throw APIFailure(status: 404, message: "no flow \(id)") }
        let sources = try await store.resultSources(huntId: nil, flowId: id)
        let section = try await resultSection(base: "/flows/" + ConsoleText.pathSegment(id), sources: sources, query: query) { artifact, source, after in
            ResultQuery(flowId: id, artifact: artifact, source: source, limit: Self.consoleResultRows, after: after)
        }
        var page = FlowPageView(
            flow, sources: section.sources, results: section.results,
            uploads: try await store.uploads(flowId: id), logs: try await store.logs(flowId: id))
        page.exportCSV = section.exportCSV
        page.exportJSONL = section.exportJSONL
        page.filter = section.filter
        return page
    }
}
