import Foundation
import Testing

/// Evidence stays private and survives a kill: rows reach the container in chunks as the collection
/// goes, the container is 0600, and no temporary file with rows exists at any moment.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct EvidenceCLITests {
    static func folder(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-\(name)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        return dir
    }

    static func start(_ arguments: [String], tmpdir: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": tmpdir]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Every file below `dir` with its mode.
    static func files(_ dir: String) -> [String: Int] {
        var found: [String: Int] = [:]
        for name in (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String]) ?? [] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: dir + "/" + name)
            if attributes?[.type] as? FileAttributeType == .typeRegular { found[name] = attributes?[.posixPermissions] as? Int }
        }
        return found
    }

    /// Whether `nobody` can read the file (it has to be able to reach it: the folder is 0755).
    static func readableByNobody(_ path: String) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "/bin/cat", path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    static func python(_ script: String, _ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    /// The issue's reproduction: FileFinder over /usr with hashes, kill -9 after 3 s. The container
    /// holds the rows of every chunk written so far, readable by zipfile, `collection show` and
    /// `query --collection`, and nothing is left in the temporary folder.
    @Test func killedFileFinderKeepsItsRowsAndLeavesNoSpillFile() throws {
        let dir = try Self.folder("killed"), tmp = try Self.folder("tmp")
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: tmp) }
        let output = dir + "/out.zip"
        let process = try Self.start(
            ["artifacts", "collect", "Linux.Search.FileFinder", "--args", "SearchFilesGlob=/usr/**", "--args", "Calculate_Hash=Y", "--output", output],
            tmpdir: tmp)
        Thread.sleep(forTimeInterval: 1.5)
        // While it runs: the container is private, nobody else reads it, no temporary file holds rows.
        #expect(Self.files(dir) == ["out.zip": 0o600])
        #expect(try !Self.readableByNobody(output))
        #expect(Self.files(tmp).isEmpty, "temporary files: \(Self.files(tmp))")
        Thread.sleep(forTimeInterval: 1.5)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(Self.files(tmp).isEmpty)
        let summary = try Self.python("""
            import zipfile, json, sys
            z = zipfile.ZipFile(sys.argv[1])
            assert z.testzip() is None
            parts = sorted(n for n in z.namelist() if n.startswith('results/Linux.Search.FileFinder') and n.endswith('.json'))
            rows = sum(len(z.read(n).splitlines()) for n in parts)
            print(json.loads(z.read('quarry_manifest.json'))['complete'], len(parts), rows)
            """, output)
        let fields = summary.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(fields.first == "False")
        let rows = Int(fields.last ?? "") ?? 0
        #expect(rows > 0, "\(summary)")
        // Quarry reads the parts back as one source.
        let count = try CLI.run(["query", "--collection", output, "--format", "jsonl", "SELECT count() AS N FROM source(artifact='Linux.Search.FileFinder') GROUP BY 1"])
        #expect(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"N":\#(rows)}"#)
        let show = try CLI.run(["collection", "show", output, "--rows", "2"])
        #expect(show.status == 0 && show.stdout.contains("Linux.Search.FileFinder"))
        print("kill -9 after 3 s: \(rows) rows kept in \(fields.dropFirst().first ?? "?") parts")
    }

    /// A finished collection is 0600 unless `--output-mode` says otherwise.
    @Test func containersArePrivateUnlessAskedOtherwise() throws {
        let dir = try Self.folder("modes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let quick = try CLI.run(["artifacts", "collect", "Linux.Sys.Users", "--output", dir + "/private.zip"])
        #expect(quick.status == 0)
        #expect(Self.files(dir)["private.zip"] == 0o600)
        #expect(try !Self.readableByNobody(dir + "/private.zip"))
        let shared = try CLI.run(["artifacts", "collect", "Linux.Sys.Users", "--output", dir + "/shared.zip", "--output-mode", "644"])
        #expect(shared.status == 0)
        #expect(Self.files(dir)["shared.zip"] == 0o644)
        #expect(try Self.readableByNobody(dir + "/shared.zip"))
        #expect(try CLI.run(["artifacts", "collect", "Linux.Sys.Users", "--output", dir + "/x.zip", "--output-mode", "rw"]).status != 0)
    }

    /// upload() into a folder copies evidence: private too.
    @Test func uploadedFilesArePrivate() throws {
        let dir = try Self.folder("uploads"), tmp = try Self.folder("tmp")
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: tmp) }
        try "secret\n".write(toFile: dir + "/source.txt", atomically: true, encoding: .utf8)
        let upload = try CLI.run(["query", "--upload-dir", dir + "/up", "SELECT upload(file='\(dir)/source.txt') AS U FROM scope()"])
        #expect(upload.status == 0)
        let uploaded = Self.files(dir + "/up")
        #expect(!uploaded.isEmpty && uploaded.values.allSatisfy { $0 == 0o600 }, "\(uploaded)")
    }
}
