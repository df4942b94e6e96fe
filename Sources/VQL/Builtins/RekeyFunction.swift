/// `rekey()`: asks an enrolled agent to drop its identity and enrol again as a new client.
/// The language core declares it (so queries and artifacts that call it bind everywhere); only
/// the fleet agent replaces it with one that acts, in the registry of each collection it runs.
public enum RekeyFunction {
    public static let summary =
        "Makes an enrolled agent discard its key and client id after `wait` seconds and enrol again as a new client (use on cloned machines); TRUE when scheduled. Outside an agent it does nothing and returns FALSE."
    public static let arguments = [ArgumentSpec("wait", .int, "Seconds to wait first, so the current collection can finish (default 0).")]

    /// The declaration used where no agent runs: it explains and returns FALSE.
    public static let placeholder = FunctionDeclaration(
        name: "rekey", summary: summary, arguments: arguments, returns: .bool,
        examples: ["SELECT rekey(wait=10) AS Scheduled FROM scope()"]
    ) { ctx in
        ctx.log(.warning, "rekey(): this process is not an enrolled agent; nothing to rekey")
        return .bool(false)
    }
}
