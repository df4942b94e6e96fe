import Foundation
import VQL

/// `rekey()` as an enrolled agent runs it: after `wait` seconds the agent drops its key,
/// certificate and client id and closes its connection, so its next connection enrols afresh
/// and the server sees a new client. (Cloned machines that share an identity are fixed this way.)
extension FleetAgent {
    /// The agent's own rekey(), replacing the host library's placeholder in each collection.
    var rekeyFunction: FunctionDeclaration {
        FunctionDeclaration(
            name: "rekey",
            summary: RekeyFunction.summary,
            arguments: RekeyFunction.arguments,
            returns: .bool,
            examples: ["SELECT rekey(wait=10) FROM scope()"],
            permissions: [.execve]
        ) { [self] ctx in
            let wait = Double(min(max(0, ctx.int("wait") ?? 0), 86_400))
            ctx.log(.warning, "rekey(): this client drops its identity in \(Int(wait)) s and enrols again")
            scheduleRekey(after: wait)
            return .bool(true)
        }
    }

    /// Removes the identity after `seconds` and closes the connection; run() then re-enrols.
    func scheduleRekey(after seconds: Double) {
        Thread.detachNewThread { [self] in
            Thread.sleep(forTimeInterval: seconds)
            for name in ["client.key", "client.crt", "client_id"] { unlink(stateDir + "/" + name) }
            log("rekey: identity removed; enrolling again")
            socket.withLockedValue { $0 }?.close()
        }
    }
}
