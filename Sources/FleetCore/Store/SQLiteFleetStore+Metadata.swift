import Foundation

// Metadata notes and hunt deletion on SQLite.
extension SQLiteFleetStore {
    public func metadata(_ owner: String) async throws -> [String: String] {
        try read("metadata \(owner)") { db in
            try Self.notes(db, owner)
        }
    }

    @discardableResult
    public func setMetadata(_ owner: String, _ changes: [String: String?]) async throws -> [String: String] {
        try write("setMetadata \(owner)") { db in
            for (name, value) in changes.sorted(by: { $0.key < $1.key }) {
                if let value {
                    try db.run("INSERT INTO metadata (owner, name, value) VALUES (?, ?, ?) ON CONFLICT (owner, name) DO UPDATE SET value = excluded.value", owner, name, value)
                } else {
                    try db.run("DELETE FROM metadata WHERE owner = ? AND name = ?", owner, name)
                }
            }
            return try Self.notes(db, owner)
        }
    }

    public func deleteHunt(_ huntId: String) async throws -> [String] {
        try write("deleteHunt \(huntId)") { db in
            let flows = try db.query("SELECT flow_id FROM flows WHERE hunt_id = ?", [huntId]) { $0.text(0) }
            for flow in flows {
                for table in ["results", "uploads", "flow_logs", "flow_batches", "flows"] {
                    try db.run("DELETE FROM \(table) WHERE flow_id = ?", flow)
                }
            }
            guard try db.run("DELETE FROM hunts WHERE hunt_id = ?", huntId) > 0 else { throw StoreError("deleteHunt: no hunt \(huntId)") }
            return flows
        }
    }

    public func deleteFlow(_ flowId: String) async throws -> Bool {
        try write("deleteFlow \(flowId)") { db in
            for table in ["results", "uploads", "flow_logs", "flow_batches"] {
                try db.run("DELETE FROM \(table) WHERE flow_id = ?", flowId)
            }
            return try db.run("DELETE FROM flows WHERE flow_id = ?", flowId) > 0
        }
    }

    public func deleteClient(_ clientId: String) async throws -> ClientDeletion? {
        try write("deleteClient \(clientId)") { db in
            guard try !db.query("SELECT 1 FROM clients WHERE client_id = ?", [clientId], { _ in 1 }).isEmpty else { return nil }
            let flows = try db.query("SELECT flow_id FROM flows WHERE client_id = ?", [clientId]) { $0.text(0) }
            for flow in flows {
                for table in ["results", "uploads", "flow_logs", "flow_batches", "flows"] {
                    try db.run("DELETE FROM \(table) WHERE flow_id = ?", flow)
                }
            }
            let events = try db.run("DELETE FROM events WHERE client_id = ?", clientId)
            try db.run("DELETE FROM event_batches WHERE client_id = ?", clientId)
            let notes = try db.run("DELETE FROM metadata WHERE owner = ? OR owner = ?", clientId, MetadataOwner.isolation(clientId))
            try db.run("DELETE FROM client_labels WHERE client_id = ?", clientId)
            try db.run("DELETE FROM clients WHERE client_id = ?", clientId)
            return ClientDeletion(flows: flows, eventRows: events, notes: notes)
        }
    }

    private static func notes(_ db: SQLiteConnection, _ owner: String) throws -> [String: String] {
        let pairs = try db.query("SELECT name, value FROM metadata WHERE owner = ?", [owner]) { ($0.text(0), $0.text(1)) }
        return Dictionary(pairs, uniquingKeysWith: { _, last in last })
    }
}
