import CLibBPF
import Foundation

/// Why loading the BPF object failed: the kernel refused (no CAP_BPF, old kernel, verifier), or
/// the embedded object is missing. The message is short and bounded (never a whole verifier log).
public struct BPFLoadError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// One loaded copy of the embedded `quarry.bpf.o`: its programs, maps and attached links.
/// Programs whose hook does not exist in the running kernel are left unloaded, and a program
/// the verifier rejects is dropped and the load retried without it, so one missing hook costs
/// its events only. Not thread-safe: `BPFRuntime` owns it under its lock.
final class BPFObject {
    /// Program name → why it is not available (missing hook, verifier, attach failure).
    private(set) var unavailable: [String: String] = [:]
    private let object: OpaquePointer
    /// libelf reads the object in place until the load completes: the bytes must outlive it.
    private let bytes: Data
    private var links: [String: OpaquePointer] = [:]
    private var cgroupFD: Int32 = -1

    private init(object: OpaquePointer, bytes: Data, unavailable: [String: String]) {
        self.object = object
        self.bytes = bytes
        self.unavailable = unavailable
    }

    deinit {
        for link in links.values { bpf_link__destroy(link) }
        bpf_object__close(object)
        if cgroupFD >= 0 { close(cgroupFD) }
    }

    /// Opens and loads the embedded object with a ring buffer of `ringBufferBytes` (a power of
    /// two, at least one page).
    static func load(ringBufferBytes: Int) throws -> BPFObject {
        guard let encoded = EmbeddedBPF.objects["quarry"], let bytes = Data(base64Encoded: encoded) else {
            throw BPFLoadError(message: "the BPF object is not embedded in this build")
        }
        quarry_libbpf_capture_log()
        let kernelBTF = btf__load_vmlinux_btf()
        defer { if let kernelBTF { btf__free(kernelBTF) } }
        guard let kernelBTF else {
            throw BPFLoadError(message: "the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load")
        }
        var skipped: [String: String] = [:]
        // One attempt per program at most: each failed load names the program to drop.
        for _ in 0..<24 {
            quarry_libbpf_clear_log()
            let opened: OpaquePointer? = bytes.withUnsafeBytes { raw in
                bpf_object__open_mem(raw.baseAddress, raw.count, nil)
            }
            guard let object = opened else {
                throw BPFLoadError(message: "cannot open the BPF object: \(String(cString: strerror(errno)))")
            }
            var program = bpf_object__next_program(object, nil)
            while let current = program {
                let name = String(cString: bpf_program__name(current))
                if let reason = skipped[name] ?? missingHook(current, btf: kernelBTF) {
                    skipped[name] = reason
                    bpf_program__set_autoload(current, false)
                }
                program = bpf_object__next_program(object, current)
            }
            if let events = bpf_object__find_map_by_name(object, "events") {
                bpf_map__set_max_entries(events, UInt32(ringBufferBytes))
            }
            let status = bpf_object__load(object)
            if status == 0 { return BPFObject(object: object, bytes: bytes, unavailable: skipped) }
            let log = String(cString: quarry_libbpf_log_text())
            bpf_object__close(object)
            // "prog 'NAME': failed to load": drop that one and retry; otherwise give up.
            guard let failed = failedProgram(in: log), skipped[failed] == nil else {
                throw BPFLoadError(message: summary(status: status, log: log))
            }
            skipped[failed] = "rejected by the kernel: " + summary(status: status, log: log)
        }
        throw BPFLoadError(message: "too many BPF programs were rejected")
    }

    /// The reason a program's hook is absent from this kernel, or nil when it exists.
    private static func missingHook(_ program: OpaquePointer, btf: OpaquePointer) -> String? {
        let section = String(cString: bpf_program__section_name(program))
        if section.hasPrefix("tp_btf/") {
            let tracepoint = String(section.dropFirst("tp_btf/".count))
            // BTF_KIND_TYPEDEF: every tracepoint has a typedef btf_trace_NAME.
            if btf__find_by_name_kind(btf, "btf_trace_" + tracepoint, 8) < 0 {
                return "the kernel has no tracepoint \(tracepoint)"
            }
        }
        if section.hasPrefix("cgroup_skb/"), CgroupV2.mountPoint() == nil {
            return "no cgroup v2 hierarchy is mounted"
        }
        return nil
    }

