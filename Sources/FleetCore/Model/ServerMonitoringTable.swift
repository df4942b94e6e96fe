import Foundation

/// The server monitoring table: the SERVER_EVENT artifacts (with their parameters) every server
/// frontend runs continuously in-process. It is kept in the datastore as metadata notes of one
/// owner (one note per artifact, its entry as JSON), so SQLite and PostgreSQL hold it without a
/// migration and every frontend on a shared datastore sees the same table.
public enum ServerMonitoringTable {
    /// The metadata owner of the table (clients are `C.…`, users `user:…`, the server `server`).
    public static let owner = "server:monitoring"
    /// Most artifacts the table holds.
    public static let maxEntries = 64

    /// The entries stored in metadata notes, by artifact name; notes that do not decode are skipped.
    public static func entries(from notes: [String: String]) -> [MonitoringEntry] {
        notes.keys.sorted().compactMap { name in
            guard let data = notes[name]?.data(using: .utf8), var entry = try? JSONDecoder().decode(MonitoringEntry.self, from: data) else { return nil }
            entry.artifact = name
            entry.label = ""
            return entry
        }
    }

    /// The note that stores an entry.
    public static func note(for entry: MonitoringEntry) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(entry), as: UTF8.self)
    }
}

extension FleetStore {
    /// The server monitoring table, ordered by artifact.
    public func serverMonitoringTable() async throws -> [MonitoringEntry] {
        ServerMonitoringTable.entries(from: try await metadata(ServerMonitoringTable.owner))
    }

    /// Adds an entry (or replaces the entry of its artifact).
    public func setServerMonitoring(_ entry: MonitoringEntry) async throws {
        if let problem = entry.problem { throw StoreError("setServerMonitoring: \(problem)", refusesData: true) }
        try await setMetadata(ServerMonitoringTable.owner, [entry.artifact: try ServerMonitoringTable.note(for: entry)])
    }

    /// Removes an artifact's entry; false when there was none.
    public func removeServerMonitoring(artifact: String) async throws -> Bool {
        guard try await metadata(ServerMonitoringTable.owner)[artifact] != nil else { return false }
        try await setMetadata(ServerMonitoringTable.owner, [artifact: nil])
        return true
    }
}
