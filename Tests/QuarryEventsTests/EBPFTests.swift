import CLibBPF
import Foundation
import Testing
import VQL
@testable import QuarryEvents

/// Every suite that loads BPF or counts the process's BPF objects runs inside this one, one
/// test at a time, so their counts and hubs do not mix.
@Suite(.serialized) struct KernelSuite {}

extension KernelSuite {
/// watch_ebpf() against the real kernel: real processes, sockets, files, DNS packets. Skipped
/// (with the kernel's reason) where BPF is refused; FallbackTests then cover the same ground.
@Suite(.enabled(if: Events.bpfAvailable, Events.skipMessage))
struct EBPFTests {
    /// One hub shared by this suite's event tests (its own, not the process-wide one).
    static let hub = Events.hub()

    @Test func execAndExitOfAMarkedProcess() throws {
        let marker = Events.marker("exec")
        let watch = Watch("SELECT * FROM watch_ebpf(events=['sched_process_exec', 'sched_process_exit'])", hub: Self.hub)
        defer { watch.stop() }
        #expect(Events.wait { Self.hub.attachedPrograms.contains("on_exec") })
        let child = try Events.run("/bin/sh", ["-c", "exit 7", marker])
        let exec = watch.first { $0["EventData.argv"].listElements?.contains { $0.stringValue == marker } == true }
        #expect(exec?["System.HostProcessID"].intValue == Int64(child.pid))
        #expect(exec?["System.HostParentProcessID"].intValue == Int64(getpid()))
        #expect(exec?["System.ProcessID"].intValue == Int64(child.pid))
        #expect(exec?["System.UserID"].intValue == Int64(getuid()))
        #expect(exec?["System.EventName"].stringValue == "sched_process_exec")
        #expect(exec?["System.Source"].stringValue == "ebpf")
        #expect(exec?["EventData.cmdpath"].stringValue == "/bin/sh")
        let shell = try FileManager.default.destinationOfSymbolicLink(atPath: "/bin/sh")
        #expect(exec?["EventData.pathname"].stringValue?.hasSuffix("/" + (shell as NSString).lastPathComponent) == true)
        #expect(exec?["EventData.argv"].listElements?.compactMap(\.stringValue) == ["/bin/sh", "-c", "exit 7", marker])
        #expect(exec?["EventData.fileless"].isTruthy == false)
        if case .timestamp(let time) = exec?["System.Timestamp"] ?? .null {
            #expect(abs(time.seconds - Date().timeIntervalSince1970) < 30)
        } else {
            Issue.record("System.Timestamp is not a timestamp")
        }
        let exit = watch.first {
            $0["System.EventName"].stringValue == "sched_process_exit" && $0["System.HostProcessID"].intValue == Int64(child.pid)
        }
        #expect(exit?["EventData.exit_code"].intValue == 7 << 8)
        #expect(exit?["System.HostParentProcessID"].intValue == Int64(getpid()))
    }

    @Test func connectAcceptAndBindOnLoopback() throws {
        let watch = Watch("SELECT * FROM watch_ebpf(events=['security_socket_connect', 'security_socket_accept', 'security_socket_bind'], comm='python3')", hub: Self.hub)
        defer { watch.stop() }
        #expect(Events.wait { Self.hub.attachedPrograms.contains("on_sys_exit") })
        let script = """
            import socket
            listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(1)
            client = socket.socket(); client.connect(listener.getsockname())
            peer, _ = listener.accept()
            print(listener.getsockname()[1], client.getsockname()[1])
            """
        let result = try Events.python(script)
        let ports = result.output.split(whereSeparator: \.isWhitespace).compactMap { Int64($0) }
        #expect(ports.count == 2)
        let (server, client) = (ports.first ?? -1, ports.last ?? -1)
        func event(_ name: String) -> Value? {
            watch.first { $0["System.EventName"].stringValue == name && $0["System.HostProcessID"].intValue == Int64(result.pid) }
        }
        let bind = event("security_socket_bind")
        #expect(bind?["EventData.local_addr.sa_family"].stringValue == "AF_INET")
        #expect(bind?["EventData.local_addr.sin_addr"].stringValue == "127.0.0.1")
        let connect = event("security_socket_connect")
        #expect(connect?["EventData.remote_addr.sin_port"].stringValue == String(server))
        #expect(connect?["EventData.remote_addr.sin_addr"].stringValue == "127.0.0.1")
        #expect(connect?["EventData.type"].stringValue == "SOCK_STREAM")
        #expect(connect?["System.ReturnValue"].intValue == 0)
        let accept = event("security_socket_accept")
        #expect(accept?["EventData.local_addr.sin_port"].stringValue == String(server))
        #expect(accept?["EventData.remote_addr.sin_port"].stringValue == String(client))
    }

