import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Where and how a mail is sent: the server, TLS and the credentials.
struct SMTPServer: Sendable {
    var host: String
    var port: Int
    var username: String?
    var password: String?
    var skipVerify = false
    var roots: [String] = []
    /// Seconds allowed for the connection and for each reply.
    var timeout: Int64 = 30
}

/// One mail as it goes on the wire.
struct MailMessage: Sendable {
    var from: String
    var to: [String]
    var cc: [String] = []
    var subject: String
    var body: String
    var headers: [(String, String)] = []
}

struct SMTPError: Error, CustomStringConvertible, Sendable {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A small SMTP client (RFC 5321) on SwiftNIO: implicit TLS on port 465, otherwise STARTTLS
/// whenever the server offers it, AUTH PLAIN or LOGIN, dot-stuffed DATA. Credentials never cross
/// an unencrypted connection except to a loopback server (as Go's net/smtp, which Velociraptor
/// uses, also refuses). Replies are bounded (line length, line count) and each waits at most
/// `timeout` seconds, so a hostile or stuck server cannot hold the query or its memory.
enum SMTPClient {
    static let maxLine = 4096
    static let maxLines = 200

    /// Sends the mail; returns the server's final reply to the message (e.g. "250 2.0.0 queued").
    static func send(_ message: MailMessage, via server: SMTPServer) async throws -> String {
        let implicitTLS = server.port == 465
        let replies = ReplyHandler()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(server.timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS { try channel.pipeline.syncOperations.addHandler(try tlsHandler(server)) }
                    try channel.pipeline.syncOperations.addHandler(replies)
                }
            }
            .connect(host: server.host, port: server.port).get()
        let session = Conversation(channel: channel, replies: replies, timeout: server.timeout)
        do {
            let answer = try await converse(session, message, server, tls: implicitTLS)
            channel.close(promise: nil)
            return answer
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    static func tlsHandler(_ server: SMTPServer) throws -> NIOSSLClientHandler {
        let tls = try ClientTLS.configuration(skipVerify: server.skipVerify, roots: server.roots)
        let context = try NIOSSLContext(configuration: tls)
        let isAddress = server.host.contains(":") || server.host.allSatisfy { $0.isNumber || $0 == "." }
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : server.host)
    }

    private static func converse(_ c: Conversation, _ message: MailMessage, _ server: SMTPServer, tls: Bool) async throws -> String {
        var tls = tls
        try await c.expect(220, after: nil)
        let me = ProcessInfo.processInfo.hostName.isEmpty ? "localhost" : ProcessInfo.processInfo.hostName
        var hello = try await c.command("EHLO \(me)", expect: 250)
        if !tls, hello.offers("STARTTLS") {
            _ = try await c.command("STARTTLS", expect: 220)
            let channel = c.channel
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(try tlsHandler(server), position: .first)
            }.get()
            tls = true
            hello = try await c.command("EHLO \(me)", expect: 250)
        }
        if let user = server.username, !user.isEmpty {
            guard tls || isLoopback(server.host) else {
                throw SMTPError("\(server.host) offers no TLS: refusing to send the password in the clear")
            }
            let password = server.password ?? ""
            if hello.offersAuth("PLAIN") || !hello.offersAuth("LOGIN") {
                let token = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
                _ = try await c.command("AUTH PLAIN \(token)", expect: 235, redact: "AUTH PLAIN ***")
            } else {
                _ = try await c.command("AUTH LOGIN", expect: 334)
                _ = try await c.command(Data(user.utf8).base64EncodedString(), expect: 334, redact: "***")
                _ = try await c.command(Data(password.utf8).base64EncodedString(), expect: 235, redact: "***")
            }
        }
        _ = try await c.command("MAIL FROM:<\(try address(message.from))>", expect: 250)
        for recipient in message.to + message.cc {
            _ = try await c.command("RCPT TO:<\(try address(recipient))>", expect: 250, alsoOK: [251])
        }
        _ = try await c.command("DATA", expect: 354)
        let final = try await c.command(MailFormat.data(message, host: me), expect: 250)
        _ = try? await c.command("QUIT", expect: 221)
        return final.text
    }

