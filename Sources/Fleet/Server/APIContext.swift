import FleetCore
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import QuarryConsole

/// The context every request to the server carries through the router and its middleware: the
/// connection it came on (whose TLS peer certificate is the only source of a client's identity),
/// the peer's address, and, once `APIKeyAuthenticator` has run, the analyst who called.
/// The analyst API, /metrics, the agent channel's upgrade and the web console to come share it.
struct FleetRequestContext: FleetListenerContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let bodyRead = BodyReadMark()
    /// The connection the request arrived on.
    let channel: any Channel
    /// The peer's address and port.
    let remote: String
    /// The analyst behind the request's API key (set by `APIKeyAuthenticator`) or console session
    /// (set by `ConsoleMiddleware`).
    var caller: Caller?
    /// The web console's session of the request's cookie, and that cookie's token.
    var console: (session: ConsoleSession, token: String)?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
        remote = source.channel.remoteAddress?.description ?? "?"
    }

    /// Bodies decoded without an explicit cap are small.
    var maxUploadSize: Int { 64 << 10 }

    /// The peer's address without the port (what rate limits count).
    var address: String { PeerAddress.of(channel) }

    /// The subject of the client certificate the peer presented in the TLS handshake (checked there
    /// to chain to the fleet's CA), or nil for a peer without one.
    func peerCertificateName() async -> String? {
        let certificate = try? await channel.nioSSL_peerCertificate().get()
        return TLSSetup.peerCommonName(certificate)
    }

    /// The authenticated analyst; fails for a route outside the authenticated group.
    func requireCaller() throws -> Caller {
        guard let caller else { throw APIFailure(status: 401, message: "missing API key (Authorization: Bearer …)") }
        return caller
    }

    /// The request's body, read only now (after authentication) and only up to `limit` bytes; a
    /// longer one is refused with 413 (at once when its declared length says so).
    func body(of request: Request, limit: Int) async throws -> Data {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw APIFailure(status: 413, message: "request body of \(declared) bytes is over this call's limit of \(limit)")
        }
        bodyRead.set()
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Data(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIFailure(status: 413, message: "request body is over this call's limit of \(limit) bytes")
        }
    }

    /// The body decoded as JSON (see `body(of:limit:)`).
    func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> (value: T, raw: Data) {
        let raw = try await body(of: request, limit: limit)
        return (try Fleet.decode(T.self, raw), raw)
    }
}

/// An API call's refusal: a status and a message, sent as `{"error": message}`.
struct APIFailure: Error, HTTPResponseError {
    var code: Int
    var message: String
    var headers: HTTPFields = [:]

    init(status: Int, message: String, headers: HTTPFields = [:]) {
        self.code = status
        self.message = message
        self.headers = headers
    }

    var status: HTTPResponse.Status { .init(code: code) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        APIFailure.json(status: code, ["error": message], headers: headers)
    }

    static func json(status: Int, _ object: [String: String], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The authenticated caller of an API request.
struct Caller: Sendable {
    var user: UserRecord
    var remote: String

    func require(_ permission: String) throws {
        guard user.role.permissions.contains(permission) else {
            throw APIFailure(status: 403, message: "user \(user.name) (role \(user.role.rawValue)) lacks \(permission)")
        }
    }
}

/// Every error leaves as `{"error": "..."}` with its status (Hummingbird's own errors too, such as
/// 404 for an unknown path); anything unexpected is a 500.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = FleetRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let failure as APIFailure {
            return try failure.response(from: request, context: context)
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound ? "no such endpoint \(request.method) \(request.uri.path)" : error.status.reasonPhrase)
            return APIFailure.json(status: error.status.code, ["error": message], headers: error.headers)
        } catch {
            return APIFailure.json(status: 500, ["error": String(describing: error)])
        }
    }
}

/// Requests per address, before anything else is done for them: over the rate, 429 with Retry-After.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = FleetRequestContext
    let limiter: SharedRateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if case .deny(let retryAfter) = limiter.take(context.address) {
            let seconds = String(Int(retryAfter.rounded(.up)))
            throw APIFailure(status: 429, message: "too many requests from \(context.address); retry in \(seconds) s", headers: [.retryAfter: seconds])
        }
        return try await next(request, context)
    }
}

/// Counts API requests for /metrics.
struct RequestCountMiddleware: RouterMiddleware {
    typealias Context = FleetRequestContext
    let metrics: FleetMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        metrics.apiRequests.increment()
        return try await next(request, context)
    }
}

/// Authenticates an analyst from the `Authorization: Bearer KEY` header alone, before any of the
/// request's body is read: a request without a valid key is answered 401 and its body is never
/// buffered. Keys are looked up through the server's `APIKeyCache`; expired keys are refused.
struct APIKeyAuthenticator: RouterMiddleware {
    typealias Context = FleetRequestContext
    let keys: APIKeyCache

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.count > 7 else {
            throw APIFailure(status: 401, message: "missing API key (Authorization: Bearer …)")
        }
        let user = try await keys.user(forKey: String(header.dropFirst(7)))
        var context = context
        context.caller = Caller(user: user, remote: context.remote)
        return try await next(request, context)
    }
}

/// A `RateLimiter` shared by all connections, on the wall clock.
final class SharedRateLimiter: Sendable {
    private let state: NIOLockedValueBox<RateLimiter>

    init(_ rule: RateLimiter.Rule) {
        state = NIOLockedValueBox(RateLimiter(rule))
    }

    func take(_ key: String) -> RateLimiter.Decision {
        let now = Date().timeIntervalSince1970
        return state.withLockedValue { $0.take(key, now: now) }
    }
}
