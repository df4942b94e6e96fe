import FleetCore
import Foundation

/// The isolation state of each client as the server knows it, kept as metadata notes of an owner
/// of its own (`MetadataOwner.isolation`, apart from the notes analysts set on the client) so
/// every frontend and both datastores share it without a schema change. Two sources keep it current: the agent's hello at every
/// connection (which also catches a dead man's switch that lifted isolation while the server was
/// unreachable), and the rows of the isolation artifacts as they arrive.
enum ClientIsolation {
    /// The built-in artifacts whose rows carry an `Isolated` column.
    static let artifacts: Set<String> = ["Linux.Response.Isolate", "Linux.Response.Unisolate"]

    static func read(_ notes: [String: String]) -> (Bool?, Double?) {
        (notes["isolated"].map { $0 == "true" }, notes["isolation_reported"].flatMap(Double.init))
    }
}

extension FleetServer {
    /// Records what a client reported; an unchanged state is not written again.
    func noteIsolation(clientId: String, isolated: Bool, source: String) async {
        let owner = MetadataOwner.isolation(clientId)
        let current = (try? await store.metadata(owner)) ?? [:]
        let value = isolated ? "true" : "false"
        guard current["isolated"] != value || current["isolation_source"] != source else { return }
        _ = try? await store.setMetadata(owner, [
            "isolated": value, "isolation_reported": String(Date().timeIntervalSince1970), "isolation_source": source,
        ])
        if current["isolated"] != value { log("agent \(clientId): isolation \(isolated ? "in force" : "lifted") (\(source))") }
    }

    /// The `Isolated` column of an isolation artifact's rows (the last row wins).
    func learnIsolation(clientId: String, rows: [String]) async {
        var state: Bool?
        for row in rows {
            if let object = (try? JSONSerialization.jsonObject(with: Data(row.utf8))) as? [String: Any], let isolated = object["Isolated"] as? Bool {
                state = isolated
            }
        }
        if let state { await noteIsolation(clientId: clientId, isolated: state, source: "action") }
    }
}
