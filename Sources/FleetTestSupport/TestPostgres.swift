import Foundation
import PostgresNIO

import FleetPostgres

/// A real PostgreSQL server for the tests: one per test run, a fresh database per test.
///
/// `start()` looks for Debian's binaries (`/usr/lib/postgresql/*/bin`, newest first, then `PATH`, or
/// the directory `QUARRY_TEST_POSTGRES_BIN` names), runs `initdb` into a new temporary directory and
/// starts the server with `pg_ctl`, listening only on a Unix socket in that directory (no TCP port). As root (initdb refuses root) the binaries run
/// as the `postgres` system user through `runuser`, and the directory belongs to that user (mode 700).
/// The server is stopped (`pg_ctl stop -m immediate`) and its directory removed when the test process
/// exits; directories left by a test process that died are cleaned at the next start.
///
/// `QUARRY_TEST_POSTGRES_URL=postgres://…` uses that server instead (its user must be allowed to
/// create databases). Without binaries or URL the PostgreSQL tests are skipped with a message, or
/// fail when `CI` is set or `QUARRY_REQUIRE_POSTGRES=1`.
public final class TestPostgres: Sendable {
    /// The maintenance database's URL (databases are created through it).
    public let adminURL: PostgresURL
    private let admin: PostgresClient
    private let runner: Task<Void, Never>

    private init(adminURL: PostgresURL) {
        self.adminURL = adminURL
        admin = PostgresClient(configuration: adminURL.clientConfiguration(poolSize: 2))
        runner = Task { [admin] in await admin.run() }
    }

    /// The server of this test run: nil when PostgreSQL is not available and not required.
    public static func shared() async throws -> TestPostgres? {
        try await sharedServer.value.get()
    }

    private static let sharedServer = Task { () -> Result<TestPostgres?, any Error> in
        Result { try start() }
    }

    /// Whether a missing PostgreSQL fails the tests rather than skipping them.
    public static var required: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["CI"].map { !$0.isEmpty && $0 != "0" && $0 != "false" } == true
            || environment["QUARRY_REQUIRE_POSTGRES"] == "1"
    }

    /// Starts a server (or connects to `QUARRY_TEST_POSTGRES_URL`); nil when none can be had and
    /// none is required.
    public static func start() throws -> TestPostgres? {
        if let url = ProcessInfo.processInfo.environment["QUARRY_TEST_POSTGRES_URL"], !url.isEmpty {
            return TestPostgres(adminURL: try PostgresURL(url))
        }
        guard let bin = findBinaries() else {
            let message = """
                PostgreSQL's server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or on PATH: \
                install Debian's postgresql package (`make deps` does) or set QUARRY_TEST_POSTGRES_URL
                """
            if required { throw TestPostgresError(message + " (required: CI or QUARRY_REQUIRE_POSTGRES=1 is set)") }
            FileHandle.standardError.write(Data("note: PostgreSQL tests skipped: \(message)\n".utf8))
            return nil
        }
        cleanStaleServers(bin)
        let directory = "/tmp/quarry-pg-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try "\(getpid())".write(toFile: directory + "/owner.pid", atomically: true, encoding: .utf8)
        let asRoot = getuid() == 0
        if asRoot {
            guard let account = getpwnam("postgres") else {
                throw TestPostgresError("running as root, but there is no postgres user to run PostgreSQL as (Debian's postgresql package creates it)")
            }
            guard chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw TestPostgresError("cannot give \(directory) to the postgres user: \(String(cString: strerror(errno)))")
            }
        }
        let data = directory + "/data"
        try runPostgresTool(bin + "/initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], directory)
        let options = [
            "-c listen_addresses=''", "-c unix_socket_directories='\(directory)'", "-c max_connections=300",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off", "-c shared_buffers=128MB",
        ].joined(separator: " ")
        try runPostgresTool(bin + "/pg_ctl", ["-D", data, "-l", directory + "/server.log", "-w", "-t", "60", "-o", options, "start"], directory)
        stateLock.lock()
        started = (bin, directory)
        stateLock.unlock()
        atexit { TestPostgres.stopStartedServer() }
        let url = try PostgresURL("postgres:///postgres?host=\(directory)&user=postgres")
        return TestPostgres(adminURL: url)
    }

    /// A new empty database; returns its URL.
    public func createDatabase() async throws -> (name: String, url: String) {
        let name = "quarry_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        do {
            _ = try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)")).collect()
        } catch {
            throw TestPostgresError("CREATE DATABASE \(name): \(String(reflecting: error))")
        }
        return (name, adminURL.url(database: name))
    }

    /// Drops a database made by `createDatabase` (closing any connection still open to it).
    public func dropDatabase(_ name: String) async {
        _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")).collect()
    }

    // MARK: the local server

    private static let stateLock = NSLock()
    nonisolated(unsafe) private static var started: (bin: String, directory: String)?

    /// Stops the server this process started and removes its directory (at exit).
    static func stopStartedServer() {
        stateLock.lock()
        let server = started
        started = nil
        stateLock.unlock()
        guard let server else { return }
        stop(bin: server.bin, directory: server.directory)
    }

    private static func stop(bin: String, directory: String) {
        if FileManager.default.fileExists(atPath: directory + "/data/postmaster.pid") {
            try? runPostgresTool(bin + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"], directory)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Stops servers and removes directories of earlier test processes that are gone.
    private static func cleanStaleServers(_ bin: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") else { return }
        for name in names where name.hasPrefix("quarry-pg-") {
            let directory = "/tmp/" + name
            guard let text = try? String(contentsOfFile: directory + "/owner.pid", encoding: .utf8),
                  let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { stop(bin: bin, directory: directory) }
        }
    }

    /// The directory of the newest PostgreSQL's server binaries (`QUARRY_TEST_POSTGRES_BIN` names it
    /// instead of the search).
    static func findBinaries() -> String? {
        if let bin = ProcessInfo.processInfo.environment["QUARRY_TEST_POSTGRES_BIN"], !bin.isEmpty {
            return FileManager.default.isExecutableFile(atPath: bin + "/initdb") ? bin : nil
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { name in Int(name).map { (version: $0, bin: "\(root)/\(name)/bin") } }
            .sorted { $0.version > $1.version }
        let candidates = versions.map(\.bin) + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return candidates.first { bin in
            FileManager.default.isExecutableFile(atPath: bin + "/initdb") && FileManager.default.isExecutableFile(atPath: bin + "/pg_ctl")
        }
    }

    /// Runs a PostgreSQL program (as the postgres user when this process is root) and waits for it;
    /// its output goes to DIRECTORY/setup.log, quoted in the error when it fails. posix_spawn and
    /// waitpid rather than Foundation's Process, whose waitUntilExit can miss the exit of a program
    /// that leaves a daemon behind (pg_ctl start).
    private static func runPostgresTool(_ tool: String, _ arguments: [String], _ directory: String) throws {
        let argv = (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", tool] : [tool]) + arguments
        // A file, not a pipe: the server that pg_ctl starts would hold a pipe open.
        let logPath = directory + "/setup.log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw TestPostgresError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw TestPostgresError("waiting for \(argv[0]): \(String(cString: strerror(errno)))") }
        }
        // Exited normally with status 0 (the wait status holds the exit code in its second byte).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            let serverLog = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            throw TestPostgresError(
                "\(argv.joined(separator: " ")) failed (wait status \(status)):\n\(output.suffix(2_000))\(serverLog.suffix(2_000))")
        }
    }
}

/// Why the test PostgreSQL could not be had.
struct TestPostgresError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
