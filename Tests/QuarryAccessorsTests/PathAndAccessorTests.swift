import Foundation
import QuarryAccessors
import QuarryDetect
import QuarryHost
import Testing
import VQL

/// OSPath and pathspec behaviour, the accessors that need no OS (data, scope, offset, sparse,
/// ranged, pipe), the host's file_nocase/process accessors and the new file functions.
@Suite struct PathAndAccessorTests {
    @Test func pathspecsPrintAndNestAsVelociraptorDoes() throws {
        let rows = try Fixture.rows("""
            LET Inner <= pathspec(DelegateAccessor='file', DelegatePath='/a.zip', Path='/data.zip')
            LET Outer <= pathspec(DelegateAccessor='zip', DelegatePath=Inner, Path='dir/x.txt')
            SELECT Inner AS I, Outer.Path AS P, Outer.Components AS C, Outer.DelegatePath AS DP, Outer.Basename AS B,
                   Outer.Dirname.Path AS D, (Outer + 'more/y').Path AS Appended, (Outer.Dirname + 'z').DelegateAccessor AS KeepsDelegate,
                   pathspec(parse=format(format='%v', args=Outer)).Path AS Reparsed, pathspec(parse='/usr/bin/ls').Components AS Plain,
                   path_split(path='/a//b/./c') AS Split, relpath(path='/x/y/z', base='/x') AS R, relpath(path='/x/q', base='/x/y') AS Up,
                   basename(path=Outer) AS Base, dirname(path='/etc/passwd') AS Dir
            FROM scope()
            """)
        guard let row = rows.first else { Issue.record("no row"); return }
        #expect(Fixture.string(row, "I") == #"{"DelegateAccessor":"file","DelegatePath":"/a.zip","Path":"/data.zip"}"#)
        #expect(Fixture.string(row, "P") == "/dir/x.txt")
        #expect(row.member("C").listElements?.compactMap(\.stringValue) == ["dir", "x.txt"])
        #expect(Fixture.string(row, "DP") == #"{"DelegateAccessor":"file","DelegatePath":"/a.zip","Path":"/data.zip"}"#)
        #expect(Fixture.string(row, "B") == "x.txt")
        #expect(Fixture.string(row, "D") == "/dir")
        #expect(Fixture.string(row, "Appended") == "/dir/x.txt/more/y")
        #expect(Fixture.string(row, "KeepsDelegate") == "zip")
        #expect(Fixture.string(row, "Reparsed") == "/dir/x.txt")
        #expect(row.member("Plain").listElements?.compactMap(\.stringValue) == ["usr", "bin", "ls"])
        #expect(row.member("Split").listElements?.compactMap(\.stringValue) == ["a", "b", "c"])
        #expect(Fixture.string(row, "R") == "y/z")
        #expect(Fixture.string(row, "Up") == "../q")
        #expect(Fixture.string(row, "Base") == "x.txt")
        #expect(Fixture.string(row, "Dir") == "/etc")
    }

    @Test func accessorsWithoutAFileSystem() throws {
        let rows = try Fixture.rows("""
            LET Secret <= 'binary scope data'
            LET P = pipe(query={ SELECT _value AS Line FROM foreach(row=['a', 'b', 'c']) }, sep='\\n')
            SELECT read_file(filename='Hello world', accessor='data', offset=6) AS Data,
                   read_file(filename='Secret', accessor='scope') AS Scope,
                   read_file(accessor='offset', filename=pathspec(DelegateAccessor='data', DelegatePath='Hello world', Path='/6')) AS Offset,
                   read_file(accessor='sparse', filename=pathspec(DelegateAccessor='data', DelegatePath='0123456789ABCDEF',
                             Path=[dict(Offset=0, Length=2), dict(Offset=10, Length=3)])) AS Sparse,
                   read_file(accessor='ranged', filename=pathspec(DelegateAccessor='data', DelegatePath='xyz',
                             Path=[dict(file_offset=0, original_offset=4, file_length=3)])) AS Ranged,
                   read_file(filename='P', accessor='pipe') AS Pipe
            FROM scope()
            """)
        guard let row = rows.first else { Issue.record("no row"); return }
        #expect(Fixture.string(row, "Data") == "world")
        #expect(Fixture.string(row, "Scope") == "binary scope data")
        #expect(Fixture.string(row, "Offset") == "world")
        #expect(row.member("Sparse").byteValue == Array("01".utf8) + [UInt8](repeating: 0, count: 8) + Array("ABC".utf8))
        #expect(row.member("Ranged").byteValue == [0, 0, 0, 0] + Array("xyz".utf8))
        #expect(Fixture.string(row, "Pipe") == "a\nb\nc\n")
        let (none, log) = try Fixture.run("SELECT read_file(filename='x', accessor='nosuch') AS X FROM scope()")
        #expect(none.first?.member("X").isNull == true)
        #expect(log.contains { $0.contains("unknown accessor 'nosuch'") })
    }

