import Foundation
import VQL

/// A Portable Executable read from a `ParserSource`: headers, sections, data directories and
/// what hangs off them (imports, exports, resources, version strings, debug info). Every walk
/// is bounded (entries, depth, string lengths), so a crafted file costs little.
final class PEFile {
    struct Section {
        let name: String
        let virtualSize: UInt32
        let virtualAddress: UInt32
        let rawSize: UInt32
        let rawOffset: UInt32
        let characteristics: UInt32
    }

    struct Directory {
        let index: Int
        let rva: UInt32
        let size: UInt32
    }

    let source: any ParserSource
    let base: Int64
    let machine: UInt16
    let timeDateStamp: UInt32
    let characteristics: UInt16
    let is64: Bool
    let imageBase: UInt64
    let optionalHeaderOffset: Int64
    let sections: [Section]
    let directories: [Directory]

    static let maxSections = 96
    static let maxImports = 100_000
    static let maxNameLength = 512

    struct NotPE: Error {}

    init(source: any ParserSource, base: Int64 = 0) throws {
        self.source = source
        self.base = base
        func u16(_ o: Int64) -> UInt16? { PEFile.read(source, base + o, 2).map { UInt16($0) } }
        func u32(_ o: Int64) -> UInt32? { PEFile.read(source, base + o, 4).map { UInt32($0) } }
        guard u16(0) == 0x5A4D, let lfanew = u32(0x3C), lfanew < 0x1000_0000, u32(Int64(lfanew)) == 0x0000_4550 else { throw NotPE() }
        let header = Int64(lfanew) + 4
        guard let machine = u16(header), let count = u16(header + 2), let stamp = u32(header + 4),
              let optionalSize = u16(header + 16), let characteristics = u16(header + 18) else { throw NotPE() }
        self.machine = machine
        self.timeDateStamp = stamp
        self.characteristics = characteristics
        let optional = header + 20
        optionalHeaderOffset = optional
        let magic = u16(optional) ?? 0
        is64 = magic == 0x20B
        if is64 {
            imageBase = PEFile.read(source, base + optional + 24, 8) ?? 0
        } else {
            imageBase = UInt64(u32(optional + 28) ?? 0)
        }
        let directoryStart = optional + (is64 ? 112 : 96)
        let directoryCount = min(Int(u32(optional + (is64 ? 108 : 92)) ?? 0), 16)
        var directories: [Directory] = []
        for i in 0..<directoryCount {
            let at = directoryStart + Int64(i * 8)
            guard at + 8 <= optional + Int64(optionalSize), let rva = u32(at), let size = u32(at + 4) else { break }
            if rva != 0 || size != 0 { directories.append(Directory(index: i, rva: rva, size: size)) }
        }
        self.directories = directories
        var sections: [Section] = []
        let sectionStart = optional + Int64(optionalSize)
        for i in 0..<min(Int(count), PEFile.maxSections) {
            let at = base + sectionStart + Int64(i * 40)
            let raw = source.read(at: at, count: 40)
            guard raw.count == 40 else { break }
            func word(_ o: Int) -> UInt32 { UInt32(raw[o]) | UInt32(raw[o + 1]) << 8 | UInt32(raw[o + 2]) << 16 | UInt32(raw[o + 3]) << 24 }
            let nameBytes = raw[0..<8].prefix { $0 != 0 }
            sections.append(Section(name: String(decoding: nameBytes, as: UTF8.self), virtualSize: word(8), virtualAddress: word(12),
                                    rawSize: word(16), rawOffset: word(20), characteristics: word(36)))
        }
        self.sections = sections
    }