    private static func failedProgram(in log: String) -> String? {
        for line in log.split(separator: "\n") where line.contains("failed to load") || line.contains("load failed") {
            guard let open = line.range(of: "prog '"), let close = line[open.upperBound...].firstIndex(of: "'") else { continue }
            return String(line[open.upperBound..<close])
        }
        return nil
    }

    /// A one-line reason: the errno, and the most telling line of libbpf's log.
    private static func summary(status: Int32, log: String) -> String {
        let code = status < 0 ? -status : status
        var reason = String(cString: strerror(code))
        let lines = log.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        if let telling = lines.last(where: { !$0.hasPrefix("libbpf:") && !$0.isEmpty && !$0.hasPrefix("processed") && !$0.hasPrefix("--") })
            ?? lines.last(where: { !$0.isEmpty }) {
            reason += " (" + String(telling.prefix(200)) + ")"
        }
        if code == EPERM { reason += "; loading BPF needs CAP_BPF and CAP_PERFMON (or root)" }
        return reason
    }

    // MARK: Programs

    var programNames: [String] {
        var names: [String] = []
        var program = bpf_object__next_program(object, nil)
        while let current = program {
            names.append(String(cString: bpf_program__name(current)))
            program = bpf_object__next_program(object, current)
        }
        return names
    }

    func isAttached(_ name: String) -> Bool { links[name] != nil }

    /// Attaches a program; false (and the reason recorded) when it cannot be.
    @discardableResult
    func attach(_ name: String) -> Bool {
        if links[name] != nil { return true }
        if unavailable[name] != nil { return false }
        guard let program = bpf_object__find_program_by_name(object, name) else {
            unavailable[name] = "no such program"
            return false
        }
        let link: OpaquePointer?
        if bpf_program__type(program) == BPF_PROG_TYPE_CGROUP_SKB {
            if cgroupFD < 0, let mount = CgroupV2.mountPoint() { cgroupFD = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            link = cgroupFD >= 0 ? bpf_program__attach_cgroup(program, cgroupFD) : nil
        } else {
            link = bpf_program__attach(program)
        }
        guard let link else {
            unavailable[name] = "cannot attach: \(String(cString: strerror(errno)))"
            return false
        }
        links[name] = link
        return true
    }

    func detach(_ name: String) {
        if let link = links.removeValue(forKey: name) { bpf_link__destroy(link) }
    }

    var attached: Set<String> { Set(links.keys) }

    // MARK: Maps

    func mapFD(_ name: String) -> Int32 {
        guard let map = bpf_object__find_map_by_name(object, name) else { return -1 }
        return bpf_map__fd(map)
    }

    /// Writes element 0 of an array map.
    func writeFirst(_ name: String, _ value: inout qe_config) -> Bool {
        let fd = mapFD(name)
        guard fd >= 0 else { return false }
        var key: UInt32 = 0
        return bpf_map_update_elem(fd, &key, &value, 0) == 0
    }

    /// Sums a per-CPU u64 counter over every possible CPU.
    func counter(_ index: UInt32) -> UInt64 {
        let fd = mapFD("counters")
        let cpus = Int(libbpf_num_possible_cpus())
        guard fd >= 0, cpus > 0 else { return 0 }
        var values = [UInt64](repeating: 0, count: cpus)
        var key = index
        guard bpf_map_lookup_elem(fd, &key, &values) == 0 else { return 0 }
        return values.reduce(0, &+)
    }
}

/// Where the cgroup v2 hierarchy is mounted (the DNS programs attach at its root).
enum CgroupV2 {
    static func mountPoint() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 2, fields[2] == "cgroup2" { return String(fields[1]) }
        }
        return nil
    }
}