    @Test func fileOpensFilteredByPathPrefixInTheKernel() throws {
        let dir = Events.scratch("open")
        defer { Events.remove(dir) }
        // A hub of its own: its counters then count this test's events only.
        let hub = Events.hub()
        let watched = dir + "/watched"
        let watch = Watch("SELECT * FROM watch_ebpf(events='security_file_open', path_prefix='\(watched)')", hub: hub)
        defer { watch.stop() }
        #expect(Events.wait { hub.attachedPrograms.contains("on_sys_exit") })
        let before = hub.kernelCounters
        let pid = try Events.run("/bin/sh", ["-c", "echo x > \(watched).txt; cat \(dir)/other.txt 2>/dev/null; echo y > \(dir)/other.txt; cat \(watched).txt"]).pid
        let write = watch.first { $0["EventData.pathname"].stringValue == watched + ".txt" && $0["EventData.flags"].stringValue?.contains("O_WRONLY") == true }
        #expect(write?["System.HostProcessID"].intValue == Int64(pid))
        #expect(write?["EventData.flags"].stringValue?.contains("O_CREAT") == true)
        #expect(write?["EventData.inode"].intValue ?? 0 > 0)
        _ = watch.first { $0["EventData.flags"].stringValue == "O_RDONLY" }
        Thread.sleep(forTimeInterval: 0.3)
        #expect(!watch.all.contains { $0["EventData.pathname"].stringValue?.hasPrefix(watched) != true })
        // The kernel sent exactly what arrived: the other opens never reached user space.
        let after = hub.kernelCounters
        #expect((after?.sent ?? 0) - (before?.sent ?? 0) == UInt64(watch.all.count))
        #expect((after?.filtered ?? 0) > (before?.filtered ?? 0))
    }

    /// The same selection written as a WHERE (no path_prefix=): the event type and the path's
    /// literal prefix go into the kernel filter, so the other opens and the execs never arrive.
    @Test func whereClauseFiltersInTheKernel() throws {
        // A folder whose path has few letters: VQL's =~ ignores case, so the kernel gets every
        // case variant of the prefix, and only up to eight of them.
        let dir = "/tmp/\(UInt32.random(in: 100_000...999_999))-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir + "/1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/2", withIntermediateDirectories: true)
        defer { Events.remove(dir) }
        let hub = Events.hub()
        let watch = Watch("""
            SELECT * FROM watch_ebpf(events=['security_file_open', 'sched_process_exec'])
            WHERE System.EventName = 'security_file_open' AND EventData.pathname =~ '^\(dir)/1/'
            """, hub: hub)
        defer { watch.stop() }
        #expect(Events.wait { hub.attachedPrograms.contains("on_sys_exit") })
        let before = hub.kernelCounters
        _ = try Events.run("/bin/sh", ["-c", "echo x > \(dir)/1/a; echo y > \(dir)/2/b; cat \(dir)/2/b \(dir)/1/a; /bin/true"])
        let write = watch.first { $0["EventData.pathname"].stringValue == dir + "/1/a" }
        #expect(write != nil, "\(watch.logger.messages)")
        Thread.sleep(forTimeInterval: 0.3)
        #expect(!watch.all.contains { $0["EventData.pathname"].stringValue?.hasPrefix(dir + "/1/") != true })
        let after = hub.kernelCounters
        #expect((after?.sent ?? 0) - (before?.sent ?? 0) == UInt64(watch.all.count), "\(watch.all.count) rows")
        #expect((after?.filtered ?? 0) > (before?.filtered ?? 0))
        #expect(watch.logger.messages.contains { $0.contains("from WHERE, filtered in the kernel") })
    }

