import ArgumentParser
import Fleet
import FleetCore
import Foundation
import VQL

/// `quarry user add|list|rm|rotate-key`: analysts and their API keys.
struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage analysts and their API keys.", subcommands: [AddUser.self, ListUsers.self, RemoveUser.self, GrantUserRole.self, RotateUserKey.self, SetUserPassword.self])
}

/// Where a new key goes: an api.yaml for its user, printed or written 0600 to `--output`.
struct KeyOutput: ParsableArguments {
    @Option(help: "Write the user's api.yaml here (default: standard output).") var output: String?
    @Option(help: "The key stops working after this long: 30d, 12h, 90m, 45s or 2w (default: never).") var expires: String?

    /// The expiry in seconds, if one was given.
    func expiresIn() throws -> Double? {
        try expires.map(Self.seconds)
    }

    static func seconds(_ text: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400]
        guard let unit = text.last.flatMap({ units[$0] }), let count = Double(text.dropLast()), count > 0, count.isFinite else {
            throw ValidationError("--expires \(text): expected a number and a unit, e.g. 30d, 12h, 90m, 45s or 2w")
        }
        return count * unit
    }

    /// Prints or writes the api.yaml for a key the server just made (the only time it is shown).
    func deliver(_ key: IssuedKey, client: APIClient) throws {
        let config = APIConfig(serverURL: client.config.serverURL, caCertificate: client.config.caCertificate, user: key.name, apiKey: key.apiKey)
        let expiry = key.expiresAt.map { " until \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: $0)))" } ?? ""
        if let output {
            try ConfigFile.save(config, to: output)
            printError("wrote \(output) for \(key.name) (\(key.role.rawValue))\(expiry)")
        } else {
            Swift.print(try ConfigFile.yaml(config), terminator: "")
            if !expiry.isEmpty { printError("the key of \(key.name) is valid\(expiry)") }
        }
    }
}

struct AddUser: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an analyst with a role (administrator, investigator, reader).")
    @Argument(help: "User name.") var name: String
    @Option(help: "administrator, investigator or reader.") var role: String
    @Flag(help: "Also give a password for the web console (asked for on a terminal, else read from the first line of standard input).")
    var password = false
    @OptionGroup var key: KeyOutput
    @OptionGroup var api: APIOptions

    func run() throws {
        guard let role = Role(rawValue: role) else { throw ValidationError("unknown role '\(role)' (administrator, investigator, reader)") }
        let client = try api.client()
        let body = UserRequestBody(name: name, role: role, expiresIn: try key.expiresIn(), password: password ? try readPassword() : nil)
        try key.deliver(try runBlocking { try await client.post("/users", body: body, as: IssuedKey.self) }, client: client)
    }
}

struct ListUsers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List analysts with their roles and key expiry.")
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let users = try runBlocking { try await client.get("/users", as: [UserView].self) }
        try format.print(users.map { user in
            .dict(Dict([("Name", .string(user.name)), ("Role", .string(user.role.rawValue)), ("Created", isoTime(user.createdAt)), ("Expires", isoTime(user.expiresAt))]))
        })
    }
}

struct RemoveUser: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an analyst: their key stops working at once.")
    @Argument(help: "User name.") var name: String
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let path = userPath(name)
        _ = try runBlocking { try await client.delete(path, as: [String: String].self) }
        printError("removed \(name)")
    }
}

struct GrantUserRole: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant", abstract: "Give an analyst another role; their key keeps working with it at once (audited).")
    @Argument(help: "User name.") var name: String
    @Option(help: "reader, investigator or administrator.") var role: String
    @OptionGroup var api: APIOptions

    func run() throws {
        guard let role = Role(rawValue: role) else { throw ValidationError("unknown role '\(role)' (administrator, investigator, reader)") }
        let client = try api.client()
        let (path, body) = (userPath(name) + "/role", RoleChange(role: role))
        let view = try runBlocking { try await client.post(path, body: body, as: UserView.self) }
        printError("\(view.name) is now \(view.role.rawValue)")
    }
}

struct RotateUserKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key", abstract: "Give an analyst a new API key (printed once); the old one stops working at once.")
    @Argument(help: "User name.") var name: String
    @OptionGroup var key: KeyOutput
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let path = userPath(name) + "/rotate-key"
        let body = RotateKeyBody(expiresIn: try key.expiresIn())
        try key.deliver(try runBlocking { try await client.post(path, body: body, as: IssuedKey.self) }, client: client)
    }
}

/// The API path of a user, the name percent-encoded.
func userPath(_ name: String) -> String {
    "/users/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? name)
}

struct SetUserPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "password", abstract: "Set an analyst's web console password (asked for on a terminal, else read from standard input).")
    @Argument(help: "User name.") var name: String
    @Flag(help: "Remove the password instead: the user can no longer sign in to the console.") var remove = false
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let body = PasswordBody(password: remove ? nil : try readPassword())
        let path = userPath(name) + "/password"
        _ = try runBlocking { try await client.post(path, body: body, as: [String: String].self) }
        printError(remove ? "removed the console password of \(name)" : "set the console password of \(name)")
    }
}

/// A password: typed twice without echo on a terminal, else the first line of standard input.
func readPassword() throws -> String {
    if isatty(STDIN_FILENO) == 0 {
        guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password on standard input") }
        return line
    }
    let first = try promptHidden("Password: ")
    guard try promptHidden("Again: ") == first else { throw ValidationError("the two passwords differ") }
    return first
}

/// Reads one line from the terminal with echo off.
private func promptHidden(_ prompt: String) throws -> String {
    FileHandle.standardError.write(Data(prompt.utf8))
    var saved = termios()
    tcgetattr(STDIN_FILENO, &saved)
    var quiet = saved
    quiet.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
    defer {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
        FileHandle.standardError.write(Data("\n".utf8))
    }
    guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password given") }
    return line
}
