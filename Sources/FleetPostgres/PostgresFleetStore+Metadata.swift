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

    public func deleteFlow(_ flowId: String) async throws -> Bool {
        try await transaction("deleteFlow \(flowId)") { connection in
            for table in ["results", "uploads", "flow_logs", "flow_batches"] {
                try await connection.perform("DELETE FROM \(unescaped: table) WHERE flow_id = \(flowId)")
            }
            return try await !connection.fetchAll("DELETE FROM flows WHERE flow_id = \(flowId) RETURNING 1").isEmpty
        }
    }
}
