import CZlib
import Foundation
import Testing
@testable import Artifacts

/// The zip reader takes hostile archives (errors, never a trap), reads members in pieces from the
/// file, and both sides speak zip64 for members and archives past 4 GiB.
@Suite struct ZipTests {
    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("quarry-zip-\(UUID().uuidString.prefix(8))-\(name)").path
    }

    static func python(_ script: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + args
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static let check = """
        import zipfile, sys, hashlib
        z = zipfile.ZipFile(sys.argv[1])
        assert z.testzip() is None
        for info in z.infolist():
            print(info.filename, info.file_size, hashlib.sha256(z.read(info.filename)).hexdigest() if info.file_size < 1 << 20 else '-')
        """

    /// A 100-byte archive whose only directory entry claims a name running far past the end.
    @Test func truncatedNameLengthIsAClearError() throws {
        var bytes = [UInt8](repeating: 0, count: 100)
        func put32(_ v: UInt32, _ at: Int) { for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        func put16(_ v: UInt16, _ at: Int) { for i in 0..<2 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt16(i))) } }
        // Central directory entry at 10 (46 bytes), end record at 78 (22 bytes).
        put32(0x0201_4B50, 10)
        put16(60000, 10 + 28)
        put32(0x0605_4B50, 78)
        put16(1, 78 + 8); put16(1, 78 + 10)
        put32(46, 78 + 12); put32(10, 78 + 16)
        let path = Self.temporary("short.zip")
        defer { unlink(path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: ZipError.self) { _ = try ZipReader(path: path) }
        do {
            _ = try ZipReader(path: path)
        } catch let error as ZipError {
            #expect(error.message.contains("runs past the end"))
        }
        // The CLI says so too, and exits non-zero without a crash.
        let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/.build/debug/quarry"
        if FileManager.default.isExecutableFile(atPath: binary) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["collection", "show", path]
            let err = Pipe()
            process.standardError = err
            process.standardOutput = Pipe()
            try process.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 1)
            #expect(text.contains("runs past the end"))
        }
    }

    /// Random mutations of a real container: every read ends in data or a `ZipError`.
    @Test func mutatedContainersNeverTrap() throws {
        let path = Self.temporary("seed.zip")
        defer { unlink(path) }
        let writer = try ZipWriter(path: path)
        try writer.add(name: "results/A.json", data: Data(String(repeating: #"{"a":1}\#n"#, count: 50).utf8))
        try writer.add(name: "uploads/x", data: Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }))
        try writer.setTrailer(name: "quarry_manifest.json", data: Data(#"{"complete":false}"#.utf8))
        let deflated = Self.temporary("deflated.zip")
        defer { unlink(deflated) }
        #expect(try Self.python("import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\nz.writestr('results/B.json','{\"b\":2}\\n'*300)\nz.writestr('c','x'*5000)\nz.close()", [deflated]).status == 0)
        var generator = SystemRandomNumberGenerator()
        let mutant = Self.temporary("mutant.zip")
        defer { unlink(mutant) }
        var outcomes = (read: 0, refused: 0)
        for seed in [path, deflated] {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: seed)))
            for round in 0..<1500 {
                var bytes = original
                switch round % 4 {
                case 0: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
                default:
                    for _ in 0..<Int.random(in: 1...8, using: &generator) {
                        let at = Int.random(in: 0..<bytes.count, using: &generator)
                        bytes[at] = [0x00, 0xFF, 0x7F, 0x80, UInt8.random(in: 0...255, using: &generator)].randomElement(using: &generator) ?? 0
                    }
                }
                try Data(bytes).write(to: URL(fileURLWithPath: mutant))
                do {
                    let reader = try ZipReader(path: mutant)
                    for member in reader.members { _ = try? reader.read(member.name) }
                    for source in ContainerLayout.sources(reader) { try? ContainerLayout.forEachRow(reader, source) { _ in true } }
                    outcomes.read += 1
                } catch is ZipError {
                    outcomes.refused += 1
                }
            }
        }
        #expect(outcomes.read + outcomes.refused == 3000)
        #expect(outcomes.refused > 100)
    }

    /// With the zip64 thresholds lowered, small members and counts take every zip64 path; Python's
    /// zipfile reads the result and so do we.
    @Test func zip64StructuresAreValid() throws {
        let path = Self.temporary("z64.zip")
        defer { unlink(path) }
        let writer = try ZipWriter(path: path, mode: 0o600, zip64Threshold: 200, zip64CountThreshold: 3)
        let big = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try writer.add(name: "small", data: Data("tiny".utf8))
        try writer.add(name: "big", data: big)
        try writer.add(name: "after", data: Data("past the threshold offset".utf8))
        try writer.setTrailer(name: "manifest", data: Data("{}".utf8))
        let result = try Self.python(Self.check, [path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("big 1000 "))
        let reader = try ZipReader(path: path)
        #expect(reader.members.map(\.name) == ["small", "big", "after", "manifest"])
        #expect(try reader.read("big") == big)
        #expect(String(decoding: try reader.read("after"), as: UTF8.self) == "past the threshold offset")
        // Python's own zip64 archives read too.
        let theirs = Self.temporary("py64.zip")
        defer { unlink(theirs) }
        #expect(try Self.python("import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\nwith z.open('m','w',force_zip64=True) as f: f.write(b'q'*100000)\nz.close()", [theirs]).status == 0)
        #expect(try ZipReader(path: theirs).read("m") == Data(repeating: UInt8(ascii: "q"), count: 100_000))
    }

    /// The container is private from its first byte; an existing file at the path is replaced, not
    /// written through (a link to another file stays untouched).
    @Test func containersArePrivateAndReplaceWhatWasThere() throws {
        let dir = Self.temporary("dir")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "precious".write(toFile: dir + "/target", atomically: true, encoding: .utf8)
        symlink(dir + "/target", dir + "/out.zip")
        let writer = try ZipWriter(path: dir + "/out.zip")
        try writer.add(name: "a", data: Data("b".utf8))
        #expect(try String(contentsOfFile: dir + "/target", encoding: .utf8) == "precious")
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/out.zip")
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        // A device or a folder at the path is an error, never replaced.
        #expect(throws: ZipError.self) { _ = try ZipWriter(path: "/dev/null") }
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
        #expect(throws: ZipError.self) { _ = try ZipWriter(path: dir) }
        _ = try ZipWriter(path: dir + "/shared.zip", mode: 0o640)
        #expect(try FileManager.default.attributesOfItem(atPath: dir + "/shared.zip")[.posixPermissions] as? Int == 0o640)
    }

    static var roomForFiveGiB: Bool {
        guard let free = try? FileManager.default.attributesOfFileSystem(forPath: NSTemporaryDirectory())[.systemFreeSize] as? Int64 else { return false }
        return free > 14 << 30
    }

    /// A real member past 4 GiB (a sparse 5 GiB file, as a disk image would be) and a member after
    /// it at an offset past 4 GiB: Python's zipfile checks every CRC, and we stream it back.
    @Test(.enabled(if: roomForFiveGiB, "needs 14 GiB free")) func fiveGiBMemberRoundTrips() throws {
        let image = Self.temporary("image.raw"), path = Self.temporary("big.zip")
        defer { unlink(image); unlink(path) }
        let size: Int64 = 5 << 30
        let fd = open(image, O_CREAT | O_WRONLY, 0o600)
        #expect(ftruncate(fd, off_t(size)) == 0)
        _ = pwrite(fd, "start", 5, 0)
        _ = pwrite(fd, "end", 3, off_t(size - 3))
        close(fd)
        let writer = try ZipWriter(path: path)
        let input = try #require(FileHandle(forReadingAtPath: image))
        let written = try writer.add(name: "uploads/image.raw") { buffer in
            let data = try input.read(upToCount: buffer.count) ?? Data()
            buffer.replaceSubrange(0..<data.count, with: data)
            return data.count
        }
        #expect(written == UInt64(size))
        try writer.add(name: "after.json", data: Data("{}\n".utf8))
        try writer.setTrailer(name: "quarry_manifest.json", data: Data("{}".utf8))
        let result = try Self.python(Self.check, [path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("uploads/image.raw \(size) -"))
        let reader = try ZipReader(path: path)
        #expect(reader.member("uploads/image.raw")?.size == Int(size))
        #expect(try reader.read("after.json") == Data("{}\n".utf8))
        // Streamed back whole with the CRC checked, in bounded pieces.
        let stream = try reader.open("uploads/image.raw")
        var total = 0, first = Data(), largest = 0
        while let chunk = try stream.read(max: 4 << 20) {
            if first.isEmpty { first = chunk.prefix(5) }
            total += chunk.count
            largest = max(largest, chunk.count)
        }
        #expect(total == Int(size) && first == Data("start".utf8) && largest <= 4 << 20)
    }
}
