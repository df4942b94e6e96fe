import Foundation
import Testing

/// Velociraptor's Generic.Forensic.LocalHashes.Glob and .Query, unchanged from ../shared, over
/// Quarry's own Generic.Forensic.LocalHashes.Init: files hashed into the host's local database
/// (in the private local storage folder, here under a scratch HOME), then found by their MD5.
enum LocalHashesDefinitions {
    static let folder = CLI.root + "/../shared/conformance/velociraptor-artifacts/Generic/Forensic/LocalHashes"
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary)
                    && FileManager.default.fileExists(atPath: LocalHashesDefinitions.folder + "/Glob.yaml"),
                "needs `swift build` and ../shared's Velociraptor artifacts"))
struct LocalHashesCLITests {
    static let definitions = LocalHashesDefinitions.folder

    @Test func filesHashedIntoTheLocalDatabaseAreFoundByTheirHash() throws {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("quarry-localhashes-\(getpid())")
        try FileManager.default.createDirectory(atPath: dir + "/files", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/home", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("alpha\n".utf8).write(to: URL(fileURLWithPath: dir + "/files/a.txt"))
        try Data("beta\n".utf8).write(to: URL(fileURLWithPath: dir + "/files/b.txt"))
        let environment = ["HOME": dir + "/home"]
        func query(_ text: String) throws -> [[String: Any]] {
            let result = try CLI.run(["query", "--format", "jsonl", "--definitions", Self.definitions, text], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        }
        let hashed = try query("SELECT * FROM Artifact.Generic.Forensic.LocalHashes.Glob(HashGlob='\(dir)/files/*')")
        #expect(hashed.compactMap { $0["Hash"] as? String }.sorted() == ["9f9f90dbe3e5ee1218c86b8839db1995", "f0cf2a92516045024a0c99147b28f05b"])
        let database = dir + "/home/.quarry/local/hashdb.sqlite"
        var info = stat()
        #expect(stat(database, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(dir + "/home/.quarry/local", &info) == 0 && info.st_mode & 0o777 == 0o700)
        let found = try query("SELECT * FROM Artifact.Generic.Forensic.LocalHashes.Query(CommaDelimitedHashes='F0CF2A92516045024A0C99147B28F05B')")
        #expect(found.count == 1)
        #expect(found.first?["Path"] as? String == dir + "/files/b.txt")
        #expect(found.first?["Size"] as? Int == 5)
        // The CSV parameter works the same; an unknown hash finds nothing.
        let csv = try query("SELECT * FROM Artifact.Generic.Forensic.LocalHashes.Query(Hashes='Hash\\n9f9f90dbe3e5ee1218c86b8839db1995\\n0000')")
        #expect(csv.compactMap { $0["Path"] as? String } == [dir + "/files/a.txt"])
    }
}
