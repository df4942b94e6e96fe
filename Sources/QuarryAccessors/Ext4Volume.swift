import Synchronization
import VQL

/// A read-only ext2/3/4 file system read from raw bytes (an image file, a partition, a device):
/// superblock, group descriptors, inodes, extent trees and the old indirect block maps,
/// directories. Every number read from the image is checked before it is used: block and
/// inode numbers against the volume's counts, extent trees against a depth limit, directory
/// records against their block. A corrupt image gives errors, never a crash, a loop or an
/// allocation it asks for.
final class Ext4Volume: @unchecked Sendable {
    /// An inode's fields the accessor uses.
    struct Inode {
        var number: UInt32
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var size: Int64
        var atime: Timestamp
        var ctime: Timestamp
        var mtime: Timestamp
        var crtime: Timestamp?
        var flags: UInt32
        var links: UInt16
        /// The 60 bytes of i_block (extent header, block map, inline data or a short symlink).
        var blockArea: [UInt8]

        var isDirectory: Bool { mode & 0o170000 == 0o040000 }
        var isSymlink: Bool { mode & 0o170000 == 0o120000 }
    }

    /// A directory entry.
    struct Entry {
        var name: [UInt8]
        var inode: UInt32
    }

    static let rootInode: UInt32 = 2
    static let maximumExtentDepth = 5
    static let maximumDirectoryBytes: Int64 = 64 << 20
    static let flagNames: [(UInt32, String)] = [
        (0x1, "SECRM"), (0x2, "UNRM"), (0x4, "COMPR"), (0x8, "SYNC"), (0x10, "IMMUTABLE"), (0x20, "APPEND"),
        (0x40, "NODUMP"), (0x80, "NOATIME"), (0x1000, "INDEX"), (0x4000, "JOURNAL_DATA"), (0x10000, "DIRSYNC"),
        (0x20000, "TOPDIR"), (0x40000, "HUGE_FILE"), (0x80000, "EXTENTS"), (0x200000, "EA_INODE"),
        (0x10000000, "INLINE_DATA"), (0x20000000, "PROJINHERIT"), (0x800, "ENCRYPT"), (0x800000, "CASEFOLD"),
    ]

    let file: any ReadableFile
    let blockSize: Int64
    let blocksCount: Int64
    let inodesCount: UInt32
    let inodesPerGroup: UInt32
    let inodeSize: Int
    let groupCount: Int
    private let inodeTables: [Int64]
    private let lock = Mutex<Void>(())

    init(file: any ReadableFile) throws {
        self.file = file
        let superblock = try file.read(at: 1024, count: 1024)
        guard superblock.count == 1024, LE.u16(superblock, 56) == 0xEF53 else {
            throw AccessorError.invalid("ext4: no ext2/3/4 superblock (bad magic)")
        }
        let logBlockSize = LE.u32(superblock, 24)
        guard logBlockSize <= 6 else { throw AccessorError.invalid("ext4: bad block size") }
        blockSize = Int64(1024 << logBlockSize)
        inodesCount = UInt32(LE.u32(superblock, 0))
        let incompat = LE.u32(superblock, 96)
        let is64 = incompat & 0x80 != 0
        blocksCount = Int64(LE.u32(superblock, 4)) | (is64 ? Int64(LE.u32(superblock, 0x150)) << 32 : 0)
        let blocksPerGroup = Int64(LE.u32(superblock, 32))
        inodesPerGroup = UInt32(LE.u32(superblock, 40))
        let revision = LE.u32(superblock, 76)
        inodeSize = revision == 0 ? 128 : LE.u16(superblock, 88)
        let firstDataBlock = Int64(LE.u32(superblock, 20))
        let descriptorSize = is64 ? max(32, LE.u16(superblock, 254)) : 32
        guard inodeSize >= 128, inodeSize <= Int(blockSize), inodesPerGroup > 0, blocksPerGroup > 0, blocksCount > firstDataBlock,
              descriptorSize <= 1024 else {
            throw AccessorError.invalid("ext4: inconsistent superblock")
        }
        let groups = (blocksCount - firstDataBlock + blocksPerGroup - 1) / blocksPerGroup
        guard groups > 0, groups <= 1 << 22, Int64(inodesPerGroup) * groups >= Int64(inodesCount) else {
            throw AccessorError.invalid("ext4: inconsistent group counts")
        }
        groupCount = Int(groups)
        let table = try file.read(at: (firstDataBlock + 1) * blockSize, count: groupCount * descriptorSize)
        guard table.count == groupCount * descriptorSize else { throw AccessorError.invalid("ext4: group descriptors truncated") }
        var tables: [Int64] = []
        tables.reserveCapacity(groupCount)
        for g in 0..<groupCount {
            let base = g * descriptorSize
            var block = Int64(LE.u32(table, base + 8))
            if is64 && descriptorSize >= 64 { block |= Int64(LE.u32(table, base + 0x28)) << 32 }
            tables.append(block)
        }
        inodeTables = tables
    }

