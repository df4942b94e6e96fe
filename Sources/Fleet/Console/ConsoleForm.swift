import Foundation
import Hummingbird

/// A submitted HTML form (application/x-www-form-urlencoded), read after authentication and only up
/// to a small cap, with at most `maxFields` fields.
struct ConsoleForm: Sendable {
    static let maxBytes = 64 << 10
    static let maxFields = 64
    private(set) var fields: [(String, String)] = []

    init(text: String) throws {
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            guard fields.count < Self.maxFields else { throw APIFailure(status: 400, message: "a form has at most \(Self.maxFields) fields") }
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { Self.decode(String($0)) }
            guard let name = parts.first ?? nil else { throw APIFailure(status: 400, message: "a form field is not valid percent-encoding") }
            guard let value = parts.count > 1 ? parts[1] : "" else { throw APIFailure(status: 400, message: "form field \(name) is not valid percent-encoding") }
            fields.append((name, value))
        }
    }

    /// Reads the request's form body (refused unless it is URL-encoded form data).
    static func read(_ request: Request, _ context: FleetRequestContext) async throws -> ConsoleForm {
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
            throw APIFailure(status: 415, message: "expected a form (application/x-www-form-urlencoded)")
        }
        let body = try await context.body(of: request, limit: maxBytes)
        guard let text = String(data: body, encoding: .utf8) else { throw APIFailure(status: 400, message: "a form is UTF-8 text") }
        return try ConsoleForm(text: text)
    }

    /// The first value of field `name`.
    func value(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    /// Every value of field `name`, in order (a multiple select sends one field per option).
    func values(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }

    static func decode(_ text: String) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

extension Request {
    /// A query parameter as an HTML form sends it with GET: `+` is a space and `%2B` a plus (the
    /// router's query parameters keep `+`, so a search for two words would look for "a+b").
    func formQuery(_ name: String) -> String? {
        guard let query = uri.query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard ConsoleForm.decode(String(parts[0])) == name else { continue }
            return parts.count > 1 ? ConsoleForm.decode(String(parts[1])) : ""
        }
        return nil
    }
}
