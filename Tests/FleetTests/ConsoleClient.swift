import Fleet
import FleetCore
import Foundation

/// A browser's view of the web console for tests, through curl (a real HTTP client, TLS pinned to
/// the fleet's CA): one cookie jar per instance, no redirects followed, answers with their headers.
final class ConsoleClient: @unchecked Sendable {
    struct Answer {
        var status: Int
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        func headers(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
        /// The value of `<input name="NAME" value="...">` in the page (the first such field).
        func field(_ name: String) -> String? {
            guard let start = body.range(of: "name=\"\(name)\" value=\"") else { return nil }
            return body[start.upperBound...].split(separator: "\"", maxSplits: 1).first.map(String.init)
        }
    }

    let base: String
    let caFile: String
    let jar: String

    init(fleet: FleetHarness, name: String) throws {
        base = "https://127.0.0.1:\(fleet.port)"
        caFile = fleet.dir + "/console-ca.pem"
        jar = fleet.dir + "/cookies-\(name).txt"
        let api = try ConfigFile.load(APIConfig.self, from: fleet.apiConfig)
        try api.caCertificate.write(toFile: caFile, atomically: true, encoding: .utf8)
    }

    func get(_ path: String, headers: [String] = []) throws -> Answer {
        try curl(["-X", "GET"] + headers.flatMap { ["-H", $0] }, path)
    }

    /// What a never-ending answer (server-sent events) delivered in its first `seconds`.
    func stream(_ path: String, seconds: Int) throws -> Answer {
        try curl(["-X", "GET", "-N", "--max-time", String(seconds)], path)
    }

    /// A form post (URL-encoded `fields`), with extra request headers.
    func post(_ path: String, _ fields: [(String, String)], headers: [String] = []) throws -> Answer {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
        return try curl(["-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", body] + headers.flatMap { ["-H", $0] }, path)
    }

    /// Signs in through the login page (its login token cookie and field); returns the answer to the POST.
    func signIn(_ user: String, _ password: String) throws -> Answer {
        let page = try get("/login")
        return try post("/login", [("login_token", page.field("login_token") ?? ""), ("username", user), ("password", password)])
    }

    private func curl(_ arguments: [String], _ path: String) throws -> Answer {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "-i", "--max-time", "30", "--cacert", caFile, "-b", jar, "-c", jar] + arguments + [base + path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw HarnessError("curl \(path): no HTTP answer (exit \(process.terminationStatus))") }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Answer(status: status, headers: headers, body: String(text[split.upperBound...]))
    }
}

extension FleetHarness {
    /// Runs `quarry ARGS` with `input` on standard input (a password), as the administrator.
    func cli(_ arguments: [String], input: String) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments + ["--api-config", apiConfig]
        let stdin = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = stdin
        process.standardOutput = out
        process.standardError = err
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}