    @Test func memfdExecutionIsFileless() throws {
        let marker = Events.marker("memfd")
        let watch = Watch("SELECT * FROM watch_ebpf(events=['memfd_create', 'sched_process_exec'])", hub: Self.hub)
        defer { watch.stop() }
        #expect(Events.wait { Self.hub.attachedPrograms.contains("on_sys_exit") && Self.hub.attachedPrograms.contains("on_exec") })
        let script = """
            import os, sys
            fd = os.memfd_create(sys.argv[1], 0)
            os.write(fd, open('/bin/true', 'rb').read())
            os.execve(fd, ['fileless', sys.argv[1]], {})
            """
        let result = try Events.python(script, [marker])
        #expect(result.status == 0)
        let create = watch.first { $0["System.EventName"].stringValue == "memfd_create" && $0["EventData.name"].stringValue == marker }
        #expect(create?["System.HostProcessID"].intValue == Int64(result.pid))
        #expect((create?["System.ReturnValue"].intValue ?? -1) >= 0)
        let exec = watch.first {
            $0["System.EventName"].stringValue == "sched_process_exec" && $0["EventData.argv"].listElements?.first?.stringValue == "fileless"
        }
        #expect(exec?["EventData.fileless"].isTruthy == true)
        #expect(exec?["EventData.pathname"].stringValue == "memfd:" + marker)
        #expect(exec?["System.HostProcessID"].intValue == Int64(result.pid))
    }

    @Test(.enabled(if: Events.isRoot, "needs root to attach and to change uid"))
    func ptraceSetuidAndModuleLoadAttempts() throws {
        let watch = Watch("SELECT * FROM watch_ebpf(events=['ptrace', 'setuid', 'commit_creds', 'finit_module'])", hub: Self.hub)
        defer { watch.stop() }
        #expect(Events.wait { Self.hub.attachedPrograms.contains("on_sys_enter") })
        let target = Process()
        target.executableURL = URL(fileURLWithPath: "/bin/sleep")
        target.arguments = ["30"]
        try target.run()
        defer {
            kill(target.processIdentifier, SIGKILL)
            target.waitUntilExit()
        }
        let script = """
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            target = int(sys.argv[1])
            assert libc.ptrace(16, target, 0, 0) == 0
            os.waitpid(target, 0)
            libc.ptrace(17, target, 0, 0)
            libc.syscall(313, -1, b"", 0)
            os.setuid(65534)
            """
        let helper = try Events.python(script, [String(target.processIdentifier)])
        #expect(helper.status == 0)
        func event(_ name: String) -> Value? {
            watch.first { $0["System.EventName"].stringValue == name && $0["System.HostProcessID"].intValue == Int64(helper.pid) }
        }
        let attach = event("ptrace")
        #expect(attach?["EventData.request"].stringValue == "PTRACE_ATTACH")
        #expect(attach?["EventData.pid"].intValue == Int64(target.processIdentifier))
        #expect(attach?["System.ReturnValue"].intValue == 0)
        let setuid = event("setuid")
        #expect(setuid?["EventData.uid"].intValue == 65534)
        #expect(setuid?["System.ReturnValue"].intValue == 0)
        let creds = event("commit_creds")
        #expect(creds?["EventData.old_cred.Uid"].intValue == 0)
        #expect(creds?["EventData.new_cred.Uid"].intValue == 65534)
        #expect(creds?["EventData.new_cred.Euid"].intValue == 65534)
        // The module syscall is reported whatever it returns (no module support here: ENOSYS).
        let module = event("finit_module")
        #expect(module?["EventData.fd"].intValue == -1)
        #expect(module?["System.ReturnValue"].intValue ?? 0 < 0)
    }

