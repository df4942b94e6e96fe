import Crypto
import Foundation
import Testing
import VQL

/// The golden testcases' input folder (../shared beside the repository), when present.
func sharedTestFile(_ name: String) -> String? {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for root in [repo.deletingLastPathComponent().path + "/shared", "/work/shared"] {
        let path = root + "/conformance/velociraptor-testcases/files/files/" + name
        if FileManager.default.fileExists(atPath: path) { return path }
    }
    return nil
}

/// A small PE32+ DLL built byte by byte: one section holding an import table (a named and an
/// ordinal import) and an export table (a function and a forwarder).
func syntheticPE() -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 0x400)
    func put16(_ at: Int, _ v: UInt16) { for k in 0..<2 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt16(k))) } }
    func put32(_ at: Int, _ v: UInt32) { for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) } }
    func put64(_ at: Int, _ v: UInt64) { for k in 0..<8 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) } }
    func putString(_ at: Int, _ s: String) { for (k, c) in s.utf8.enumerated() { b[at + k] = c } }
    func file(_ rva: Int) -> Int { rva - 0x1000 + 0x200 }
    putString(0, "MZ")
    put32(0x3C, 0x40)
    putString(0x40, "PE")
    put16(0x44, 0x8664)
    put16(0x46, 1)
    put32(0x48, 0x5E00_0000)
    put16(0x54, 0xF0)
    put16(0x56, 0x2022)
    let optional = 0x58
    put16(optional, 0x20B)
    put64(optional + 24, 0x1_8000_0000)
    put32(optional + 108, 16)
    put32(optional + 112, 0x1100) // export directory
    put32(optional + 116, 0x100)
    put32(optional + 120, 0x1000) // import directory
    put32(optional + 124, 40)
    let section = optional + 0xF0
    putString(section, ".text")
    put32(section + 8, 0x1000)
    put32(section + 12, 0x1000)
    put32(section + 16, 0x200)
    put32(section + 20, 0x200)
    put32(section + 36, 0x6000_0020)
    // Imports.
    put32(file(0x1000), 0x1040)
    put32(file(0x1000) + 12, 0x1080)
    put32(file(0x1000) + 16, 0x1040)
    put64(file(0x1040), 0x1090)
    put64(file(0x1048), 0x8000_0000_0000_0010)
    putString(file(0x1080), "KERNEL32.dll")
    putString(file(0x1092), "CreateFileW")
    // Exports.
    let e = file(0x1100)
    put32(e + 12, 0x1140)
    put32(e + 16, 1)
    put32(e + 20, 2)
    put32(e + 24, 2)
    put32(e + 28, 0x1150)
    put32(e + 32, 0x1160)
    put32(e + 36, 0x1170)
    putString(file(0x1140), "test.dll")
    put32(file(0x1150), 0x1050)
    put32(file(0x1154), 0x1180)
    put32(file(0x1160), 0x1190)
    put32(file(0x1164), 0x11A0)
    put16(file(0x1170), 0)
    put16(file(0x1172), 1)
    putString(file(0x1180), "NTDLL.RtlAlpha")
    putString(file(0x1190), "Alpha")
    putString(file(0x11A0), "Beta")
    return b
}

@Suite struct PETests {
    @Test func syntheticDLLImportsExportsAndHash() throws {
        let path = try writeTemporary(syntheticPE(), name: "test.dll")
        let (rows, log) = try detect("SELECT parse_pe(file='\(path)') AS PE FROM scope()")
        #expect(log.isEmpty, "\(log)")
        let pe = try #require(rows.first?.member("PE"))
        #expect(pe.member("FileHeader").member("Machine").stringValue == "IMAGE_FILE_MACHINE_AMD64")
        #expect(pe.member("FileHeader").member("ImageBase").intValue == 0x1_8000_0000)
        #expect(pe.member("FileHeader").member("TimeDateStampRaw").intValue == 0x5E00_0000)
        #expect(pe.member("Imports").listElements?.compactMap(\.stringValue) == ["KERNEL32.dll!CreateFileW", "KERNEL32.dll!ord16"])
        #expect(pe.member("Exports").listElements?.compactMap(\.stringValue) == ["Alpha"])
        #expect(pe.member("Forwards").listElements?.compactMap(\.stringValue) == ["NTDLL.RtlAlpha"])
        let imphash = Insecure.MD5.hash(data: Array("kernel32.createfilew,kernel32.ord16".utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(pe.member("ImpHash").stringValue == imphash)
        let section = pe.member("Sections").listElements?.first
        #expect(section?.member("Perm").stringValue == "xr-")
        #expect(section?.member("VMA").intValue == 0x1_8000_1000)
        #expect(pe.member("Directories").member("Export_Directory").member("SectionName").stringValue == ".text")
        // Not a PE: NULL, quietly.
        let (plain, plainLog) = try detect("SELECT parse_pe(accessor='data', file='just text') AS PE FROM scope()")
        #expect(plain.first?.member("PE").isNull == true)
        #expect(plainLog.isEmpty)
    }

    /// The real .NET executable of Velociraptor's testcases, as pefile describes it.
    @Test(.enabled(if: sharedTestFile("3DBuilder.ResourceResolver.exe") != nil))
    func realExecutable() throws {
        let path = try #require(sharedTestFile("3DBuilder.ResourceResolver.exe"))
        let (rows, _) = try detect("SELECT parse_pe(file='\(path)') AS PE FROM scope()")
        let pe = try #require(rows.first?.member("PE"))
        #expect(pe.member("ImpHash").stringValue == "f34d5f2d4577ed6d9ceec516c1f5a744")
        #expect(pe.member("Imports").listElements?.compactMap(\.stringValue) == ["mscoree.dll!_CorExeMain"])
        #expect(pe.member("GUIDAge").stringValue == "84068848695B4DFDA86ECCE04021A1A91")
        #expect(pe.member("VersionInformation").member("ProductName").stringValue == "3D Builder")
        #expect(pe.member("VersionInformation").member("FileVersion").stringValue == "16.1.1903.15001")
        #expect(pe.member("Sections").listElements?.compactMap { $0.member("Name").stringValue } == [".text", ".rsrc", ".reloc"])
        #expect(pe.member("Resources").listElements?.first?.member("Type").stringValue == "RT_VERSION")
        let expected = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(pe.member("AuthenticodeHash").member("SHA256").stringValue?.count == 64)
        #expect(expected.count == 9728)
    }

    /// Mutated PEs (synthetic and, when present, the real one), every member forced.
    @Test func fuzzMutatedExecutables() throws {
        let session = detectSession()
        var random = SeededRandom(seed: 0x9E)
        var samples = [syntheticPE()]
        if let real = sharedTestFile("3DBuilder.ResourceResolver.exe") { samples.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: real)))) }
        for sample in samples {
            for _ in 0..<FuzzBudget.iterations {
                let path = try writeTemporary(random.mutate(sample))
                let results = try session.run("SELECT parse_pe(file='\(path)') AS PE FROM scope()")
                _ = JSONWriter.string(Value.list((results.last ?? nil) ?? []).materialized())
                try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
            }
        }
    }
}
