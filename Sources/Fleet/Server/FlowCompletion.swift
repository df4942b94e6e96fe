import FleetCore
import Foundation
import VQL

/// Velociraptor's `System.Flow.Completion`: one server event row per collection an agent finished
/// (ClientId, FlowId, and Flow as `get_flow()` shows it, with `artifacts_with_results`), so server
/// rules can act on finished flows and hunts — e.g. a YARA hit in any hunt — by following it with
/// `watch_monitoring(artifact='System.Flow.Completion')`.
enum FlowCompletion {
    static let artifact = "System.Flow.Completion"
}

extension FleetServer {
    /// Stores (and hands to live readers) the completion rows of flows whose final status was just
    /// stored. A failure is logged: the flows themselves are stored.
    func announceCompletions(_ flowIds: [String]) async {
        var rows: [String] = []
        do {
            for flowId in flowIds {
                guard let flow = try await store.flow(flowId) else { continue }
                let sources = try await store.resultSources(huntId: nil, flowId: flowId).map { SourceCount(artifact: $0.artifact, source: $0.source, rows: $0.rows) }
                let row = Dict([("ClientId", .string(flow.clientId)), ("FlowId", .string(flow.flowId)), ("Flow", ServerFlows.row(flow, sources: sources))])
                rows.append(JSONWriter.string(.dict(row)))
            }
            if !rows.isEmpty { try await storeServerEvents(artifact: FlowCompletion.artifact, source: "", rows: rows) }
        } catch {
            log("\(FlowCompletion.artifact): \(rows.count) of \(flowIds.count) completions not stored: \(error)")
        }
    }
}
