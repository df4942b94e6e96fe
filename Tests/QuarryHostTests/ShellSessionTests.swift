import Foundation
import QuarryHost
import Testing
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// shell_session()/shell_session_control() with real bash processes: state kept between
/// commands, output as rows, exit codes, kills that reach the whole process group, and the
/// session ending with the query that started it.
@Suite struct ShellSessionTests {
    static func alive(_ pid: Int64) -> Bool { kill(pid_t(pid), 0) == 0 }

    static func name() -> String { "test-\(UUID().uuidString.prefix(8))" }

    @Test func aSessionKeepsItsStateAndReportsWhatItSaid() throws {
        let (session, logger) = Host.session()
        defer { session.close() }
        let dir = Host.temporaryDirectory()
        defer { Host.cleanup(dir) }
        let name = Self.name()
        let results = try session.run("""
            LET S <= shell_session(name='\(name)', argv=['bash'], cwd='\(dir)', env=dict(QUARRY_TEST='marker'))
            SELECT S.IsRunning AS Was, S.Pid AS Pid, S.Name AS Name FROM scope()
            SELECT shell_session(name='\(name)', argv=['bash']).IsRunning AS Again FROM scope()
            SELECT shell_session_control(name='\(name)', stdin='pwd; echo $QUARRY_TEST; X=41\\n') FROM scope()
            SELECT shell_session_control(name='\(name)', stdin='echo $((X+1)); echo to-stderr >&2\\n') FROM scope()
            SELECT * FROM query(query={ SELECT * FROM foreach(row=S.Query) }, timeout=2, inherit=TRUE)
            SELECT shell_session_control(name='\(name)', stdin='exit 3\\n') FROM scope()
            SELECT * FROM foreach(row=S.Query)
            SELECT shell_session_control(name='\(name)') AS State FROM scope()
            """)
        let first = results[1]?.first
        #expect(first.flatMap { Host.field($0, "Was") }?.isTruthy == false)
        #expect(first.flatMap { Host.string($0, "Name") } == name)
        #expect(results[2]?.first.flatMap { Host.field($0, "Again") }?.isTruthy == true, "a second call returns the running session")
        let early = results[5] ?? []
        let stdout = early.compactMap { Host.string($0, "Stdout") }.joined()
        #expect(stdout == "\(dir)\nmarker\n42\n", "\(early) \(logger.messages)")
        #expect(early.compactMap { Host.string($0, "Stderr") }.joined() == "to-stderr\n")
        #expect(early.compactMap { Host.string($0, "Stdin") }.joined().contains("X=41"))
        #expect(logger.messages.contains { $0.contains("timeout reached") }, "the reader ended at query()'s timeout while bash still ran")
        let late = results[7] ?? []
        #expect(late.compactMap { Host.string($0, "Stdin") }.joined() == "exit 3\n")
        let state = results[8]?.first.flatMap { Host.field($0, "State") }
        #expect(state?.member("IsRunning").isTruthy == false)
        #expect(state?.member("ReturnCode").intValue == 3)
    }

    @Test func killReachesTheWholeProcessGroup() throws {
        let (session, _) = Host.session()
        defer { session.close() }
        let name = Self.name()
        let rows = try session.run("""
            LET S <= shell_session(name='\(name)', argv=['bash'])
            SELECT shell_session_control(name='\(name)', stdin='sleep 300 & echo $!\\n') FROM scope()
            SELECT * FROM query(query={ SELECT * FROM foreach(row=S.Query) }, timeout=1, inherit=TRUE)
            """).last.flatMap { $0 } ?? []
        let sleeper = Int64(rows.compactMap { Host.string($0, "Stdout") }.joined().trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(sleeper > 0 && Self.alive(sleeper))
        let state = try session.run("SELECT shell_session_control(name='\(name)', kill=TRUE) AS K FROM scope()").last.flatMap { $0 }?.first
        let shellPid = state.flatMap { Host.field($0, "K") }?.member("Pid").intValue ?? 0
        let deadline = Date().addingTimeInterval(5)
        while (Self.alive(sleeper) || Self.alive(shellPid)) && Date() < deadline { usleep(20_000) }
        #expect(!Self.alive(sleeper), "the shell's background child died with it")
        #expect(!Self.alive(shellPid))
    }

    @Test func theProgramInheritsNoDescriptorOfTheAgent() throws {
        // A pipe without close-on-exec, as Foundation makes them: it must not reach the shell.
        let pipe = Pipe()
        defer { _ = pipe }
        let (session, _) = Host.session()
        defer { session.context.finish() }
        let pid = try session.run("SELECT shell_session(name='\(Self.name())', argv=['bash']).Pid AS Pid FROM scope()")
            .last.flatMap { $0 }?.first.flatMap { Host.int($0, "Pid") } ?? 0
        // The idle shell, read from outside: only its stdin, stdout and stderr are open.
        usleep(200_000)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.compactMap { Int($0) }.sorted()
        #expect(pid > 0 && open == [0, 1, 2], "\(String(describing: open))")
    }

    @Test func theQueryThatStartedASessionEndsIt() throws {
        let name = Self.name()
        // The handle stays in the scope (LET S): releasing the session must still end the
        // context — and with it the program — without anyone calling finish().
        let pid: Int64 = try {
            let (session, _) = Host.session()
            return try session.run("""
                LET S <= shell_session(name='\(name)', argv=['cat'])
                SELECT S.Pid AS Pid FROM scope()
                """).last.flatMap { $0 }?.first.flatMap { Host.int($0, "Pid") } ?? 0
        }()
        let deadline = Date().addingTimeInterval(5)
        while pid > 0 && Self.alive(pid) && Date() < deadline { usleep(20_000) }
        #expect(pid > 0)
        #expect(!Self.alive(pid), "no shell outlives the query that started it")
    }

    @Test func refusedWithoutExecveAndClearOnBadInput() throws {
        let (session, logger) = Host.session()
        defer { session.close() }
        let missing = try session.run("SELECT shell_session(argv=['/nonexistent/quarry-shell']) AS S, shell_session_control(name='no-such') AS C FROM scope()")
            .last.flatMap { $0 }?.first
        #expect(missing.flatMap { Host.field($0, "S") }?.isNull == true)
        #expect(missing.flatMap { Host.field($0, "C") }?.isNull == true)
        #expect(logger.messages.contains { $0.contains("no session named 'no-such'") })
        let (limited, limitedLog) = Host.session()
        defer { limited.close() }
        limited.context.permissions = [.filesystemRead]
        let refused = try limited.run("SELECT shell_session(argv=['bash']) AS S FROM scope()").last.flatMap { $0 }?.first
        #expect(refused.flatMap { Host.field($0, "S") }?.isNull == true)
        #expect(limitedLog.messages.contains { $0.contains("EXECVE") }, "\(limitedLog.messages)")
    }
}
