import FleetCore
import Foundation
import VQL

/// Server-side VQL over the fleet, with Velociraptor's names, arguments and row shapes where our
/// model has the same facts: `quarry query --server` adds these plugins and functions. They call
/// the server's API with the analyst's key, so the server checks the analyst's role on every call
/// (a reader cannot collect, label, hunt or delete) and audits every change.
public enum ServerPlugins {
    /// The service key under which the query context holds the `APIClient`.
    public static let serviceKey = "fleet.api"

    public static var plugins: [PluginDeclaration] {
        ServerClients.plugins + ServerFlows.plugins + ServerHunts.plugins + ServerAdmin.plugins + ServerMonitoring.plugins
            + ServerOrgsAndLinks.plugins + ServerExtras.plugins
    }

    public static var functions: [FunctionDeclaration] {
        ServerClients.functions + ServerFlows.functions + ServerHunts.functions + ServerAdmin.functions + ServerMonitoringTables.functions
            + ServerOrgsAndLinks.functions + ServerTableActions.functions + ServerExtras.functions
    }

    static func api(_ ctx: CallContext) throws -> APIClient {
        guard let api = ctx.context.service(serviceKey, as: APIClient.self) else {
            throw ServerPluginError("this needs the fleet server: run the query with --server (and --api-config)")
        }
        return api
    }

    /// Runs a server call for a function: its value, or NULL with the error logged.
    static func call(_ ctx: CallContext, _ name: String, _ body: @escaping @Sendable (APIClient) async throws -> Value) -> Value {
        do {
            let api = try api(ctx)
            return try runBlocking { try await body(api) }
        } catch {
            ctx.log(.error, "\(name): \(error)")
            return .null
        }
    }

    /// Any Encodable as a VQL value (through JSON).
    static func value<T: Encodable>(_ item: T) -> Value {
        guard let data = try? JSONEncoder().encode(item), let parsed = try? JSONParser.parse(bytes: Array(data)) else { return .null }
        return parsed
    }

    /// A stored JSON object text as a VQL value (NULL when it is not JSON).
    static func parsed(_ text: String) -> Value {
        (try? JSONParser.parse(text)) ?? .null
    }

    /// Seconds since 1970 as Velociraptor's microsecond counts.
    static func micros(_ seconds: Double?) -> Value {
        guard let seconds, seconds.isFinite else { return .int(0) }
        return .int(Int64((seconds * 1e6).rounded()))
    }

    static func strings(_ items: [String]) -> Value { .list(items.map { .string($0) }) }

    /// A dict of notes as strings (a non-string value is stored as its JSON; NULL removes the note).
    static func notes(_ value: Value?) -> [String: String?] {
        guard case .dict(let dict)? = value?.reduced() else { return [:] }
        var notes: [String: String?] = [:]
        for key in dict.keys {
            switch dict[key]?.reduced() ?? .null {
            case .null: notes[key] = .some(nil)
            case .string(let text): notes[key] = text
            case let other: notes[key] = other.stringValue ?? JSONWriter.string(other.materialized())
            }
        }
        return notes
    }

    static func notesValue(_ notes: [String: String]) -> Value {
        .dict(Dict(notes.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
    }

    /// A stored row as hunt_results shows it: ClientId, FlowId, Fqdn, then the row's own columns.
    public static func resultValue(_ row: ResultRow) -> Value {
        var pairs: [(String, Value)] = [("ClientId", .string(row.clientId)), ("FlowId", .string(row.flowId)), ("Fqdn", .string(row.fqdn))]
        if case .dict(let dict)? = try? JSONParser.parse(row.json) {
            for key in dict.keys where key != "ClientId" && key != "FlowId" && key != "Fqdn" { pairs.append((key, dict[key] ?? .null)) }
        }
        return .dict(Dict(pairs))
    }

    /// `artifact=` may name a source as `Artifact/Source`, as in Velociraptor.
    static func artifactAndSource(_ ctx: CallContext) -> (artifact: String?, source: String?) {
        var artifact = ctx.string("artifact"), source = ctx.string("source")
        if let text = artifact, source == nil, let slash = text.firstIndex(of: "/") {
            artifact = String(text[..<slash])
            source = String(text[text.index(after: slash)...])
        }
        return (artifact, source)
    }

    /// A path segment for the API (user names may hold anything but '/').
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

/// A server plugin that cannot run (no server configured, missing argument).
struct ServerPluginError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
