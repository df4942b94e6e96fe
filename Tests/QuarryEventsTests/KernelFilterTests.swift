import CLibBPF
import Testing
@testable import QuarryEvents

@Suite struct KernelFilterTests {
    @Test func slotsShareTablesAndOverflowLeavesDimensionUnfiltered() {
        let exec = UInt32(QE_EXEC.rawValue), open = UInt32(QE_FILE_OPEN.rawValue)
        let a = EventFilter(types: [exec], comms: ["bash"], uids: [0])
        let b = EventFilter(types: [exec, open], comms: ["bash", "sshd"], pathPrefixes: ["/etc/"])
        let manyUids = EventFilter(types: [open], uids: (0..<40).map { UInt32($0) })
        let config = KernelFilter.encode([(0, a), (1, b), (5, manyUids)], selfPid: 42)
        let slots = withUnsafeBytes(of: config.event_slots) { raw in (0..<Int(QE_EVENT_COUNT.rawValue)).map { raw.load(fromByteOffset: $0 * 8, as: UInt64.self) } }
        #expect(slots[Int(exec)] == 0b11)
        #expect(slots[Int(open)] == 0b100010)
        #expect(config.comm_count == 2)
        #expect(config.comm_filtered == 0b11)
        #expect(config.uid_filtered == 0b1)   // slot 5's 40 uids do not fit: not filtered in the kernel
        #expect(config.path_filtered == 0b10)
        #expect(config.prefix_count == 1)
        #expect(config.prefixes.0.length == 5)
        #expect(config.self_tgid == 42)
    }
}
