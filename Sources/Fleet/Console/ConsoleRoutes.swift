import FleetCore
import Foundation
import Hummingbird
import NIOPosix
import QuarryConsole

// The web console on the server's own router and TLS port: sign-in and out, and the pages. Every
// page reads through the same datastore calls and role checks as /api/v1 (`Caller.require`), so the
// server refuses what a role may not do whatever the page shows.
extension FleetServer {
    func addConsoleRoutes(_ router: Router<FleetRequestContext>) {
        let console = router.group().add(middleware: ConsoleMiddleware(server: self))
        console.get("assets/:name") { _, context in
            guard let file = ConsoleAssets.file(named: try context.parameters.require("name")) else { throw APIFailure(status: 404, message: "no such file") }
            return Response(
                status: .ok, headers: [.contentType: file.contentType, .cacheControl: "public, max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: file.body)))
        }
        console.get("/") { _, context in
            ConsoleResponse.redirect(context.console == nil ? "/login" : "/clients")
        }
        console.get("login") { [self] _, context in
            if context.console != nil { return ConsoleResponse.redirect("/clients") }
            return loginPage(context: context, userName: "", message: nil, status: .ok)
        }
        console.post("login") { [self] request, context in try await login(request, context) }
        console.post("logout") { [self] request, context in
            let form = try await ConsoleForm.read(request, context)
            let caller = try context.requireSameSiteForm(form, request)
            if let token = context.console?.token { consoleSessions.end(token) }
            try await audit(caller, "console-logout", caller.user.name, Data())
            return ConsoleResponse.redirect("/login", headers: [.setCookie: ConsoleMiddleware.setCookie(ConsoleMiddleware.sessionCookie, nil, maxAge: 0)])
        }
        addConsolePages(console)
        addConsoleCollectPages(console)
        addConsoleAlertPages(console)
        addConsoleFlowPages(console)
    }

    /// The sign-in page, with a fresh login token in a cookie and in the form (a forged cross-site
    /// sign-in has neither).
    private func loginPage(context: FleetRequestContext, userName: String, message: String?, status: HTTPResponse.Status) -> Response {
        let token = ConsoleSessions.randomToken()
        return consolePage(
            .login, title: "Sign in", view: ["loginToken": token, "userName": userName], context: context, status: status, message: message,
            headers: [.setCookie: ConsoleMiddleware.setCookie(ConsoleMiddleware.loginCookie, token, maxAge: 1800)])
    }

    /// POST /login: checks the password (scrypt, on the thread pool; an unknown user costs the same
    /// time) and starts a session: its token goes in a Secure, HttpOnly, SameSite=Strict cookie.
    private func login(_ request: Request, _ context: FleetRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context)
        guard let sent = form.value("login_token"), let expected = ConsoleMiddleware.cookie(ConsoleMiddleware.loginCookie, in: request),
            ConsoleSessions.sameSecret(sent, expected)
        else {
            return loginPage(context: context, userName: "", message: "The sign-in form expired or came from another site; please sign in again.", status: .forbidden)
        }
        let name = String((form.value("username") ?? "").prefix(128))
        let password = form.value("password") ?? ""
        let stored = try await store.userPasswordHash(named: name)
        let valid = try await NIOThreadPool.singleton.runIfActive { () -> Bool in
            guard let stored else {
                PasswordHash.spendOneCheck(password)
                return false
            }
            return PasswordHash.verify(password, against: stored)
        }
        guard valid, let user = try await store.user(named: name) else {
            log("console: failed sign-in for \(name.debugDescription) from \(context.remote)")
            return loginPage(context: context, userName: name, message: "Wrong user name or password.", status: .unauthorized)
        }
        let (token, _) = consoleSessions.start(user: user.name)
        try await audit(Caller(user: user, remote: context.remote), "console-login", user.name, Data())
        var headers = HTTPFields()
        headers[values: .setCookie] = [
            ConsoleMiddleware.setCookie(ConsoleMiddleware.sessionCookie, token, maxAge: Int(consoleSessions.lifetime)),
            ConsoleMiddleware.setCookie(ConsoleMiddleware.loginCookie, nil, maxAge: 0),
        ]
        return ConsoleResponse.redirect("/clients", headers: headers)
    }
}
