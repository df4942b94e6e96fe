import CLibBPF
import Foundation
import Testing
import VQL
@testable import QuarryEvents

/// The hub with BPF forced off (as QUARRY_EBPF=off does, or a kernel refusing it): process
/// events from the netlink process connector, file events from fanotify, and a clear word
/// about what cannot be provided.
extension KernelSuite {
@Suite(.enabled(if: Events.isRoot, "the process connector and fanotify need root"))
struct FallbackTests {
    @Test func execAndExitFromTheProcessConnector() throws {
        let hub = Events.hub(allowBPF: false)
        let marker = Events.marker("connector")
        let watch = Watch("SELECT * FROM watch_ebpf(events=['sched_process_exec', 'sched_process_exit'])", hub: hub)
        defer { watch.stop() }
        #expect(Events.wait { hub.state(of: EventCatalog.kind(QE_EXEC).type) == .fallback("proc_connector") })
        #expect(!hub.isBPFLoaded)
        // The child lives long enough for /proc to be read at its exec.
        let child = try Events.run("/bin/sh", ["-c", "sleep 0.3; exit 3", marker])
        let exec = watch.first { $0["System.HostProcessID"].intValue == Int64(child.pid) && $0["System.EventName"].stringValue == "sched_process_exec" }
        #expect(exec?["System.Source"].stringValue == "proc_connector")
        #expect(exec?["System.HostParentProcessID"].intValue == Int64(getpid()))
        #expect(exec?["EventData.argv"].listElements?.compactMap(\.stringValue) == ["/bin/sh", "-c", "sleep 0.3; exit 3", marker])
        #expect(exec?["EventData.pathname"].stringValue?.hasPrefix("/usr/bin/") == true)
        let exit = watch.first { $0["System.HostProcessID"].intValue == Int64(child.pid) && $0["System.EventName"].stringValue == "sched_process_exit" }
        #expect(exit?["EventData.exit_code"].intValue == 3 << 8)
        #expect(watch.logger.messages.contains { $0.contains("sched_process_exec from proc_connector") && $0.contains("QUARRY_EBPF=off") })
    }

    @Test func fileWritesFromFanotify() throws {
        let dir = Events.scratch("fanotify")
        defer { Events.remove(dir) }
        let hub = Events.hub(allowBPF: false)
        let watch = Watch("SELECT * FROM watch_ebpf(events='security_file_open', path_prefix='\(dir)/watched')", hub: hub)
        defer { watch.stop() }
        #expect(Events.wait { hub.state(of: EventCatalog.kind(QE_FILE_OPEN).type) != nil })
        #expect(hub.state(of: EventCatalog.kind(QE_FILE_OPEN).type) == .fallback("fanotify"))
        let pid = try Events.run("/bin/sh", ["-c", "echo x > \(dir)/watched.txt; echo y > \(dir)/other.txt"]).pid
        let write = watch.first { $0["EventData.pathname"].stringValue == dir + "/watched.txt" && $0["EventData.flags"].stringValue == "O_WRONLY" }
        #expect(write?["System.HostProcessID"].intValue == Int64(pid))
        #expect(write?["System.Source"].stringValue == "fanotify")
        #expect((write?["EventData.inode"].intValue ?? 0) > 0)
        #expect(!watch.all.contains { $0["EventData.pathname"].stringValue == dir + "/other.txt" })
    }

    @Test func eventsWithoutAFallbackAreNamedAsUnavailable() throws {
        let hub = Events.hub(allowBPF: false)
        let watch = Watch("SELECT * FROM watch_ebpf(events=['security_socket_connect', 'sched_process_exec'])", hub: hub)
        defer { watch.stop() }
        #expect(Events.wait { watch.logger.messages.contains { $0.contains("cannot provide security_socket_connect") } })
        let (session, _) = Events.session(hub: hub)
        let rows = try session.run("SELECT Name, Source, Reason FROM ebpf_events()").last ?? nil
        let connect = rows?.first { $0["Name"].stringValue == "security_socket_connect" }
        #expect(connect?["Source"].stringValue == "unavailable")
        #expect(connect?["Reason"].stringValue?.contains("eBPF") == true)
        #expect(rows?.first { $0["Name"].stringValue == "sched_process_exec" }?["Source"].stringValue == "proc_connector")
        #expect(rows?.first { $0["Name"].stringValue == "net_packet_dns" }?["Source"].stringValue == "idle")
    }
}
}
