import Crypto
import Foundation
import Testing
import VQL

/// pe_dump() against a PE laid out in this test process's own memory the way a loader maps it
/// (headers at the base, each section at its virtual address), read back through /proc/self/mem.
@Suite struct PEDumpTests {
    /// A loader's view of `file`: a zeroed buffer with the headers and every section's raw data
    /// at its virtual address. The caller frees the buffer.
    static func map(_ file: [UInt8]) -> (UnsafeMutableRawPointer, Int) {
        func u16(_ at: Int) -> Int { Int(file[at]) | Int(file[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        let header = u32(0x3C) + 4
        let count = u16(header + 2), optional = header + 20
        let table = optional + u16(header + 16)
        var sections: [(va: Int, vs: Int, raw: Int, size: Int)] = []
        for i in 0..<count {
            let at = table + 40 * i
            sections.append((u32(at + 12), u32(at + 8), u32(at + 20), u32(at + 16)))
        }
        let firstRaw = sections.map(\.raw).filter { $0 > 0 }.min() ?? file.count
        let imageSize = sections.map { $0.va + max($0.vs, $0.size) }.max() ?? file.count
        let memory = UnsafeMutableRawPointer.allocate(byteCount: imageSize, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: imageSize)
        file.withUnsafeBytes { bytes in
            memory.copyMemory(from: bytes.baseAddress!, byteCount: firstRaw)
            for s in sections where s.size > 0 {
                let length = min(s.size, s.vs == 0 ? s.size : s.vs, file.count - s.raw)
                (memory + s.va).copyMemory(from: bytes.baseAddress! + s.raw, byteCount: length)
            }
        }
        return (memory, imageSize)
    }

    static func check(_ file: [UInt8], name: String) throws {
        let (memory, _) = map(file)
        defer { memory.deallocate() }
        let address = Int(bitPattern: memory)
        // The file lives as long as the query: everything about it is asked inside the query.
        let (rows, log) = try detect("""
            LET Path = pe_dump(pid=getpid(), base_offset=\(address))
            SELECT Path, stat(filename=Path).Size AS Size, str(str=stat(filename=Path).Mode) AS Mode, hash(path=Path).SHA256 AS SHA256,
                   parse_pe(file=Path).Sections.Name AS Names,
                   pe_dump(pid=getpid(), base_offset=\(address), in_memory=100000000) AS Bytes,
                   pe_dump(pid=getpid(), base_offset=\(address + 16)) AS NotPE
            FROM scope()
            """)
        let row = try #require(rows.first, "\(log)")
        let size = try #require(row.member("Size").intValue, "\(log)")
        // The rebuilt file is the original up to the end of its last section.
        #expect(size <= file.count && size > 0x200, "\(name): \(size) bytes")
        let original = Array(file.prefix(Int(size)))
        let digest = SHA256.hash(data: original).map { String(format: "%02x", $0) }.joined()
        #expect(row.member("SHA256").stringValue == digest, "\(name): the rebuilt image differs from the file")
        #expect(row.member("Mode").stringValue == "-rw-------")
        #expect(row.member("Bytes").byteValue == original)
        #expect(row.member("NotPE").isNull == true)
        #expect(log.contains { $0.contains("no PE header") }, "\(log)")
        // The dump is a PE again: parse_pe reads what the loader saw.
        #expect(row.member("Names").listElements?.isEmpty == false)
        // And it is gone when the query ends.
        #expect(!FileManager.default.fileExists(atPath: row.member("Path").stringValue ?? "/"))
    }

    @Test func aSyntheticImageComesBackAsItsFile() throws {
        var file = syntheticPE()
        // SizeOfHeaders, as a linker writes it.
        file[0x58 + 60] = 0x00
        file[0x58 + 61] = 0x02
        try Self.check(file, name: "synthetic")
    }

    @Test(.enabled(if: sharedTestFile("3DBuilder.ResourceResolver.exe") != nil))
    func aRealExecutableComesBackAsItsFile() throws {
        let path = try #require(sharedTestFile("3DBuilder.ResourceResolver.exe"))
        try Self.check([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), name: "3DBuilder")
    }

    @Test func aProcessThatIsNotThereIsNull() throws {
        let (rows, log) = try detect("SELECT pe_dump(pid=999999999, base_offset=4096) AS Image FROM scope()")
        #expect(rows.first?.member("Image").isNull == true)
        #expect(log.contains { $0.contains("cannot open the memory of process 999999999") }, "\(log)")
    }
}
