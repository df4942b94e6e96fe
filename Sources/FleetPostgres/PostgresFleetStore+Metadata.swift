import FleetCore
import Foundation
import PostgresNIO

// Metadata notes and hunt deletion on PostgreSQL.
extension PostgresFleetStore {
    public func metadata(_ owner: String) async throws -> [String: String] {
        let pairs = try await fetch("metadata \(owner)", "SELECT name, value FROM metadata WHERE owner = \(owner)") { try $0.decode((String, String).self) }
        return Dictionary(pairs, uniquingKeysWith: { _, last in last })
    }

    @discardableResult
    public func setMetadata(_ owner: String, _ changes: [String: String?]) async throws -> [String: String] {
        try await transaction("setMetadata \(owner)") { connection in
            for (name, value) in changes.sorted(by: { $0.key < $1.key }) {
                if let value {
                    try await connection.perform(
                        """
                        INSERT INTO metadata (owner, name, value) VALUES (\(owner), \(name), \(value))
                        ON CONFLICT (owner, name) DO UPDATE SET value = excluded.value
                        """)
                } else {
                    try await connection.perform("DELETE FROM metadata WHERE owner = \(owner) AND name = \(name)")
                }
            }
            let pairs = try await connection.fetchAll("SELECT name, value FROM metadata WHERE owner = \(owner)").map { try $0.decode((String, String).self) }
            return Dictionary(pairs, uniquingKeysWith: { _, last in last })
        }
    }

    public func deleteHunt(_ huntId: String) async throws -> [String] {
        try await transaction("deleteHunt \(huntId)") { connection in
            let found = try await connection.fetchAll("SELECT 1 FROM hunts WHERE hunt_id = \(huntId) FOR UPDATE")
            if found.isEmpty { throw StoreError("deleteHunt: no hunt \(huntId)") }
            let flows = try await connection.fetchAll("SELECT flow_id FROM flows WHERE hunt_id = \(huntId)").map { try $0.decode(String.self) }
            for table in ["results", "uploads", "flow_logs", "flow_batches", "flows"] {
                try await connection.perform("DELETE FROM \(unescaped: table) WHERE flow_id = ANY(\(flows)::text[])")
            }
            try await connection.perform("DELETE FROM hunts WHERE hunt_id = \(huntId)")
            return flows
        }
    }

    public func deleteClient(_ clientId: String) async throws -> ClientDeletion? {
        try await transaction("deleteClient \(clientId)") { connection in
            if try await connection.fetchAll("SELECT 1 FROM clients WHERE client_id = \(clientId) FOR UPDATE").isEmpty { return nil }
            let flows = try await connection.fetchAll("SELECT flow_id FROM flows WHERE client_id = \(clientId)").map { try $0.decode(String.self) }
            for table in ["results", "uploads", "flow_logs", "flow_batches", "flows"] {
                try await connection.perform("DELETE FROM \(unescaped: table) WHERE flow_id = ANY(\(flows)::text[])")
            }
            // Counted in the database: a client may have millions of event rows.
            let events = try await connection.fetchAll("WITH gone AS (DELETE FROM events WHERE client_id = \(clientId) RETURNING 1) SELECT count(*) FROM gone")
                .first.map { try $0.decode(Int.self) } ?? 0
            try await connection.perform("DELETE FROM event_batches WHERE client_id = \(clientId)")
            let isolation = MetadataOwner.isolation(clientId)
            let notes = try await connection.fetchAll("DELETE FROM metadata WHERE owner = \(clientId) OR owner = \(isolation) RETURNING 1").count
            try await connection.perform("DELETE FROM client_labels WHERE client_id = \(clientId)")
            try await connection.perform("DELETE FROM clients WHERE client_id = \(clientId)")
            return ClientDeletion(flows: flows, eventRows: events, notes: notes)
        }
    }

    public func deleteFlow(_ flowId: String) async throws -> Bool {
        try await transaction("deleteFlow \(flowId)") { connection in
            for table in ["results", "uploads", "flow_logs", "flow_batches"] {
                try await connection.perform("DELETE FROM \(unescaped: table) WHERE flow_id = \(flowId)")
            }
            return try await !connection.fetchAll("DELETE FROM flows WHERE flow_id = \(flowId) RETURNING 1").isEmpty
        }
    }
}