    /// Reads through the volume's lock (one file handle is shared by every open file).
    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try lock.withLock { _ in try file.read(at: offset, count: count) }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try lock.withLock { _ in
            var filled = 0
            while filled < buffer.count {
                let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), at: offset + Int64(filled))
                if n <= 0 { break }
                filled += n
            }
            return filled
        }
    }

    func checkBlock(_ block: Int64) throws {
        guard block >= 0, block < blocksCount else { throw AccessorError.invalid("ext4: block \(block) outside the volume (corrupt image)") }
    }

    // MARK: - Inodes

    func inode(_ number: UInt32) throws -> Inode {
        guard number >= 1, number <= inodesCount else { throw AccessorError.invalid("ext4: inode \(number) out of range") }
        let group = Int((number - 1) / inodesPerGroup)
        let index = Int64((number - 1) % inodesPerGroup)
        guard group < inodeTables.count else { throw AccessorError.invalid("ext4: inode \(number) out of range") }
        try checkBlock(inodeTables[group])
        let b = try read(at: inodeTables[group] * blockSize + index * Int64(inodeSize), count: inodeSize)
        guard b.count == inodeSize else { throw AccessorError.invalid("ext4: inode \(number) truncated") }
        func time(_ offset: Int, extra: Int?) -> Timestamp {
            var seconds = Int64(Int32(truncatingIfNeeded: LE.u32(b, offset)))
            var nanos: Int64 = 0
            if let extra, extra + 4 <= b.count {
                let value = LE.u32(b, extra)
                seconds += Int64(value & 3) << 32
                nanos = Int64(value >> 2)
            }
            let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let limit = Int64.max - 2_000_000_000
            return Timestamp(nanoseconds: overflow || scaled > limit ? limit : scaled + min(nanos, 999_999_999))
        }
        let extraSize = inodeSize > 128 ? LE.u16(b, 128) : 0
        func extraField(_ offset: Int) -> Int? { extraSize >= offset - 128 + 4 && offset + 4 <= b.count ? offset : nil }
        let mode = UInt32(LE.u16(b, 0))
        let size = Int64(LE.u32(b, 4)) | Int64(LE.u32(b, 108)) << 32
        return Inode(
            number: number, mode: mode,
            uid: UInt32(LE.u16(b, 2)) | UInt32(LE.u16(b, 120)) << 16,
            gid: UInt32(LE.u16(b, 24)) | UInt32(LE.u16(b, 122)) << 16,
            size: size < 0 ? 0 : size,
            atime: time(8, extra: extraField(140)), ctime: time(12, extra: extraField(132)), mtime: time(16, extra: extraField(136)),
            crtime: extraField(144).map { _ in time(144, extra: extraField(148)) },
            flags: UInt32(LE.u32(b, 32)), links: UInt16(LE.u16(b, 26)),
            blockArea: Array(b[40..<100]))
    }

    static func flagString(_ flags: UInt32) -> String {
        flagNames.filter { flags & $0.0 != 0 }.map(\.1).joined(separator: ", ")
    }

    // MARK: - Block mapping

    /// A run of file blocks: logical start, physical start (nil for a hole or an uninitialised
    /// extent, which read as zeros) and length.
    struct Run {
        var logical: Int64
        var physical: Int64?
        var length: Int64
    }

    /// The runs of an inode's data, in logical order.
    func runs(_ inode: Inode) throws -> [Run] {
        if inode.flags & 0x10000000 != 0 { return [] }
        if inode.flags & 0x80000 != 0 {
            var runs: [Run] = []
            try extentRuns(inode.blockArea, depth: 0, into: &runs)
            return runs.sorted { $0.logical < $1.logical }
        }
        return try blockMapRuns(inode)
    }

    private func extentRuns(_ node: [UInt8], depth: Int, into runs: inout [Run]) throws {
        guard depth <= Ext4Volume.maximumExtentDepth, node.count >= 12, LE.u16(node, 0) == 0xF30A else {
            throw AccessorError.invalid("ext4: bad extent tree")
        }
        let entries = LE.u16(node, 2)
        let treeDepth = LE.u16(node, 6)
        guard 12 + entries * 12 <= node.count else { throw AccessorError.invalid("ext4: extent node overflows") }
        for i in 0..<entries {
            let e = 12 + i * 12
            if treeDepth == 0 {
                let logical = Int64(LE.u32(node, e))
                var length = Int64(LE.u16(node, e + 4))
                let initialised = length <= 32768
                if !initialised { length -= 32768 }
                let physical = Int64(LE.u16(node, e + 6)) << 32 | Int64(LE.u32(node, e + 8))
                guard length > 0 else { continue }
                try checkBlock(physical)
                try checkBlock(physical + length - 1)
                runs.append(Run(logical: logical, physical: initialised ? physical : nil, length: length))
            } else {
                let child = Int64(LE.u16(node, e + 8)) << 32 | Int64(LE.u32(node, e + 4))
                try checkBlock(child)
                try extentRuns(try read(at: child * blockSize, count: Int(blockSize)), depth: depth + 1, into: &runs)
            }
            guard runs.count <= 1 << 20 else { throw AccessorError.invalid("ext4: too many extents") }
        }
    }

    /// ext2/3 block maps: 12 direct blocks, then single, double and triple indirect blocks.
    private func blockMapRuns(_ inode: Inode) throws -> [Run] {
        let fileBlocks = (inode.size + blockSize - 1) / blockSize
        var runs: [Run] = []
        var logical: Int64 = 0
        func add(_ physical: Int64) throws {
            defer { logical += 1 }
            guard runs.count < 1 << 20 else { throw AccessorError.invalid("ext4: too many block runs") }
            guard logical < fileBlocks else { return }
            let target: Int64? = physical == 0 ? nil : physical
            if let target { try checkBlock(target) }
            if let last = runs.last, last.logical + last.length == logical,
               (last.physical == nil && target == nil) || (last.physical.map { $0 + last.length } == target && target != nil) {
                runs[runs.count - 1].length += 1
            } else {
                runs.append(Run(logical: logical, physical: target, length: 1))
            }
        }
        func indirect(_ block: Int64, level: Int) throws {
            let perBlock = blockSize / 4
            var span: Int64 = 1
            for _ in 0..<level { span *= perBlock }
            guard logical < fileBlocks else { return }
            if block == 0 {
                let skip = min(span, fileBlocks - logical)
                runs.append(Run(logical: logical, physical: nil, length: skip))
                logical += skip
                return
            }
            try checkBlock(block)
            let table = try read(at: block * blockSize, count: Int(blockSize))
            for i in 0..<Int(perBlock) where logical < fileBlocks {
                let entry = Int64(LE.u32(table, i * 4))
                if level == 1 { try add(entry) } else { try indirect(entry, level: level - 1) }
            }
        }
        for i in 0..<12 { try add(Int64(LE.u32(inode.blockArea, i * 4))) }
        for level in 1...3 where logical < fileBlocks {
            try indirect(Int64(LE.u32(inode.blockArea, (11 + level) * 4)), level: level)
        }
        return runs
    }

    // MARK: - Contents

    /// An inode's content as a file.
    func open(_ inode: Inode) throws -> any ReadableFile {
        if inode.flags & 0x10000000 != 0 || (inode.isSymlink && inode.size < 60 && inode.flags & 0x80000 == 0) {
            // Inline data (and fast symlinks): the bytes live in i_block.
            return MemoryFile(Array(inode.blockArea.prefix(Int(min(inode.size, 60)))))
        }
        return Ext4File(volume: self, runs: try runs(inode), size: inode.size)
    }

    /// A directory's entries (without . and ..), from its linear records (hash-indexed
    /// directories keep their records in the same form, the index hiding in skipped records).
    func entries(_ directory: Inode) throws -> [Entry] {
        guard directory.isDirectory else { throw AccessorError.notDirectory("inode \(directory.number)") }
        guard directory.size <= Ext4Volume.maximumDirectoryBytes else { throw AccessorError.invalid("ext4: directory too large") }
        let data = try open(directory).readAll(limit: Int(directory.size))
        var entries: [Entry] = []
        var blockStart = 0
        let block = directory.flags & 0x10000000 != 0 ? data.count : Int(blockSize)
        while blockStart < data.count {
            let blockEnd = min(data.count, blockStart + block)
            var p = blockStart
            // Inline directories start with the parent's inode number, not a record.
            if directory.flags & 0x10000000 != 0 { p += 4 }
            while p + 8 <= blockEnd {
                let inode = UInt32(LE.u32(data, p))
                let recordLength = LE.u16(data, p + 4)
                let nameLength = Int(data[p + 6])
                guard recordLength >= 8, p + recordLength <= blockEnd, 8 + nameLength <= recordLength else { break }
                if inode != 0 && nameLength > 0 {
                    let name = Array(data[(p + 8)..<(p + 8 + nameLength)])
                    if name != [0x2E] && name != [0x2E, 0x2E] { entries.append(Entry(name: name, inode: inode)) }
                }
                p += recordLength
            }
            blockStart = blockEnd
        }
        return entries
    }

    /// Resolves components from the root directory to an inode (links are not followed).
    func lookup(_ components: [[UInt8]]) throws -> Inode {
        var current = try inode(Ext4Volume.rootInode)
        for component in components {
            guard current.isDirectory else { throw AccessorError.notFound(String(decoding: component, as: UTF8.self)) }
            guard let entry = try entries(current).first(where: { $0.name == component }) else {
                throw AccessorError.notFound(String(decoding: component, as: UTF8.self))
            }
            current = try inode(entry.inode)
        }
        return current
    }
}