    /// A little-endian unsigned integer of `width` bytes at absolute offset `at`.
    static func read(_ source: any ParserSource, _ at: Int64, _ width: Int) -> UInt64? {
        let bytes = source.read(at: at, count: width)
        guard bytes.count == width else { return nil }
        return bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    func u16(_ offset: Int64) -> UInt16? { PEFile.read(source, base + offset, 2).map { UInt16($0) } }
    func u32(_ offset: Int64) -> UInt32? { PEFile.read(source, base + offset, 4).map { UInt32($0) } }
    func u64(_ offset: Int64) -> UInt64? { PEFile.read(source, base + offset, 8) }

    /// The file offset of a relative virtual address (nil when no section holds it).
    func offset(ofRVA rva: UInt32) -> Int64? {
        for s in sections {
            let span = max(s.virtualSize, s.rawSize)
            if rva >= s.virtualAddress && UInt64(rva) < UInt64(s.virtualAddress) + UInt64(span) {
                return Int64(rva - s.virtualAddress) + Int64(s.rawOffset)
            }
        }
        if let first = sections.map(\.virtualAddress).min(), rva < first { return Int64(rva) }
        return sections.isEmpty ? Int64(rva) : nil
    }

    func section(ofRVA rva: UInt32) -> Section? {
        sections.first { rva >= $0.virtualAddress && UInt64(rva) < UInt64($0.virtualAddress) + UInt64(max($0.virtualSize, $0.rawSize)) }
    }

    /// A NUL-terminated ASCII string at an RVA.
    func string(atRVA rva: UInt32, limit: Int = PEFile.maxNameLength) -> String? {
        guard let at = offset(ofRVA: rva) else { return nil }
        let bytes = source.read(at: base + at, count: limit).prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    func directory(_ index: Int) -> Directory? { directories.first { $0.index == index } }

    static let directoryNames = [
        "Export_Directory", "Import_Directory", "Resource_Directory", "Exception_Directory", "Security_Directory",
        "Base_Relocation_Directory", "Debug_Directory", "Architecture_Directory", "Global_Ptr_Directory", "TLS_Directory",
        "Load_Config_Directory", "Bound_Import_Directory", "IAT_Directory", "Delay_Imports_Directory",
        "CLR_Runtime_Directory", "Reserved_Directory",
    ]

    static let machines: [UInt16: String] = [
        0x14c: "IMAGE_FILE_MACHINE_I386", 0x8664: "IMAGE_FILE_MACHINE_AMD64", 0xaa64: "IMAGE_FILE_MACHINE_ARM64",
        0x1c0: "IMAGE_FILE_MACHINE_ARM", 0x1c4: "IMAGE_FILE_MACHINE_ARMNT", 0x200: "IMAGE_FILE_MACHINE_IA64",
        0x0: "IMAGE_FILE_MACHINE_UNKNOWN",
    ]

    // MARK: - Imports and exports

    /// (dll, function) pairs of the import table; ordinals as `ord123`.
    func imports() -> [(String, String)] {
        guard let dir = directory(1), let start = offset(ofRVA: dir.rva) else { return [] }
        var out: [(String, String)] = []
        var descriptor = start
        for _ in 0..<4096 {
            guard let original = u32(descriptor), let nameRVA = u32(descriptor + 12), let first = u32(descriptor + 16) else { break }
            if original == 0 && nameRVA == 0 && first == 0 { break }
            let dll = string(atRVA: nameRVA) ?? ""
            let thunkRVA = original != 0 ? original : first
            if var thunk = offset(ofRVA: thunkRVA) {
                let width: Int64 = is64 ? 8 : 4
                for _ in 0..<PEFile.maxImports {
                    guard out.count < PEFile.maxImports, let value = is64 ? u64(thunk) : u32(thunk).map(UInt64.init), value != 0 else { break }
                    let ordinalFlag: UInt64 = is64 ? 1 << 63 : 1 << 31
                    if value & ordinalFlag != 0 {
                        out.append((dll, "ord\(value & 0xFFFF)"))
                    } else {
                        out.append((dll, string(atRVA: UInt32(truncatingIfNeeded: value) &+ 2) ?? ""))
                    }
                    thunk += width
                }
            }
            descriptor += 20
        }
        return out
    }

    struct Export {
        let name: String
        let ordinal: UInt32
        let rva: UInt32
        let forward: String?
    }

    func exports() -> (dll: String, items: [Export]) {
        guard let dir = directory(0), let at = offset(ofRVA: dir.rva) else { return ("", []) }
        guard let nameRVA = u32(at + 12), let ordinalBase = u32(at + 16), let functionCount = u32(at + 20),
              let nameCount = u32(at + 24), let functions = u32(at + 28), let names = u32(at + 32),
              let ordinals = u32(at + 36) else { return ("", []) }
        let dll = string(atRVA: nameRVA) ?? ""
        var named: [UInt32: String] = [:]
        if let namesAt = offset(ofRVA: names), let ordinalsAt = offset(ofRVA: ordinals) {
            for i in 0..<Int64(min(nameCount, UInt32(PEFile.maxImports))) {
                guard let rva = u32(namesAt + 4 * i), let index = u16(ordinalsAt + 2 * i) else { break }
                named[UInt32(index)] = string(atRVA: rva) ?? ""
            }
        }
        var items: [Export] = []
        if let functionsAt = offset(ofRVA: functions) {
            for i in 0..<Int64(min(functionCount, UInt32(PEFile.maxImports))) {
                guard let rva = u32(functionsAt + 4 * i) else { break }
                if rva == 0 { continue }
                let forwarded = rva >= dir.rva && UInt64(rva) < UInt64(dir.rva) + UInt64(dir.size)
                items.append(Export(name: named[UInt32(i)] ?? "", ordinal: ordinalBase &+ UInt32(i), rva: rva,
                                    forward: forwarded ? string(atRVA: rva) : nil))
            }
        }
        return (dll, items)
    }

    // MARK: - Debug information

    /// The CodeView (RSDS) record: the PDB's GUID and age as one uppercase hex string, and its path.
    func codeView() -> (guidAge: String, pdb: String)? {
        guard let dir = directory(6), let at = offset(ofRVA: dir.rva) else { return nil }
        for i in 0..<Int64(min(dir.size / 28, 64)) {
            let entry = at + 28 * i
            guard let type = u32(entry + 12), type == 2, let size = u32(entry + 16), let pointer = u32(entry + 24) else { continue }
            let record = source.read(at: base + Int64(pointer), count: Int(min(size, 4096)))
            guard record.count >= 24, record.prefix(4) == Array("RSDS".utf8)[...] else { continue }
            func le(_ o: Int, _ n: Int) -> UInt64 { record[o..<(o + n)].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
            var guid = String(format: "%08X%04X%04X", UInt32(le(4, 4)), UInt16(le(8, 2)), UInt16(le(10, 2)))
            for b in record[12..<20] { guid += String(format: "%02X", b) }
            guid += String(format: "%X", UInt32(le(20, 4)))
            let pdb = String(decoding: record[24...].prefix { $0 != 0 }, as: UTF8.self)
            return (guid, pdb)
        }
        return nil
    }

    // MARK: - Resources

    struct Resource {
        let type: String
        let typeID: UInt32?
        let name: String
        let fileOffset: Int64
        let size: UInt32
        let codePage: UInt32
    }

    static let resourceTypes: [UInt32: String] = [
        1: "RT_CURSOR", 2: "RT_BITMAP", 3: "RT_ICON", 4: "RT_MENU", 5: "RT_DIALOG", 6: "RT_STRING", 7: "RT_FONTDIR",
        8: "RT_FONT", 9: "RT_ACCELERATOR", 10: "RT_RCDATA", 11: "RT_MESSAGETABLE", 12: "RT_GROUP_CURSOR",
        14: "RT_GROUP_ICON", 16: "RT_VERSION", 17: "RT_DLGINCLUDE", 19: "RT_PLUGPLAY", 20: "RT_VXD",
        21: "RT_ANICURSOR", 22: "RT_ANIICON", 23: "RT_HTML", 24: "RT_MANIFEST",
    ]

    /// Every leaf of the resource tree (type / name / language), at most 10,000.
    func resources() -> [Resource] {
        guard let dir = directory(2), let root = offset(ofRVA: dir.rva) else { return [] }
        var out: [Resource] = []
        var visited: Set<Int64> = []
        func walk(_ at: Int64, level: Int, type: (String, UInt32?), name: String) {
            guard level < 3, out.count < 10_000, visited.insert(at).inserted,
                  let named = u16(at + 12), let ids = u16(at + 14) else { return }
            for i in 0..<Int64(min(Int(named) + Int(ids), 4096)) {
                guard out.count < 10_000, let id = u32(at + 16 + 8 * i), let target = u32(at + 20 + 8 * i) else { return }
                var label = String(id)
                var numeric: UInt32? = id
                if id & 0x8000_0000 != 0 {
                    numeric = nil
                    let nameAt = root + Int64(id & 0x7FFF_FFFF)
                    let length = Int(min(u16(nameAt) ?? 0, 256))
                    let raw = source.read(at: base + nameAt + 2, count: length * 2)
                    label = String(decoding: stride(from: 0, to: raw.count - 1, by: 2).map { UInt16(raw[$0]) | UInt16(raw[$0 + 1]) << 8 }, as: UTF16.self)
                }
                let nextType = level == 0 ? (numeric.flatMap { PEFile.resourceTypes[$0] } ?? label, numeric) : type
                let nextName = level == 1 ? label : name
                if target & 0x8000_0000 != 0 {
                    walk(root + Int64(target & 0x7FFF_FFFF), level: level + 1, type: nextType, name: nextName)
                } else {
                    let leaf = root + Int64(target)
                    guard let dataRVA = u32(leaf), let size = u32(leaf + 4), let codePage = u32(leaf + 8) else { continue }
                    out.append(Resource(type: nextType.0, typeID: nextType.1, name: nextName,
                                        fileOffset: offset(ofRVA: dataRVA) ?? -1, size: size, codePage: codePage))
                }
            }
        }
        walk(root, level: 0, type: ("", nil), name: "")
        return out
    }

    /// The key/value strings of the RT_VERSION resource (CompanyName, FileVersion, …), in file order.
    func versionInformation() -> [(String, String)] {
        guard let resource = resources().first(where: { $0.typeID == 16 }), resource.fileOffset >= 0 else { return [] }
        let data = source.read(at: base + resource.fileOffset, count: Int(min(resource.size, 1 << 20)))
        var out: [(String, String)] = []
        VersionBlock.walk(data, 0, data.count, depth: 0) { key, value in out.append((key, value)) }
        return out
    }
}

/// The nested blocks of a VS_VERSIONINFO resource: each is length, value length, type, a UTF-16
/// key, then (4-byte aligned) a value and child blocks. String entries are the leaves.
enum VersionBlock {
    static func walk(_ data: [UInt8], _ start: Int, _ end: Int, depth: Int, _ emit: (String, String) -> Void) {
        guard depth < 6 else { return }
        var at = start
        var count = 0
        while at + 6 <= end && count < 4096 {
            count += 1
            let length = Int(data[at]) | Int(data[at + 1]) << 8
            let valueLength = Int(data[at + 2]) | Int(data[at + 3]) << 8
            let isText = (Int(data[at + 4]) | Int(data[at + 5]) << 8) == 1
            guard length >= 6, at + length <= end else { return }
            let blockEnd = at + length
            var cursor = at + 6
            var key: [UInt16] = []
            while cursor + 1 < blockEnd {
                let unit = UInt16(data[cursor]) | UInt16(data[cursor + 1]) << 8
                cursor += 2
                if unit == 0 { break }
                key.append(unit)
            }
            let name = String(decoding: key, as: UTF16.self)
            cursor = (cursor + 3) & ~3
            let valueBytes = isText ? valueLength * 2 : valueLength
            if depth == 0 {
                // VS_VERSIONINFO: skip the fixed file info, then the children.
                walk(data, min((cursor + valueBytes + 3) & ~3, blockEnd), blockEnd, depth: 1, emit)
            } else if name == "StringFileInfo" || (depth == 2 && !isLeaf(name)) {
                walk(data, min(cursor, blockEnd), blockEnd, depth: depth + 1, emit)
            } else if depth == 3 {
                var units: [UInt16] = []
                var i = cursor
                while i + 1 < min(blockEnd, cursor + valueBytes) {
                    let unit = UInt16(data[i]) | UInt16(data[i + 1]) << 8
                    if unit == 0 { break }
                    units.append(unit)
                    i += 2
                }
                emit(name, String(decoding: units, as: UTF16.self))
            }
            at = (blockEnd + 3) & ~3
        }
    }

    /// String tables are keyed by 8 hex digits (language and code page).
    static func isLeaf(_ name: String) -> Bool { !(name.count == 8 && name.allSatisfy(\.isHexDigit)) }
}