    @Test func uidAndProcessNameFiltersApply() throws {
        let marker = Events.marker("filter")
        let watch = Watch("SELECT * FROM watch_ebpf(events='sched_process_exec', comm='true', uid=\(getuid()))", hub: Self.hub)
        let other = Watch("SELECT * FROM watch_ebpf(events='sched_process_exec', uid=4242)", hub: Self.hub)
        defer {
            watch.stop()
            other.stop()
        }
        #expect(Events.wait { Self.hub.attachedPrograms.contains("on_exec") })
        _ = try Events.run("/bin/echo", [marker])
        let truePid = try Events.run("/bin/true", [marker]).pid
        let seen = watch.first { $0["System.HostProcessID"].intValue == Int64(truePid) }
        #expect(seen?["System.ProcessName"].stringValue == "true")
        #expect(!watch.all.contains { $0["System.ProcessName"].stringValue != "true" })
        #expect(!other.all.contains { $0["System.UserID"].intValue != 4242 })
    }

    @Test func unknownEventsAreReportedWithASuggestion() throws {
        let (session, logger) = Events.session(hub: Self.hub)
        let rows = try session.run("SELECT * FROM watch_ebpf(events='sched_proces_exec')").last ?? nil
        #expect(rows?.isEmpty == true)
        #expect(logger.messages.contains { $0.contains("did you mean 'sched_process_exec'") })
    }
}

}

extension KernelSuite {
/// The shared object's life: one load for many queries, detach when the last leaves, losses counted.
@Suite(.enabled(if: Events.bpfAvailable, Events.skipMessage))
struct EBPFLifecycleTests {
    /// File descriptors of this process that are BPF programs or links.
    static func bpfDescriptors() -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            return target.contains("bpf-prog") || target.contains("bpf_link") || target.contains("bpf-link")
        }.count
    }

    @Test func queriesShareOneObjectAndCancellingTheLastDetachesIt() throws {
        let hub = Events.hub()
        let baseline = Self.bpfDescriptors()
        let first = Watch("SELECT * FROM watch_ebpf(events='sched_process_exec')", hub: hub)
        #expect(Events.wait { hub.isBPFLoaded && hub.attachedPrograms == ["on_exec"] })
        let loaded = Self.bpfDescriptors()
        #expect(loaded > baseline)
        let second = Watch("SELECT * FROM watch_ebpf(events=['sched_process_exec', 'security_file_open'])", hub: hub)
        #expect(Events.wait { hub.subscriberCount == 2 && hub.attachedPrograms == ["on_exec", "on_sys_exit"] })
        // Still one object: the program count grew by the new link only, not a second load.
        #expect(Self.bpfDescriptors() <= loaded + 2)
        second.stop()
        #expect(Events.wait { hub.subscriberCount == 1 && hub.attachedPrograms == ["on_exec"] })
        first.stop()
        #expect(Events.wait { hub.subscriberCount == 0 && !hub.isBPFLoaded })
        #expect(hub.attachedPrograms.isEmpty)
        #expect(Events.wait { Self.bpfDescriptors() == baseline })
    }

    @Test func ringBufferOverflowIsCountedAndReported() throws {
        // One page of ring buffer, and the reader held: the kernel must drop and count.
        let hub = Events.hub(ringBufferBytes: 4096)
        let watch = Watch("SELECT * FROM watch_ebpf(events=['sched_process_exec', 'lost_events'])", hub: hub)
        defer { watch.stop() }
        #expect(Events.wait { hub.attachedPrograms.contains("on_exec") })
        hub.pausePolling(true)
        let marker = Events.marker("flood")
        for _ in 0..<60 { _ = try Events.run("/bin/true", [marker, String(repeating: "x", count: 200)]) }
        hub.pausePolling(false)
        #expect(Events.wait(5) { (hub.kernelCounters?.lost ?? 0) > 0 })
        let lossRow = watch.first(within: 5) { $0["System.EventName"].stringValue == "lost_events" }
        #expect((lossRow?["EventData.lost"].intValue ?? 0) > 0)
        #expect(Events.wait { watch.logger.messages.contains { $0.contains("events lost") } })
        func delivered() -> Int { watch.all.filter { $0["EventData.argv"].listElements?.contains { $0.stringValue == marker } == true }.count }
        // Every exec is either delivered or counted lost; the delivered rows may still be on their
        // way through the query when the loss is logged, so their count is awaited.
        #expect(Events.wait(10) { UInt64(delivered()) + (hub.kernelCounters?.lost ?? 0) >= 60 }, "\(delivered()) delivered, \(hub.kernelCounters?.lost ?? 0) lost")
        #expect(delivered() < 60)
    }
}
}