    /// The bare address of "Name <a@b>" or "a@b"; line breaks and angle brackets are refused so a
    /// value cannot smuggle extra SMTP commands.
    static func address(_ text: String) throws -> String {
        var bare = text.trimmingCharacters(in: .whitespaces)
        if let open = bare.lastIndex(of: "<"), let close = bare.lastIndex(of: ">"), open < close {
            bare = String(bare[bare.index(after: open)..<close])
        }
        guard !bare.isEmpty, !bare.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "<" || $0 == ">" || $0 == " " }) else {
            throw SMTPError("not a mail address: \(text.debugDescription)")
        }
        return bare
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// One complete reply: its code and text lines.
    struct Reply: Sendable {
        let code: Int
        let lines: [String]
        var text: String { lines.map { "\(code) \($0)" }.joined(separator: "\n") }
        func offers(_ keyword: String) -> Bool { lines.contains { $0.uppercased().split(separator: " ").first.map(String.init) == keyword } }
        func offersAuth(_ mechanism: String) -> Bool {
            lines.contains { line in
                let words = line.uppercased().split(whereSeparator: { $0 == " " || $0 == "=" }).map(String.init)
                return words.first == "AUTH" && words.dropFirst().contains(mechanism)
            }
        }
    }

    /// Writes commands and waits for replies, each within the timeout.
    struct Conversation {
        let channel: any Channel
        let replies: ReplyHandler
        let timeout: Int64

        @discardableResult
        func expect(_ code: Int, after command: String?, alsoOK: [Int] = []) async throws -> Reply {
            let reply = try await replies.next(timeout: timeout)
            guard reply.code == code || alsoOK.contains(reply.code) else {
                throw SMTPError("\(command ?? "greeting"): the server answered \(reply.text)")
            }
            return reply
        }

        @discardableResult
        func command(_ line: String, expect code: Int, alsoOK: [Int] = [], redact: String? = nil) async throws -> Reply {
            var buffer = channel.allocator.buffer(capacity: line.utf8.count + 2)
            buffer.writeString(line.hasSuffix("\r\n") ? line : line + "\r\n")
            try await channel.writeAndFlush(buffer).get()
            let shown = redact ?? (line.count > 80 ? String(line.prefix(40)) + "…" : line)
            return try await expect(code, after: shown, alsoOK: alsoOK)
        }
    }

    /// Splits the byte stream into reply lines and groups them into replies ("250-…" continues,
    /// "250 …" ends). Bounded: a longer line or reply is an error, not a buffer that grows.
    final class ReplyHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let lock = NSLock()
        private var pending: [UInt8] = []
        private var lines: [String] = []
        private var ready: [Result<Reply, any Error>] = []
        private var waiter: CheckedContinuation<Reply, any Error>?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            lock.lock()
            pending += bytes
            var failure: (any Error)?
            while failure == nil, let newline = pending.firstIndex(of: 0x0A) {
                var line = Array(pending[..<newline])
                pending.removeFirst(newline + 1)
                if line.last == 0x0D { line.removeLast() }
                failure = take(String(decoding: line, as: UTF8.self))
            }
            if failure == nil && pending.count > SMTPClient.maxLine { failure = SMTPError("a reply line is longer than \(SMTPClient.maxLine) bytes") }
            if let failure { deliver(.failure(failure)); pending = [] }
            lock.unlock()
            if failure != nil { context.close(promise: nil) }
        }

        /// Must hold `lock`. Nil, or an error for a malformed or oversized reply.
        private func take(_ line: String) -> (any Error)? {
            let chars = Array(line)
            guard chars.count >= 3, let code = Int(String(chars[0..<3])), (200...599).contains(code) || (100...199).contains(code) else {
                return SMTPError("not an SMTP reply: \(line.prefix(80).debugDescription)")
            }
            guard lines.count < SMTPClient.maxLines else { return SMTPError("a reply of more than \(SMTPClient.maxLines) lines") }
            lines.append(chars.count > 4 ? String(chars[4...]) : "")
            if chars.count == 3 || chars[3] == " " {
                deliver(.success(Reply(code: code, lines: lines)))
                lines = []
            }
            return nil
        }

        /// Must hold `lock`.
        private func deliver(_ result: Result<Reply, any Error>) {
            if let waiter {
                self.waiter = nil
                waiter.resume(with: result)
            } else {
                ready.append(result)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            lock.lock()
            deliver(.failure(SMTPError("the server closed the connection")))
            lock.unlock()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            lock.lock()
            deliver(.failure(error))
            lock.unlock()
            context.close(promise: nil)
        }

        /// Fails the reply being waited for (only that one: a late timer must not fail the next).
        private func timeOut(after seconds: Int64) {
            lock.lock()
            if waiter != nil { deliver(.failure(SMTPError("no reply within \(seconds) s"))) }
            lock.unlock()
        }

        func next(timeout: Int64) async throws -> Reply {
            let timer = Task {
                try await Task.sleep(nanoseconds: UInt64(timeout) * 1_000_000_000)
                self.timeOut(after: timeout)
            }
            defer { timer.cancel() }
            return try await withCheckedThrowingContinuation { continuation in
                lock.lock()
                if !ready.isEmpty {
                    let result = ready.removeFirst()
                    lock.unlock()
                    continuation.resume(with: result)
                    return
                }
                waiter = continuation
                lock.unlock()
            }
        }
    }
}
