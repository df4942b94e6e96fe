import Foundation
import Synchronization
import VQL

/// `mail()` (a function, on endpoints and the server) and the server's `mail` plugin: send one
/// mail over SMTP to notify someone of a rare event. Sends are rate-limited across every query of
/// the process (`period`, default 60 s) so a query that matches many rows cannot flood a mail
/// server; a throttled or failed mail is a logged error and a result row that says so.
public enum MailFunction {
    static let arguments: [ArgumentSpec] = [
        ArgumentSpec("to", .stringList, required: true, "Recipients."),
        ArgumentSpec("from", .string, "The sender address (default: quarry@HOSTNAME)."),
        ArgumentSpec("cc", .stringList, "Copy recipients."),
        ArgumentSpec("subject", .string, "The subject (UTF-8 is encoded as RFC 2047 needs)."),
        ArgumentSpec("body", .string, required: true, "The body; plain text unless headers set a Content-Type."),
        ArgumentSpec("period", .int, "Seconds that must pass between two mails of this process (default 60)."),
        ArgumentSpec("server_port", .int, "The SMTP port (default 587; 465 means TLS from the start)."),
        ArgumentSpec("server", .string, "The SMTP server's host name or address."),
        ArgumentSpec("auth_username", .string, "User name to authenticate with (only over TLS, or to a loopback server)."),
        ArgumentSpec("auth_password", .string, "Password to authenticate with."),
        ArgumentSpec("skip_verify", .bool, "Do not verify the server's certificate."),
        ArgumentSpec("root_ca", .string, "PEM certificates trusted in addition to the system's."),
        ArgumentSpec("secret", .string, "A stored secret with the server and credentials (not supported by Quarry yet; an error when given)."),
        ArgumentSpec("headers", .dict, "Headers to set, e.g. dict(`Content-Type`='text/html')."),
    ]

    static let schema = Schema(["Sent", "Server", "To", "Subject", "Response", "Error"])

    public static let function = FunctionDeclaration(
        name: "mail",
        summary: "Sends a mail over SMTP (STARTTLS when offered, TLS on port 465, AUTH PLAIN/LOGIN); returns Sent, Server, To, Subject, Response and Error. Rate-limited to one mail per `period` seconds per process.",
        arguments: arguments, returns: .dict,
        examples: ["SELECT mail(server='127.0.0.1', server_port=2525, to='soc@example.com', subject='YARA hit', body=format(format='%v matched on %v', args=['webshell', 'web-01']), period=0).Sent AS Sent FROM scope()"],
        permissions: [.network]
    ) { ctx in
        guard ctx.context.require(.network, for: "mail") else { return .null }
        return send(ctx)
    }

    public static let plugin = PluginDeclaration(
        name: "mail",
        summary: "mail() as a plugin: sends one mail and yields one row (Sent, Server, To, Subject, Response, Error).",
        arguments: arguments,
        columns: [
            ColumnSpec("Sent", .bool), ColumnSpec("Server", .string), ColumnSpec("To", .list), ColumnSpec("Subject", .string),
            ColumnSpec("Response", .string, "The server's reply to the message."), ColumnSpec("Error", .string),
        ],
        examples: ["SELECT Sent, Error FROM mail(server='127.0.0.1', server_port=2525, to='soc@example.com', body='test', period=0)"],
        permissions: [.network]
    ) { ctx in
        guard ctx.context.require(.network, for: "mail") else { return ArrayCursor([]) }
        return ArrayCursor([send(ctx)])
    }

    /// When the last mail of this process left (monotonic seconds).
    static let lastSent = Mutex<Double?>(nil)

    static func send(_ ctx: CallContext) -> Value {
        let to = ctx.strings("to") ?? []
        let subject = ctx.string("subject") ?? ""
        let host = ctx.string("server") ?? ""
        func result(sent: Bool, response: String = "", error: String? = nil) -> Value {
            if let error { ctx.log(.warning, "mail: \(error)") }
            return .dict(Dict(schema: schema, values: [
                .bool(sent), .string(host), .list(to.map { .string($0) }), .string(subject), .string(response), error.map { .string($0) } ?? .null,
            ]))
        }
        if let secret = ctx.string("secret"), !secret.isEmpty {
            return result(sent: false, error: "secret= needs a secrets service, which Quarry does not have yet: give server=, auth_username= and auth_password=")
        }
        guard !host.isEmpty else { return result(sent: false, error: "no SMTP server: give server=") }
        guard !to.isEmpty else { return result(sent: false, error: "no recipient: give to=") }
        var headers: [(String, String)] = []
        if case .dict(let given)? = ctx.value("headers") {
            headers = given.pairs.map { ($0.0, $0.1.stringValue ?? JSONWriter.string($0.1)) }
        }
        let me = ProcessInfo.processInfo.hostName
        let message = MailMessage(
            from: ctx.string("from").flatMap { $0.isEmpty ? nil : $0 } ?? "quarry@\(me.isEmpty ? "localhost" : me)",
            to: to, cc: ctx.strings("cc") ?? [], subject: subject, body: ctx.string("body") ?? "", headers: headers)
        let port = Int(ctx.int("server_port") ?? 587)
        guard (1...65535).contains(port) else { return result(sent: false, error: "server_port \(port) is not a port") }
        let server = SMTPServer(
            host: host, port: port, username: ctx.string("auth_username"), password: ctx.string("auth_password"),
            skipVerify: ctx.bool("skip_verify") ?? false, roots: ClientTLS.roots(ctx))
        let period = Double(max(0, ctx.int("period") ?? 60))
        let now = ProcessInfo.processInfo.systemUptime
        let admitted = lastSent.withLock { last -> Bool in
            if let last, now - last < period { return false }
            last = now
            return true
        }
        guard admitted else {
            return result(sent: false, error: "throttled: another mail left less than \(Int(period)) s ago (period=)")
        }
        switch Bridge.run(ctx, { try await SMTPClient.send(message, via: server) }) {
        case .success(let reply):
            ctx.log(.info, "mail: sent to \(to.joined(separator: ", ")) via \(host):\(port)")
            return result(sent: true, response: reply)
        case .failure(let error):
            return result(sent: false, error: "\(host):\(port): \(error)")
        }
    }
}