    @Test func caseInsensitiveFilesAndFileFunctions() throws {
        let dir = Fixture.directory("nocase")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        Fixture.write(dir + "/Windows/System32/Config/SAM", "hive")
        let rows = try Fixture.rows("""
            SELECT OSPath, read_file(filename=OSPath, accessor='file_nocase') AS D
            FROM glob(globs=\(Fixture.quoted(dir + "/windows/system32/config/s*")), accessor='file_nocase')
            """)
        #expect(rows.compactMap { Fixture.string($0, "OSPath") } == [dir + "/Windows/System32/Config/SAM"])
        #expect(rows.first.flatMap { Fixture.string($0, "D") } == "hive")
        let stat = try Fixture.rows("SELECT Size FROM stat(filename=\(Fixture.quoted(dir + "/WINDOWS/system32/CONFIG/sam")), accessor='file_nocase')")
        #expect(stat.first.flatMap { Fixture.int($0, "Size") } == 4)
        let copied = try Fixture.rows("""
            SELECT copy(filename='copied', accessor='data', dest=\(Fixture.quoted(dir + "/c/c.txt")), create_directories=true) AS C,
                   write_file(data='w', dest=\(Fixture.quoted(dir + "/w.txt")), permissions='0640') AS W,
                   rm(filename=\(Fixture.quoted(dir + "/w.txt"))) AS Removed, rm(filename=\(Fixture.quoted(dir + "/none"))) AS Missing,
                   expand(path='$QUARRY_TEST_X/%QUARRY_TEST_X%/${QUARRY_TEST_X}/%UNSET_QUARRY%') AS E
            FROM scope()
            """)
        #expect(Fixture.read(dir + "/c/c.txt") == Array("copied".utf8))
        #expect(copied.first.flatMap { Fixture.string($0, "W") } == dir + "/w.txt")
        #expect(copied.first?.member("Removed").isTruthy == true && copied.first?.member("Missing").isTruthy == false)
        #expect(!FileManager.default.fileExists(atPath: dir + "/w.txt"))
        let home = ProcessInfo.processInfo.environment["QUARRY_TEST_X"] ?? ""
        #expect(copied.first.flatMap { Fixture.string($0, "E") } == "\(home)/\(home.isEmpty ? "%QUARRY_TEST_X%" : home)/\(home)/%UNSET_QUARRY%")
    }

    @Test func temporaryFilesArePrivateAndRemovedAtTheEnd() throws {
        let logger = MemoryLogger()
        let session = Session(registry: Fixture.registry(), logger: logger)
        let rows = try session.run("SELECT tempfile(data=['a', 'b'], extension='.txt') AS F, tempdir() AS D FROM scope()").last.flatMap { $0 } ?? []
        guard let file = rows.first.flatMap({ Fixture.string($0, "F") }), let folder = rows.first.flatMap({ Fixture.string($0, "D") }) else {
            Issue.record("no temp paths: \(logger.messages)")
            return
        }
        #expect(file.hasSuffix(".txt"))
        #expect(Fixture.read(file) == Array("ab".utf8))
        let fileMode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) ?? 0
        let dirMode = (try FileManager.default.attributesOfItem(atPath: folder)[.posixPermissions] as? Int) ?? 0
        let parentMode = (try FileManager.default.attributesOfItem(atPath: (folder as NSString).deletingLastPathComponent)[.posixPermissions] as? Int) ?? 0
        #expect(fileMode == 0o600 && dirMode == 0o700 && parentMode == 0o700)
        session.context.finish()
        #expect(!FileManager.default.fileExists(atPath: file) && !FileManager.default.fileExists(atPath: folder))
    }

    @Test func processMemoryReadsAsASparseFile() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import time; m = 'QUARRY-ACCESSOR-' + 'MARKER-' + str(9876); time.sleep(60)"]
        try process.run()
        defer { process.terminate() }
        let pid = process.processIdentifier
        var rows: [Value] = []
        for _ in 0..<50 {
            rows = try Fixture.rows("""
                SELECT String.Offset AS O, read_file(filename='/\(pid)', accessor='process', offset=String.Offset, length=27) AS D
                FROM yara(rules=['QUARRY-ACCESSOR-MARKER-9876'], files='/\(pid)', accessor='process')
                """)
            if !rows.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(rows.first.flatMap { Fixture.string($0, "D") } == "QUARRY-ACCESSOR-MARKER-9876")
        let dir = Fixture.directory("procupload")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logger = MemoryLogger()
        let session = Session(registry: Fixture.registry(), logger: logger)
        session.context.setService(UploadFunction.serviceKey, DirectoryUploads(root: dir) as any UploadDestination)
        let upload = try session.run("SELECT upload(file='/\(pid)', accessor='process', name='mem') AS U FROM scope()").last.flatMap { $0 } ?? []
        #expect(upload.first?.member("U").member("Sparse").isTruthy == true, "\(logger.messages)")
        let index = Fixture.read(dir + "/process/mem.idx")
        #expect(String(decoding: index, as: UTF8.self).contains("original_offset"))
        let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/process/mem")[.size] as? Int) ?? 0
        #expect(size > 0 && Int64(size) == upload.first?.member("U").member("Size").intValue)
    }
}

/// Every example of the container module's declarations runs without an error.
@Suite struct AccessorDeclarationTests {
    static var examples: [String] {
        AccessorLibrary.plugins.flatMap(\.examples) + AccessorLibrary.functions.flatMap(\.examples)
    }

    @Test(arguments: examples)
    func exampleRuns(_ example: String) throws {
        let (rows, log) = try Fixture.run(example)
        #expect(!rows.isEmpty, "no rows from: \(example)")
        #expect(!log.contains { $0.hasPrefix("ERROR") }, "\(log)")
    }

    @Test func everyAccessorIsDocumentedAndNamedOnce() {
        let names = (CoreLibrary.accessors + HostLibrary.accessors + AccessorLibrary.accessors).map(\.name)
        #expect(Set(names).count == names.count)
        for accessor in CoreLibrary.accessors + HostLibrary.accessors + AccessorLibrary.accessors {
            #expect(!accessor.summary.isEmpty, "\(accessor.name)")
        }
    }
}