/// An ext4 file's content: runs of blocks on the volume, holes reading as zeros.
final class Ext4File: ReadableFile {
    let volume: Ext4Volume
    let runs: [Ext4Volume.Run]
    let size: Int64?

    init(volume: Ext4Volume, runs: [Ext4Volume.Run], size: Int64) {
        self.volume = volume
        self.runs = runs
        self.size = size
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard let size, offset >= 0, offset < size, let base = buffer.baseAddress else { return 0 }
        let count = Int(min(Int64(buffer.count), size - offset))
        base.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        let blockSize = volume.blockSize
        let first = offset / blockSize
        let last = (offset + Int64(count) - 1) / blockSize
        // Binary search for the first run that may cover `first`.
        var low = 0, high = runs.count
        while low < high {
            let mid = (low + high) / 2
            if runs[mid].logical + runs[mid].length <= first { low = mid + 1 } else { high = mid }
        }
        for run in runs[low...] {
            if run.logical > last { break }
            guard let physical = run.physical else { continue }
            let from = max(run.logical * blockSize, offset)
            let to = min((run.logical + run.length) * blockSize, offset + Int64(count))
            guard from < to else { continue }
            let device = (physical - run.logical) * blockSize + from
            _ = try volume.read(into: UnsafeMutableRawBufferPointer(start: base + Int(from - offset), count: Int(to - from)), at: device)
        }
        return count
    }
}
