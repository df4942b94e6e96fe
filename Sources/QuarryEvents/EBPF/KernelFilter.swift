import CLibBPF

/// What one subscription wants: event kinds, and optionally only these process names, uids
/// and path prefixes. The same filter runs twice: encoded into the kernel's `config` map (so
/// unwanted events never leave the kernel) and exactly in user space (the kernel tables are
/// bounded and may be shared, so they can only ever let more through, never less).
public struct EventFilter: Sendable, Equatable {
    public var types: Set<UInt32>
    /// Process names (the kernel's 15-character comm), exact.
    public var comms: [String] = []
    public var uids: [UInt32] = []
    /// Plain string prefixes of the resolved path ("/etc/" for a folder); only for events with a path.
    public var pathPrefixes: [String] = []
    public var includeEnvironment = false

    public init(types: Set<UInt32>, comms: [String] = [], uids: [UInt32] = [], pathPrefixes: [String] = [], includeEnvironment: Bool = false) {
        self.types = types
        self.comms = comms
        self.uids = uids
        self.pathPrefixes = pathPrefixes
        self.includeEnvironment = includeEnvironment
    }

    /// The exact user-space test.
    func accepts(_ event: DecodedEvent) -> Bool {
        guard types.contains(event.type) else { return false }
        if !uids.isEmpty, !uids.contains(event.uid) { return false }
        if !comms.isEmpty, !comms.contains(where: { Array($0.utf8.prefix(Int(QE_COMM_LEN) - 1)) == event.comm }) { return false }
        if !pathPrefixes.isEmpty, let path = event.path {
            if !pathPrefixes.contains(where: { path.starts(with: Array($0.utf8)) }) { return false }
        }
        return true
    }
}

/// Encodes subscriptions' filters into the kernel's `qe_config`: one bit per slot in every
/// mask. A slot whose table would overflow the kernel's fixed tables is simply not filtered in
/// the kernel for that dimension (user space still filters it exactly).
public enum KernelFilter {
    public static let slotCount = 64
    static let prefixBytes = Int(QE_PREFIX_WORDS) * 8

    /// The kernel's comm: at most 15 bytes, NUL-padded to 16.
    static func commBytes(_ name: String) -> [UInt8] {
        var bytes = Array(name.utf8.prefix(Int(QE_COMM_LEN) - 1))
        bytes += [UInt8](repeating: 0, count: Int(QE_COMM_LEN) - bytes.count)
        return bytes
    }

    public static func encode(_ slots: [(slot: Int, filter: EventFilter)], selfPid: UInt32) -> qe_config {
        var config = qe_config()
        var uidEntries: [(UInt32, UInt64)] = []
        var commEntries: [([UInt8], UInt64)] = []
        var prefixEntries: [([UInt8], UInt64)] = []
        var uidFiltered: UInt64 = 0, commFiltered: UInt64 = 0, pathFiltered: UInt64 = 0
        var eventSlots = [UInt64](repeating: 0, count: Int(QE_EVENT_COUNT.rawValue))
        var flags: UInt32 = 0
        for (slot, filter) in slots where slot >= 0 && slot < slotCount {
            let bit = UInt64(1) << UInt64(slot)
            for type in filter.types where Int(type) < eventSlots.count { eventSlots[Int(type)] |= bit }
            if filter.includeEnvironment { flags |= QE_FLAG_INCLUDE_ENV }
            if !filter.uids.isEmpty, merge(filter.uids, bit, into: &uidEntries, limit: Int(QE_MAX_UIDS)) { uidFiltered |= bit }
            if !filter.comms.isEmpty, merge(filter.comms.map(commBytes), bit, into: &commEntries, limit: Int(QE_MAX_COMMS)) {
                commFiltered |= bit
            }
            let prefixes = filter.pathPrefixes.map { Array($0.utf8) }
            if !prefixes.isEmpty, prefixes.allSatisfy({ !$0.isEmpty && $0.count <= prefixBytes }),
               merge(prefixes, bit, into: &prefixEntries, limit: Int(QE_MAX_PREFIXES)) {
                pathFiltered |= bit
            }
        }
        withUnsafeMutableBytes(of: &config) { raw in
            func store<T>(_ value: T, _ offset: Int) { raw.storeBytes(of: value, toByteOffset: offset, as: T.self) }
            let base = MemoryLayout<qe_config>.self
            for (i, mask) in eventSlots.enumerated() { store(mask, base.offset(of: \.event_slots)! + i * 8) }
            store(uidFiltered, base.offset(of: \.uid_filtered)!)
            store(commFiltered, base.offset(of: \.comm_filtered)!)
            store(pathFiltered, base.offset(of: \.path_filtered)!)
            store(UInt32(uidEntries.count), base.offset(of: \.uid_count)!)
            store(UInt32(commEntries.count), base.offset(of: \.comm_count)!)
            store(UInt32(prefixEntries.count), base.offset(of: \.prefix_count)!)
            store(flags, base.offset(of: \.flags)!)
            store(selfPid, base.offset(of: \.self_tgid)!)
            let uidStride = MemoryLayout<qe_uid_entry>.stride
            for (i, (uid, slots)) in uidEntries.enumerated() {
                let entry = base.offset(of: \.uids)! + i * uidStride
                store(uid, entry + MemoryLayout<qe_uid_entry>.offset(of: \.uid)!)
                store(slots, entry + MemoryLayout<qe_uid_entry>.offset(of: \.slots)!)
            }
            let commStride = MemoryLayout<qe_comm_entry>.stride
            for (i, (comm, slots)) in commEntries.enumerated() {
                let entry = base.offset(of: \.comms)! + i * commStride
                for (j, byte) in comm.enumerated() { store(byte, entry + MemoryLayout<qe_comm_entry>.offset(of: \.comm)! + j) }
                store(slots, entry + MemoryLayout<qe_comm_entry>.offset(of: \.slots)!)
            }
            let prefixStride = MemoryLayout<qe_prefix_entry>.stride
            for (i, (prefix, slots)) in prefixEntries.enumerated() {
                let entry = base.offset(of: \.prefixes)! + i * prefixStride
                let words = entry + MemoryLayout<qe_prefix_entry>.offset(of: \.words)!
                let masks = entry + MemoryLayout<qe_prefix_entry>.offset(of: \.masks)!
                for (j, byte) in prefix.enumerated() {
                    store(byte, words + j)
                    store(UInt8(0xFF), masks + j)
                }
                store(UInt32(prefix.count), entry + MemoryLayout<qe_prefix_entry>.offset(of: \.length)!)
                store(slots, entry + MemoryLayout<qe_prefix_entry>.offset(of: \.slots)!)
            }
        }
        return config
    }

    /// Adds the slot's values to a shared table (one entry per distinct value, with a slot
    /// mask). False, and the table unchanged, when they do not all fit.
    private static func merge<T: Equatable>(_ values: [T], _ bit: UInt64, into table: inout [(T, UInt64)], limit: Int) -> Bool {
        var updated = table
        for value in values {
            if let index = updated.firstIndex(where: { $0.0 == value }) {
                updated[index].1 |= bit
            } else {
                guard updated.count < limit else { return false }
                updated.append((value, bit))
            }
        }
        table = updated
        return true
    }
}
