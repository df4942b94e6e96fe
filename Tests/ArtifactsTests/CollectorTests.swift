import Foundation
import QuarryDetect
import Testing
import VQL
@testable import Artifacts

@Suite struct CollectorTests {
    func repository() -> ArtifactRepository {
        let repository = ArtifactRepository()
        repository.add(text: """
            name: Test.Collect
            parameters:
              - name: N
                type: int
                default: "3"
            sources:
              - name: Rows
                query: SELECT _value AS I, format(format='row %d', args=_value) AS Text FROM range(end=N)
              - name: Upload
                query: SELECT upload(file='hello upload', accessor='data', name='greeting.txt') AS U FROM scope()
            """, file: "c.yaml")
        repository.add(text: "name: Test.Endless\nsources:\n  - query: SELECT _value FROM range(end=9223372036854775807)\n", file: "e.yaml")
        return repository
    }

    func collect(_ names: [String], options: CollectionOptions = CollectionOptions()) throws -> (CollectionSummary, ZipReader) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-\(UUID().uuidString).zip").path
        let repository = repository()
        let registry = CoreLibrary.registry()
        repository.install(into: registry)
        registry.add(functions: [UploadFunction.upload])
        let collector = try Collector(repository: repository, registry: registry, output: path, options: options, cancellation: CancellationFlag())
        let summary = try collector.collect(names)
        return (summary, try ZipReader(path: path))
    }

    @Test func writesResultsIndexUploadsAndManifest() throws {
        var options = CollectionOptions()
        options.parameters = ["N": "4"]
        options.csv = true
        let (summary, zip) = try collect(["Test.Collect"], options: options)
        #expect(summary.state == "finished")
        let rows = String(decoding: try zip.read("results/Test.Collect%2FRows.json"), as: UTF8.self)
        #expect(rows == #"{"I":0,"Text":"row 0"}\#n{"I":1,"Text":"row 1"}\#n{"I":2,"Text":"row 2"}\#n{"I":3,"Text":"row 3"}\#n"#)
        let index = [UInt8](try zip.read("results/Test.Collect%2FRows.json.index"))
        #expect(index.count == 32)
        #expect(index[8] == 23)
        #expect(String(decoding: try zip.read("results/Test.Collect%2FRows.csv"), as: UTF8.self).hasPrefix("I,Text\n0,row 0\n"))
        #expect(String(decoding: try zip.read("uploads/data/greeting.txt"), as: UTF8.self) == "hello upload")
        let manifest = try JSONParser.parse(bytes: [UInt8](zip.read("quarry_manifest.json")))
        #expect(manifest.member("complete").isTruthy)
        let names = Set((manifest.member("members").listElements ?? []).compactMap { $0.member("name").stringValue })
        #expect(names.isSuperset(of: ["results/Test.Collect%2FRows.json", "uploads/data/greeting.txt", "log.json", "collection_context.json", "requests.json"]))
        let context = try JSONParser.parse(bytes: [UInt8](zip.read("collection_context.json")))
        #expect(context.member("rows").member("Test.Collect/Rows").intValue == 4)
        #expect(context.member("uploaded_files").intValue == 1)
    }

    @Test func maxRowsTruncatesAndTimeoutCancelsAndBothAreRecorded() throws {
        var options = CollectionOptions()
        options.maxRows = 2
        let (truncated, zip) = try collect(["Test.Collect"], options: options)
        #expect(truncated.errors.contains { $0.contains("truncated at max rows 2") })
        #expect(try zip.read("results/Test.Collect%2FRows.json").split(separator: 0x0A).count == 2)
        var timed = CollectionOptions()
        timed.timeout = 0.5
        let started = Date()
        let (summary, zip2) = try collect(["Test.Endless"], options: timed)
        #expect(Date().timeIntervalSince(started) < 60, "a 0.5 s timeout ends an endless collection (15 s was seen on a machine loaded by two builds; without the timeout it never ends)")
        #expect(summary.state == "timed out" || summary.state == "cancelled")
        let manifest = try JSONParser.parse(bytes: [UInt8](zip2.read("quarry_manifest.json")))
        #expect(!manifest.member("complete").isTruthy)
        #expect(String(decoding: try zip2.read("log.json"), as: UTF8.self).contains("timed out"))
    }
}


extension CollectorTests {
    /// Containers written by other tools (deflated members, as Velociraptor writes them) read too;
    /// our own containers open in Python's zipfile with every CRC correct.
    @Test func deflatedContainersReadAndOursAreValidZips() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-zip-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            import zipfile, sys
            z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)
            z.writestr('results/Linux.Sys.Users.json', '{"User":"alice"}\\n' * 1000)
            z.close()
            """
        func python(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3"] + args
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        #expect(try python(["-c", script, dir + "/vr.zip"]).0 == 0)
        let data = try ZipReader(path: dir + "/vr.zip").read("results/Linux.Sys.Users.json")
        #expect(data.count == 17_000)
        let (summary, _) = try collect(["Test.Collect"])
        let check = try python(["-c", "import zipfile, sys; z = zipfile.ZipFile(sys.argv[1]); print(z.testzip(), len(z.namelist()))", summary.output])
        #expect(check.1.hasPrefix("None "))
    }
}

extension CollectorTests {
    /// What an agent does with definitions and queries the server sends, on a thread with the
    /// agent's stack: hostile nesting is refused with a reason, the rest is collected.
    @Test func hostileDefinitionsAndQueriesAreRefusedNotFatal() throws {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        let thread = Thread {
            box.run {
                let repository = ArtifactRepository.builtin()
                let n = 100_000
                let flow = "name: Deep.Flow\nsources:\n  - query: SELECT 1 FROM scope()\nx: " + String(repeating: "[", count: n) + String(repeating: "]", count: n) + "\n"
                let query = "name: Deep.Query\nsources:\n  - query: SELECT " + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n) + " FROM scope()\n"
                #expect(!repository.add(text: flow, file: "server:1"))
                #expect(!repository.add(text: query, file: "server:2"))
                #expect(repository.add(text: "name: Fine\nsources:\n  - query: SELECT 1 AS One FROM scope()\n", file: "server:3"))
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-\(UUID().uuidString).zip").path
                defer { unlink(path) }
                let registry = CoreLibrary.registry()
                repository.install(into: registry)
                let collector = try Collector(repository: repository, registry: registry, output: path, options: CollectionOptions(), cancellation: CancellationFlag())
                let summary = try collector.collect(["Deep.Query", "Fine"])
                #expect(summary.errors.contains { $0.contains("Deep.Query") })
                #expect(summary.rows.map(\.count) == [1])
            }
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        done.wait()
        try box.result?.get()
    }
}

/// Carries a thrown error out of a thread.
final class ResultBox: @unchecked Sendable {
    var result: Result<Void, any Error>?
    func run(_ body: () throws -> Void) { result = Result { try body() } }
}
