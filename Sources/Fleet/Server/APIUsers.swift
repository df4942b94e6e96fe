import FleetCore
import Foundation
import Hummingbird
import NIOPosix
import QuarryConsole

// Analysts and their API keys: add (with an optional expiry), list, remove, rotate. Keys are shown
// once, when made; only their SHA-256 is stored. Every change is audited (never with the key), and
// drops the user's cached keys on this frontend at once.
extension FleetServer {
    func addUserRoutes(_ api: RouterGroup<FleetRequestContext>) {
        addPasswordRoute(api)
        api.post("users") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let (body, _) = try await context.decode(UserRequestBody.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard !body.name.isEmpty, body.name.utf8.count <= 128, !body.name.contains("/") else {
                throw APIFailure(status: 400, message: "a user name is 1 to 128 bytes without '/'")
            }
            guard try await store.user(named: body.name) == nil else { throw APIFailure(status: 409, message: "user \(body.name) exists") }
            let passwordHash = try await body.password.asyncMap(Self.hashPassword)
            let issued = try issue(name: body.name, role: body.role, expiresIn: body.expiresIn)
            let now = Date().timeIntervalSince1970
            try await store.addUser(UserRecord(name: body.name, role: body.role, apiKeySHA256: ConfigFile.sha256Hex(issued.apiKey), createdAt: now, expiresAt: issued.expiresAt))
            if let passwordHash { _ = try await store.setUserPasswordHash(body.name, hash: passwordHash) }
            try await audit(caller, "add-user", body.name, try Self.keyDetails(role: body.role, expiresAt: issued.expiresAt))
            return try ok(issued)
        }
        api.get("users") { [self] _, context in
            try context.requireCaller().require("SERVER_ADMIN")
            return try ok(try await store.users().map { UserView(name: $0.name, role: $0.role, createdAt: $0.createdAt, expiresAt: $0.expiresAt) })
        }
        api.delete("users/:name") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let name = try Self.userName(context)
            guard let user = try await store.user(named: name) else { throw APIFailure(status: 404, message: "no user \(name)") }
            if user.role == .administrator, try await store.users().filter({ $0.role == .administrator }).count <= 1 {
                throw APIFailure(status: 409, message: "\(name) is the last administrator")
            }
            guard try await store.removeUser(name) else { throw APIFailure(status: 404, message: "no user \(name)") }
            keys.forget(user: name)
            consoleSessions.end(user: name)
            try await audit(caller, "remove-user", name, try json(["role": user.role.rawValue]))
            return try okJSON(["removed": name])
        }
        api.post("users/:name/role") { [self] request, context in
            let caller = try context.requireCaller()
            try caller.require("SERVER_ADMIN")
            let name = try Self.userName(context)
            let (body, raw) = try await context.decode(RoleChange.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard let user = try await store.user(named: name) else { throw APIFailure(status: 404, message: "no user \(name)") }
            if user.role == .administrator, body.role != .administrator,
               try await store.users().filter({ $0.role == .administrator }).count <= 1 {
                throw APIFailure(status: 409, message: "\(name) is the last administrator")
            }
            guard try await store.setUserRole(name, role: body.role) else { throw APIFailure(status: 404, message: "no user \(name)") }
            // The cached key and console sessions carry the old role: both are dropped.
            keys.forget(user: name)
            consoleSessions.end(user: name)
            try await audit(caller, "grant-role", name, raw)
            return try ok(UserView(name: name, role: body.role, createdAt: user.createdAt, expiresAt: user.expiresAt))
        }
        api.post("users/:name/rotate-key") { [self] request, context in
            let caller = try context.requireCaller()
            let name = try Self.userName(context)
            // Anyone may replace their own key; an administrator anyone's.
            if caller.user.name != name { try caller.require("SERVER_ADMIN") }
            let (body, _) = try await context.decode(RotateKeyBody.self, from: request, limit: config.limits.maxRequestBodyBytes)
            guard let user = try await store.user(named: name) else { throw APIFailure(status: 404, message: "no user \(name)") }
            let issued = try issue(name: name, role: user.role, expiresIn: body.expiresIn)
            guard try await store.replaceUserKey(name, apiKeySHA256: ConfigFile.sha256Hex(issued.apiKey), expiresAt: issued.expiresAt) else {
                throw APIFailure(status: 404, message: "no user \(name)")
            }
            keys.forget(user: name)
            try await audit(caller, "rotate-key", name, try Self.keyDetails(role: user.role, expiresAt: issued.expiresAt))
            return try ok(issued)
        }
    }

    /// POST /users/NAME/password {"password": …}: sets the user's console password (anyone their own,
    /// an administrator anyone's); null removes it. The user's console sessions end.
    func addPasswordRoute(_ api: RouterGroup<FleetRequestContext>) {
        api.post("users/:name/password") { [self] request, context in
            let caller = try context.requireCaller()
            let name = try Self.userName(context)
            if caller.user.name != name { try caller.require("SERVER_ADMIN") }
            let (body, _) = try await context.decode(PasswordBody.self, from: request, limit: config.limits.maxRequestBodyBytes)
            let hash = try await body.password.asyncMap(Self.hashPassword)
            guard try await store.setUserPasswordHash(name, hash: hash) else { throw APIFailure(status: 404, message: "no user \(name)") }
            consoleSessions.end(user: name)
            try await audit(caller, hash == nil ? "remove-password" : "set-password", name, try json([:]))
            return try okJSON(["user": name, "password": hash == nil ? "removed" : "set"])
        }
    }

    /// The scrypt hash of a new console password (on the thread pool: it takes tens of milliseconds).
    static func hashPassword(_ password: String) async throws -> String {
        do {
            try PasswordHash.checkPolicy(password)
        } catch {
            throw APIFailure(status: 400, message: String(describing: error))
        }
        return try await NIOThreadPool.singleton.runIfActive { try PasswordHash.make(password) }
    }

    /// A new random key for a user, with its expiry.
    private func issue(name: String, role: Role, expiresIn: Double?) throws -> IssuedKey {
        if let expiresIn, !(expiresIn > 0) { throw APIFailure(status: 400, message: "an expiry must be in the future") }
        return IssuedKey(name: name, role: role, apiKey: ConfigFile.randomSecret(), expiresAt: expiresIn.map { Date().timeIntervalSince1970 + $0 })
    }

    private static func userName(_ context: FleetRequestContext) throws -> String {
        let raw = try context.parameters.require("name")
        return raw.removingPercentEncoding ?? raw
    }

    private static func keyDetails(role: Role, expiresAt: Double?) throws -> Data {
        var details: [String: Any] = ["role": role.rawValue]
        if let expiresAt { details["expires_at"] = expiresAt }
        return try json(details)
    }
}

extension Optional {
    /// The wrapped value transformed by async `transform`; nil stays nil.
    func asyncMap<U>(_ transform: (Wrapped) async throws -> U) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
