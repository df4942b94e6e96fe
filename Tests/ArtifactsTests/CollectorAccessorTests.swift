import Foundation
import QuarryAccessors
import QuarryDetect
import QuarryHost
import Testing
import VQL
@testable import Artifacts

/// The collector accessor over a container Quarry wrote and over one with a sparse upload.
@Suite struct CollectorAccessorTests {
    static func registry() -> Registry {
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(functions: [UploadFunction.upload])
        registry.add(accessors: AccessorLibrary.accessors + [CollectorAccessor()])
        return registry
    }

    static func rows(_ query: String) throws -> ([Value], [String]) {
        let logger = MemoryLogger()
        let session = Session(registry: registry(), logger: logger)
        defer { session.context.finish() }
        return (try session.run(query).last.flatMap { $0 } ?? [], logger.messages)
    }

    @Test func readsUploadsOfAQuarryCollection() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-\(UUID().uuidString).zip").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let repository = ArtifactRepository()
        repository.add(text: """
            name: Test.Upload
            sources:
              - query: SELECT upload(file='hello upload', accessor='data', name='greeting.txt') AS U FROM scope()
            """, file: "u.yaml")
        let collector = try Collector(repository: repository, registry: CollectorAccessorTests.registry(), output: path,
                                      options: CollectionOptions(), cancellation: CancellationFlag())
        _ = try collector.collect(["Test.Upload"])
        let (rows, log) = try CollectorAccessorTests.rows("""
            SELECT OSPath.Path AS P, read_file(filename=OSPath, accessor='collector') AS D
            FROM glob(globs='uploads/**', accessor='collector', root=pathspec(DelegateAccessor='file', DelegatePath='\(path)'))
            WHERE NOT IsDir
            """)
        #expect(rows.compactMap { $0.member("P").stringValue } == ["/uploads/data/greeting.txt"], "\(log)")
        #expect(rows.first?.member("D").stringValue == "hello upload")
    }

    @Test func expandsSparseUploads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-sparse-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            import zipfile, json
            with zipfile.ZipFile('c.zip', 'w') as z:
                z.writestr('uploads/auto/mem', b'AAAABBBB')
                z.writestr('uploads/auto/mem.idx', json.dumps({'ranges': [
                    {'file_offset': 0, 'original_offset': 10, 'file_length': 4, 'length': 4},
                    {'file_offset': 4, 'original_offset': 20, 'file_length': 4, 'length': 4}]}))
            """
        _ = FileManager.default.createFile(atPath: dir + "/c.py", contents: Data(script.utf8))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "c.py"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        try process.run()
        process.waitUntilExit()
        let (rows, log) = try CollectorAccessorTests.rows("""
            SELECT read_file(filename=pathspec(DelegateAccessor='file', DelegatePath='\(dir)/c.zip', Path='uploads/auto/mem'), accessor='collector') AS D,
                   stat(filename=pathspec(DelegateAccessor='file', DelegatePath='\(dir)/c.zip', Path='uploads/auto/mem'), accessor='collector').Size AS S
            FROM scope()
            """)
        let expected = [UInt8](repeating: 0, count: 10) + Array("AAAA".utf8) + [UInt8](repeating: 0, count: 6) + Array("BBBB".utf8)
        #expect(rows.first?.member("D").byteValue == expected, "\(log)")
        #expect(rows.first?.member("S").intValue == 24)
    }
}
