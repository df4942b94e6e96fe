import FleetCore
import Foundation
import Hummingbird
import QuarryConsole

/// In front of every web console route: finds the session of the request's cookie (and the user,
/// read again each time, so a removed user is out at once), makes every failure an HTML page (a
/// 401 on a page read a redirect to /login), and adds the security headers: a
/// Content-Security-Policy allowing only this server's scripts and styles (no inline code), no
/// framing, no sniffing, no referrer to other sites, no caching of pages.
struct ConsoleMiddleware: RouterMiddleware {
    typealias Context = FleetRequestContext
    let server: FleetServer

    static let sessionCookie = "quarry_session"
    static let loginCookie = "quarry_login"
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let token = Self.cookie(Self.sessionCookie, in: request), let session = server.consoleSessions.session(for: token) {
            if let user = try await server.store.user(named: session.user) {
                context.caller = Caller(user: user, remote: context.remote)
                context.console = (session, token)
            } else {
                server.consoleSessions.end(token)
            }
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let failure as APIFailure {
            response = failurePage(failure.code, failure.message, request: request, context: context)
        } catch let error as HTTPError {
            response = failurePage(error.status.code, error.body ?? error.status.reasonPhrase, request: request, context: context)
        } catch {
            response = failurePage(500, "the server failed: \(error)", request: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.xFrameOptions] = "DENY"
        // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on its own forms.
        response.headers[.referrerPolicy] = "same-origin"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }

    /// A failure as a page; a page read (GET) without a session goes to the sign-in page instead.
    private func failurePage(_ status: Int, _ message: String, request: Request, context: Context) -> Response {
        if status == 401, request.method == .get { return ConsoleResponse.redirect("/login") }
        return server.consolePage(.error, title: "Error \(status)", view: ["status": status, "text": message], context: context, status: .init(code: status))
    }

    /// The value of cookie `name` in the request's Cookie headers.
    static func cookie(_ name: String, in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2, parts[0] == name, !parts[1].isEmpty { return parts[1] }
            }
        }
        return nil
    }

    /// A Set-Cookie value: Secure, HttpOnly, SameSite=Strict, the whole site; a nil value deletes it.
    static func setCookie(_ name: String, _ value: String?, maxAge: Int) -> String {
        "\(name)=\(value ?? ""); Path=/; Max-Age=\(value == nil ? 0 : maxAge); Secure; HttpOnly; SameSite=Strict"
    }
}

/// Console answers: pages and redirects.
enum ConsoleResponse {
    static func html(_ text: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// 303 See Other: after a form, the browser reads `location` with GET.
    static func redirect(_ location: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }
}

extension FleetServer {
    /// Renders `page` for the request's user (the header, with their CSRF token, when signed in).
    func consolePage(_ page: ConsolePage, title: String, view: Any, context: FleetRequestContext, status: HTTPResponse.Status = .ok, message: String? = nil, headers: HTTPFields = [:]) -> Response {
        var header: HeaderView?
        if let caller = context.caller, let console = context.console {
            header = HeaderView(
                name: caller.user.name, role: caller.user.role.rawValue, isAdmin: caller.user.role.permissions.contains("SERVER_ADMIN"),
                csrf: console.session.csrfToken)
        }
        return ConsoleResponse.html(consoleRenderer.render(page, title: title, view: view, header: header, message: message), status: status, headers: headers)
    }
}

extension FleetRequestContext {
    /// The signed-in console user; 401 (a redirect to /login for a page read) without a session.
    func requireConsoleCaller() throws -> Caller {
        guard console != nil, let caller else { throw APIFailure(status: 401, message: "sign in first") }
        return caller
    }

    /// Refuses a state-changing console request that is not from one of this session's own pages:
    /// the form's `csrf` field must be the session's token, and a browser that says the request is
    /// cross-site (Sec-Fetch-Site) or from another origin (Origin) is refused outright.
    func requireSameSiteForm(_ form: ConsoleForm, _ request: Request) throws -> Caller {
        let caller = try requireConsoleCaller()
        if let site = request.headers[.secFetchSite], site == "cross-site" || site == "same-site" {
            throw APIFailure(status: 403, message: "refused a cross-site form submission")
        }
        if let origin = request.headers[.origin], let host = request.head.authority, origin != "https://" + host {
            throw APIFailure(status: 403, message: "refused a form submission from another origin")
        }
        guard let console, let token = form.value("csrf"), ConsoleSessions.sameSecret(token, console.session.csrfToken) else {
            throw APIFailure(status: 403, message: "the form's CSRF token is missing or wrong; reload the page and try again")
        }
        return caller
    }
}

extension HTTPFields.Element.Name {
    // Header names swift-http-types does not name (valid names, so the initialiser cannot fail).
    static let xFrameOptions = Self("X-Frame-Options") ?? .xContentTypeOptions
    static let referrerPolicy = Self("Referrer-Policy") ?? .xContentTypeOptions
    static let secFetchSite = Self("Sec-Fetch-Site") ?? .xContentTypeOptions
}
