import Fleet
import Foundation
import Testing

/// Key files are private from their first byte: an unprivileged user polling the folder while
/// `config generate` runs never reads one, and each ends 0600.
@Suite(.serialized, .enabled(if: FleetHarness.available && getuid() == 0 && Watcher.available, "needs root, setpriv and /usr/bin/python3"))
struct SecretFileTests {
    @Test func configGenerateNeverExposesTheCAKeyToAnotherUser() throws {
        let root = NSTemporaryDirectory() + "quarry-secrets-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Folders anyone may enter (as a careless operator would make them): only the files' own
        // modes protect the secrets.
        let runs = 25
        for run in 0..<runs { try FileManager.default.createDirectory(atPath: root + "/run\(run)", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]) }
        chmod(root, 0o755)
        let watcher = try Watcher(root: root)
        let fleet = try FleetHarness()
        for run in 0..<runs {
            try fleet.check(fleet.run(["config", "generate", "--server-url", "https://127.0.0.1:8443", "--dir", root + "/run\(run)"]))
        }
        let report = try watcher.stop()
        #expect(report.attempts > 1000, "the watcher polled \(report.attempts) times")
        #expect(report.captured.isEmpty, "read as nobody: \(report.captured.prefix(5))")
        for run in 0..<runs {
            for name in ["server.yaml", "api.yaml"] {
                let attributes = try FileManager.default.attributesOfItem(atPath: root + "/run\(run)/" + name)
                #expect((attributes[.posixPermissions] as? Int) == 0o600)
            }
            // No temporary names are left behind.
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: root + "/run\(run)")) == ["server.yaml", "api.yaml"])
        }
    }
}

/// A process running as `nobody` that lists every folder under a root, over and over, and tries to
/// read each file it finds; it reports the files it managed to read.
final class Watcher {
    static let python = "/usr/bin/python3"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: python) && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") }

    struct Report {
        var attempts: Int
        var captured: [String]
    }

    private let process = Process()
    private let output = Pipe()
    private let stopFile: String

    init(root: String) throws {
        stopFile = NSTemporaryDirectory() + "quarry-watcher-stop-" + UUID().uuidString
        let script = """
            import os, sys
            root, stop = sys.argv[1], sys.argv[2]
            captured, attempts = set(), 0
            while not os.path.exists(stop):
                for top, dirs, files in os.walk(root):
                    for name in files:
                        path = os.path.join(top, name)
                        attempts += 1
                        try:
                            with open(path, 'rb') as f:
                                if f.read(64):
                                    captured.add(path)
                        except OSError:
                            pass
            print(attempts)
            for path in sorted(captured):
                print(path)
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups", Self.python, "-c", script, root, stopFile]
        process.standardOutput = output
        try process.run()
        Thread.sleep(forTimeInterval: 0.3)
    }

    func stop() throws -> Report {
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        defer { unlink(stopFile) }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = text.split(separator: "\n").map(String.init)
        return Report(attempts: Int(lines.first ?? "") ?? 0, captured: Array(lines.dropFirst()))
    }
}
