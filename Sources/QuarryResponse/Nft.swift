import CResponse
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs Debian's `nft` (and `ip netns exec` around it when a network namespace is named), the only
/// way isolation touches the network configuration.
struct Nft: Sendable {
    /// The network namespace to act in (a name under /run/netns), or nil for the agent's own.
    let namespace: String?

    static func find(_ names: [String]) -> String? { names.first { FileManager.default.isExecutableFile(atPath: $0) } }
    static var nftPath: String? { find(["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]) }
    static var ipPath: String? { find(["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]) }

    init(namespace: String?) throws {
        if let ns = namespace {
            guard !ns.isEmpty, ns.count <= 64, ns.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }), !ns.hasPrefix(".") else {
                throw ResponseError("'\(ns)' is not a network namespace name")
            }
            guard FileManager.default.fileExists(atPath: "/run/netns/" + ns) else { throw ResponseError("no network namespace \(ns)") }
        }
        self.namespace = namespace
    }

    /// The argv prefix that puts a command in the namespace.
    func prefix() throws -> [String] {
        guard let ns = namespace else { return [] }
        guard let ip = Nft.ipPath else { throw ResponseError("ip (iproute2) is not installed") }
        return [ip, "netns", "exec", ns]
    }

    /// `nft ARGS` with `input` on stdin; throws with nft's message when it fails.
    @discardableResult
    func run(_ arguments: [String], input: String? = nil) throws -> String {
        guard let nft = Nft.nftPath else { throw ResponseError("nft (nftables) is not installed") }
        let argv = try prefix() + [nft] + arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ResponseError("nft \(arguments.joined(separator: " ")): \(String(decoding: err, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether Quarry's isolation table exists.
    func tableExists() throws -> Bool {
        try run(["list", "tables", "inet"]).split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "table inet \(IsolationPlan.table)" }
    }

    /// Starts the dead man's switch: a detached shell (it outlives the agent) that deletes the
    /// table once the heartbeat file is older than `seconds`, unless the isolation record no longer
    /// names `id` (lifted or replaced). Returns its pid.
    func startDeadman(id: String, seconds: Int, statePath: String, heartbeat: String, audit: String) throws -> Int32 {
        guard let nft = Nft.nftPath else { throw ResponseError("nft (nftables) is not installed") }
        let script = """
            state="$1"; beat="$2"; limit="$3"; nft="$4"; table="$5"; id="$6"; audit="$7"
            while :; do
              sleep 1
              grep -q "\\"$id\\"" "$state" 2>/dev/null || exit 0
              now=$(date +%s); last=$(stat -c %Y "$beat" 2>/dev/null || echo 0)
              [ $((now - last)) -ge "$limit" ] && break
            done
            "$nft" delete table inet "$table"
            rm -f "$state"
            printf '{"action":"isolation_deadman","id":"%s","time":"%s","lifted":"no heartbeat for %s s"}\\n' "$id" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$limit" >> "$audit"
            """
        let argv = (try prefix()) + ["/bin/sh", "-c", script, "quarry-deadman", statePath, heartbeat, String(seconds), nft, IsolationPlan.table, id, audit]
        let pid = Nft.spawnDetached(argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"])
        guard pid > 0 else { throw ResponseError("cannot start the dead man's switch: \(String(cString: strerror(errno)))") }
        // Reap it when it ends (if the agent is still running then).
        Thread.detachNewThread { var status: Int32 = 0; _ = waitpid(pid, &status, 0) }
        return pid
    }

    /// posix_spawn in a new session with only /dev/null on 0-2: no inherited descriptor keeps
    /// anyone's pipe open for as long as the child lives.
    static func spawnDetached(_ argv: [String], environment: [String]) -> pid_t {
        func cStrings(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] { strings.map { strdup($0) } + [nil] }
        let args = cStrings(argv), env = cStrings(environment)
        defer { for p in args + env { free(p) } }
        return quarry_spawn_detached(argv[0], args, env)
    }
}
