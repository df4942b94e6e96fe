import Foundation
import VQL

/// `geoip(ip=, db=)`: where an address is, from a MaxMind DB file (GeoLite2-City, -Country, -ASN
/// or any database in that format): the database's record for the address as a dict (for City,
/// `country.iso_code`, `city.names.en`, `location.latitude`…), NULL when it holds none. Typically
/// run on the server to enrich connection and login events. A database is opened once per
/// session and shared by every row; a file that is not a valid database is named in the log once.
public enum GeoIPFunction {
    static let key = ServiceKey<GeoIPDatabases>("geoip.databases")

    public static let declaration = FunctionDeclaration(
        name: "geoip", summary: "Looks an IP address up in a MaxMind DB file (GeoLite2/GeoIP2 City, Country, ASN…); its record as a dict.",
        arguments: [
            ArgumentSpec("ip", .string, required: true, "The address (IPv4 or IPv6)."),
            ArgumentSpec("db", .string, required: true, "Path to the .mmdb database."),
        ],
        returns: .dict,
        examples: [
            """
            LET DB <= '/var/lib/GeoIP/GeoLite2-City.mmdb'
            SELECT if(condition=stat(filename=DB), then=geoip(ip='8.8.8.8', db=DB).country.iso_code) AS Country FROM scope()
            """,
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let text = ctx.string("ip"), let path = ctx.string("db"), !path.isEmpty else { return .null }
        guard let address = IPAddress.parse(text) else { return .null }
        let databases = ctx.context.service(key, orMake: { GeoIPDatabases() })
        do {
            return try databases.open(path).lookup(address)?.value ?? .null
        } catch {
            ctx.context.logOnce(.error, "geoip: \(path): \(error)")
            return .null
        }
    }
}

/// The databases a session opened, by path (each read once).
final class GeoIPDatabases: @unchecked Sendable {
    private var opened: [String: Result<MaxMindDB, Error>] = [:]
    private let lock = NSLock()

    func open(_ path: String) throws -> MaxMindDB {
        if let known = lock.withLock({ opened[path] }) { return try known.get() }
        let result = Result { try MaxMindDB(path: path) }
        lock.withLock { opened[path] = result }
        return try result.get()
    }
}
