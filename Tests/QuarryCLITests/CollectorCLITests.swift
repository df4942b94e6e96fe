import Foundation
import Testing

/// The offline collector end to end: built by `quarry collector build`, run as the person on site
/// would (no argument but a folder), its container opened only with the right key or password,
/// refused when altered, readable by 7-Zip, and the self-contained bundle running where neither the
/// Swift runtime nor Quarry's libraries exist.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct CollectorCLITests {
    static func folder(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-\(name)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A fresh RSA key and self-signed certificate (PEM paths) made by openssl.
    static func keyPair(_ dir: String, _ name: String) throws -> (certificate: String, key: String) {
        let result = try CLI.run(
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).pem", "-days", "2", "-subj", "/CN=\(name)"],
            executable: "/usr/bin/openssl")
        try #require(result.status == 0, "openssl: \(result.stderr)")
        return ("\(dir)/\(name).pem", "\(dir)/\(name).key")
    }

    /// The one container a collector wrote into `dir`.
    static func container(in dir: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("Collection-") && $0.hasSuffix(".zip") }
        try #require(names.count == 1, "containers in \(dir): \(names)")
        return dir + "/" + names[0]
    }

    static func mode(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    /// Flips one byte of the file at `offset` (negative: from the end).
    static func flipByte(_ path: String, at offset: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let i = offset < 0 ? data.count + offset : offset
        data[i] ^= 0x5A
        try data.write(to: URL(fileURLWithPath: path))
    }

    @Test func encryptedCollectionOpensOnlyWithTheInvestigatorsKeyAndRefusesTampering() throws {
        let dir = try Self.folder("collector-x509")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let investigator = try Self.keyPair(dir, "investigator")
        let stranger = try Self.keyPair(dir, "stranger")
        let build = try CLI.run([
            "collector", "build", "--no-bundle", "--artifact", "Linux.Sys.Users", "--encrypt-to", investigator.certificate, "--output", "\(dir)/collector",
        ])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try CLI.run(["collector", "show", "\(dir)/collector"]).stdout.contains("Linux.Sys.Users"))

        // On site: the collector alone, with a folder to write to.
        let run = try CLI.run(["--output-dir", "\(dir)/out"], executable: "\(dir)/collector")
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("encrypted"))
        let container = try Self.container(in: "\(dir)/out")
        #expect(Self.mode(container) == 0o600)
        // From outside: two members, no evidence and no evidence file names in the bytes.
        let listing = try CLI.run(["-Z1", container], executable: "/usr/bin/unzip")
        #expect(listing.stdout.split(separator: "\n").sorted() == ["data.zip", "metadata.json"])
        let bytes = try String(decoding: Data(contentsOf: URL(fileURLWithPath: container)), as: UTF8.self)
        #expect(!bytes.contains("/usr/sbin/nologin") && !bytes.contains("Linux.Sys.Users"))
        #expect(try CLI.run(["collection", "show", container]).stdout.contains("encrypted (X509"))

        // The wrong key is refused, and leaves nothing behind.
        let wrong = try CLI.run(["collection", "decrypt", container, "--key", stranger.key, "--output", "\(dir)/wrong.zip"])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("does not open"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/wrong.zip"))

        // The right key opens it: the users are there.
        let clear = try CLI.run(["collection", "decrypt", container, "--key", investigator.key, "--output", "\(dir)/clear.zip"])
        #expect(clear.status == 0, "\(clear.stderr)")
        #expect(Self.mode("\(dir)/clear.zip") == 0o600)
        let shown = try CLI.run(["collection", "show", "\(dir)/clear.zip"])
        #expect(shown.stdout.contains("Linux.Sys.Users") && shown.stdout.contains("root"))

        // One flipped byte in the encrypted data: refused as altered, no output.
        try FileManager.default.copyItem(atPath: container, toPath: "\(dir)/tampered.zip")
        let size = try FileManager.default.attributesOfItem(atPath: container)[.size] as? Int ?? 0
        try Self.flipByte("\(dir)/tampered.zip", at: size / 2)
        let tampered = try CLI.run(["collection", "decrypt", "\(dir)/tampered.zip", "--key", investigator.key, "--output", "\(dir)/t.zip"])
        #expect(tampered.status != 0)
        #expect(tampered.stderr.contains("altered"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/t.zip"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/7zz"), "7-Zip (Debian's 7zip) is installed by make test"))
    func passwordCollectionOpensInSevenZip() throws {
        let dir = try Self.folder("collector-password")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let short = try CLI.run(["collector", "build", "--no-bundle", "--artifact", "Linux.Sys.Users", "--password-stdin", "--output", "\(dir)/c"], stdin: "short\n")
        #expect(short.status != 0 && short.stderr.contains("at least 8"))

        let password = "correct horse battery staple"
        let build = try CLI.run(
            ["collector", "build", "--no-bundle", "--artifact", "Linux.Sys.Users", "--password-stdin", "--output", "\(dir)/collector"], stdin: password + "\n")
        #expect(build.status == 0, "\(build.stderr)")
        let run = try CLI.run(["--output-dir", "\(dir)/out"], executable: "\(dir)/collector")
        #expect(run.status == 0, "\(run.stderr)")
        let container = try Self.container(in: "\(dir)/out")

        // A standard tool opens it with the password, checking the authentication code...
        let extracted = try CLI.run(["x", "-y", "-p\(password)", "-o\(dir)/7z", container], executable: "/usr/bin/7zz")
        #expect(extracted.status == 0, "\(extracted.stdout)")
        #expect(try CLI.run(["collection", "show", "\(dir)/7z/data.zip"]).stdout.contains("/usr/sbin/nologin"))
        // ...and not without it.
        let wrong = try CLI.run(["x", "-y", "-pwrong-password", "-o\(dir)/7z-wrong", container], executable: "/usr/bin/7zz")
        #expect(wrong.status != 0)
        // quarry decrypts it too.
        let clear = try CLI.run(["collection", "decrypt", container, "--password-stdin", "--output", "\(dir)/clear.zip"], stdin: password + "\n")
        #expect(clear.status == 0, "\(clear.stderr)")
    }

    /// Velociraptor's own password-protected offline collection (shared test data, password "hello").
    static let velociraptorCollection = CLI.root + "/../shared/conformance/velociraptor-testcases/files/files/encrypted_collector_password.zip"

    @Test(.enabled(if: FileManager.default.fileExists(atPath: velociraptorCollection), "shared Velociraptor test data absent"))
    func velociraptorPasswordCollectionDecryptsAndShows() throws {
        let dir = try Self.folder("collector-velociraptor")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CLI.run(["collection", "show", Self.velociraptorCollection]).stdout.contains("encrypted (Password)"))
        let wrong = try CLI.run(["collection", "decrypt", Self.velociraptorCollection, "--password-stdin", "--output", "\(dir)/w.zip"], stdin: "nope\n")
        #expect(wrong.status != 0 && wrong.stderr.contains("wrong password"))
        let clear = try CLI.run(["collection", "decrypt", Self.velociraptorCollection, "--password-stdin", "--output", "\(dir)/clear.zip"], stdin: "hello\n")
        #expect(clear.status == 0, "\(clear.stderr)")
        // Its older layout (<Artifact>/<Source>.json at the top) reads as sources.
        let shown = try CLI.run(["collection", "show", "\(dir)/clear.zip"]).stdout
        #expect(shown.contains("Generic.Client.Info/BasicInformation") && shown.contains("DESKTOP-SU8FH31"))
    }

    /// collect() from VQL: a private container with each artifact's rows and per-artifact args;
    /// password= seals it so that only the password opens it; a wrong name is refused with a hint.
    @Test func collectPluginWritesAndSealsContainers() throws {
        let dir = try Self.folder("collect-plugin")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let query = """
            SELECT * FROM collect(artifacts=['Linux.Sys.Users', 'Linux.Detection.SigmaRules'], output='\(dir)/c.zip',
                                  args=dict(`Linux.Detection.SigmaRules`=dict(DefaultRules='title: from-args')))
            """
        let made = try CLI.run(["query", "--format", "json", query])
        #expect(made.status == 0 && made.stdout.contains("\"Container\":\"\(dir)/c.zip\""), "\(made.stdout)\(made.stderr)")
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/c.zip")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let shown = try CLI.run(["collection", "show", dir + "/c.zip"]).stdout
        #expect(shown.contains("Linux.Sys.Users") && shown.contains("root") && shown.contains("from-args"), "\(shown)")

        let sealed = try CLI.run(["query", "--format", "json",
                                  "SELECT * FROM collect(artifacts='Linux.Sys.Users', output='\(dir)/s.zip', password='a long passphrase')"])
        #expect(sealed.status == 0, "\(sealed.stderr)")
        #expect(try CLI.run(["collection", "show", dir + "/s.zip"]).stdout.contains("encrypted (Password,"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.zip.plain-\(getpid())"))
        let wrong = try CLI.run(["collection", "decrypt", dir + "/s.zip", "--password-stdin", "--output", dir + "/w.zip"], stdin: "nope\n")
        #expect(wrong.status != 0)
        let clear = try CLI.run(["collection", "decrypt", dir + "/s.zip", "--password-stdin", "--output", dir + "/clear.zip"], stdin: "a long passphrase\n")
        #expect(clear.status == 0, "\(clear.stderr)")
        #expect(try CLI.run(["collection", "show", dir + "/clear.zip"]).stdout.contains("Linux.Sys.Users"))

        let misspelt = try CLI.run(["query", "SELECT * FROM collect(artifacts='Linux.Sys.Userz', output='\(dir)/x.zip')"])
        #expect(misspelt.stderr.contains("did you mean 'Linux.Sys.Users'"), "\(misspelt.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.zip"))
    }

    @Test func damagedCollectorRefusesToRun() throws {
        let dir = try Self.folder("collector-damaged")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CLI.run(["collector", "build", "--no-bundle", "--artifact", "Linux.Sys.Users", "--output", "\(dir)/collector"]).status == 0)
        // A byte of the spec (just before the 56-byte trailer) changed in transit.
        try Self.flipByte("\(dir)/collector", at: -70)
        let run = try CLI.run(["--output-dir", "\(dir)/out"], executable: "\(dir)/collector")
        #expect(run.status != 0)
        #expect(run.stderr.contains("damaged"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/out"))?.isEmpty ?? true)
    }

    @Test func customDefinitionsTravelWithTheCollector() throws {
        let dir = try Self.folder("collector-definitions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/defs", withIntermediateDirectories: true)
        try """
            name: Custom.Collector.Marker
            parameters:
              - name: Word
                default: unset
            sources:
              - query: SELECT Word, 'marker-from-custom-artifact' AS Marker FROM scope()
            """.write(toFile: "\(dir)/defs/marker.yaml", atomically: true, encoding: .utf8)
        let build = try CLI.run([
            "collector", "build", "--no-bundle", "--definitions", "\(dir)/defs", "--artifact", "Custom.Collector.Marker", "--args", "Word=chosen",
            "--output", "\(dir)/collector",
        ])
        #expect(build.status == 0, "\(build.stderr)")
        try FileManager.default.removeItem(atPath: "\(dir)/defs")
        let run = try CLI.run(["--output-dir", "\(dir)/out"], executable: "\(dir)/collector")
        #expect(run.status == 0, "\(run.stderr)")
        let shown = try CLI.run(["collection", "show", try Self.container(in: "\(dir)/out")])
        #expect(shown.stdout.contains("marker-from-custom-artifact") && shown.stdout.contains("chosen"))
        // A name that does not exist is refused at build time, with a suggestion.
        let typo = try CLI.run(["collector", "build", "--artifact", "Linux.Sys.User", "--output", "\(dir)/x"])
        #expect(typo.status != 0 && typo.stderr.contains("did you mean Linux.Sys.Users"))
    }

    /// The libraries quarry links that live outside the C library: the Swift runtime's folder and libyara.
    static func linked() throws -> (swiftRuntime: String, yara: String) {
        let ldd = try CLI.run([CLI.binary], executable: "/usr/bin/ldd").stdout
        func path(_ name: String) -> String? {
            ldd.split(separator: "\n").first { $0.contains(name) }?.split(separator: " ").first { $0.hasPrefix("/") }.map(String.init)
        }
        let core = try #require(path("libswiftCore.so"))
        let yara = try #require(path("libyara.so"))
        return ((core as NSString).deletingLastPathComponent, URL(fileURLWithPath: yara).resolvingSymlinksInPath().path)
    }

    @Test(.enabled(if: getuid() == 0, "mount namespaces need root"))
    func bundleRunsWithoutTheSwiftRuntimeOrQuarrysLibraries() throws {
        let dir = try Self.folder("collector-bundle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let investigator = try Self.keyPair(dir, "investigator")
        let build = try CLI.run(["collector", "build", "--artifact", "Linux.Sys.Users", "--encrypt-to", investigator.certificate, "--output", "\(dir)/collector"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stdout.contains("self-contained"))
        let help = try CLI.run(["--help"], executable: "\(dir)/collector")
        #expect(help.status == 0 && help.stdout.contains("Linux.Sys.Users") && help.stdout.contains("private key"))

        // A private mount namespace where the Swift runtime's folder is an empty tmpfs and libyara
        // is an empty file: quarry itself cannot start there, the collector must.
        let (runtime, yara) = try Self.linked()
        let script = """
            mount -t tmpfs none "$1" && mount --bind /dev/null "$2" || exit 90
            if "$3" --version >/dev/null 2>&1; then echo "quarry still starts: nothing is hidden"; exit 91; fi
            cd "$5" && "$4" --output-dir "$5/out"
            """
        let run = try CLI.run(
            ["-m", "/bin/sh", "-c", script, "sh", runtime, yara, CLI.binary, "\(dir)/collector", dir], executable: "/usr/bin/unshare",
            environment: ["TMPDIR": dir])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let container = try Self.container(in: "\(dir)/out")
        let clear = try CLI.run(["collection", "decrypt", container, "--key", investigator.key, "--output", "\(dir)/clear.zip"])
        #expect(clear.status == 0, "\(clear.stderr)")
        #expect(try CLI.run(["collection", "show", "\(dir)/clear.zip"]).stdout.contains("/usr/sbin/nologin"))
        // The unpacked folder is gone.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".quarry-collector") }
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
