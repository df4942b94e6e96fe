import ArgumentParser
import Artifacts
import Foundation
import Fleet
import QuarryCollector

/// A .deb of quarry built with dpkg-deb (no network): the executable in /usr/lib/quarry (with the
/// Swift runtime beside it, which Debian does not package; it is found through the executable's
/// $ORIGIN run path), /usr/bin/quarry, the systemd units, the manual page and shell completions.
/// Every other library it links becomes a Depends on the Debian package that owns it, so security
/// updates of libyara, libmagic, OpenSSL … reach quarry. With a client configuration it becomes a
/// per-fleet agent package (`quarry-client-FLEET`): the configuration goes to /etc/quarry (0600, a
/// conffile) and installing the package enrols the host by starting the agent.
struct DebianPackage {
    var binary: String
    var outputDirectory: String
    /// xz (default), gzip or none — dpkg-deb's compressors.
    var compression = "xz"
    /// client.yaml text for a per-fleet agent package.
    var clientConfig: String?
    var fleet: String?

    struct PackageError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    var packageName: String { clientConfig == nil ? "quarry" : "quarry-client-" + (fleet ?? "fleet") }

    /// Builds the package and returns its path.
    func build() throws -> String {
        let fleetName = fleet ?? (clientConfig == nil ? "" : "fleet")
        guard fleetName.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }) else {
            throw PackageError(message: "--fleet: lower-case letters, digits and '-' only (it becomes part of the package name)")
        }
        let fm = FileManager.default
        let binary = SelfExtractingBundle.realPath(self.binary)
        let root = NSTemporaryDirectory() + "quarry-deb-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? fm.removeItem(atPath: root) }
        for folder in ["DEBIAN", "usr/lib/quarry", "usr/bin", "lib/systemd/system", "usr/share/man/man1", "usr/share/bash-completion/completions",
                       "usr/share/zsh/vendor-completions", "usr/share/fish/vendor_completions.d", "usr/share/doc/\(packageName)"] {
            try fm.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        try fm.copyItem(atPath: SelfExtractingBundle.realPath(binary), toPath: root + "/usr/lib/quarry/quarry")
        chmod(root + "/usr/lib/quarry/quarry", 0o755)
        SelfExtractingBundle.stripSymbols(root + "/usr/lib/quarry/quarry")
        try fm.createSymbolicLink(atPath: root + "/usr/bin/quarry", withDestinationPath: "../lib/quarry/quarry")

        var depends = Set<String>()
        for library in try SelfExtractingBundle.libraries(of: binary) {
            if let owner = try Self.owner(of: library.path) {
                depends.insert(owner)
            } else {
                try fm.copyItem(atPath: SelfExtractingBundle.realPath(library.path), toPath: root + "/usr/lib/quarry/" + library.name)
                chmod(root + "/usr/lib/quarry/" + library.name, 0o644)
            }
        }
        // libmagic's database is data, not a linked library.
        depends.insert("libmagic-mgc")

        try write(SystemdUnits.server, root + "/lib/systemd/system/quarry-server.service")
        try write(SystemdUnits.client, root + "/lib/systemd/system/quarry-client.service")
        try write(try Self.output("/bin/sh", ["-c", "gzip -9n", "sh"], input: Data(ManualPage.render().utf8)), root + "/usr/share/man/man1/quarry.1.gz")
        try write(Quarry.completionScript(for: .bash), root + "/usr/share/bash-completion/completions/quarry")
        try write(Quarry.completionScript(for: .zsh), root + "/usr/share/zsh/vendor-completions/_quarry")
        try write(Quarry.completionScript(for: .fish), root + "/usr/share/fish/vendor_completions.d/quarry.fish")
        try write("Quarry \(QuarryVersion.current): forensic queries, artifacts, offline collectors and a fleet for Linux.\n", root + "/usr/share/doc/\(packageName)/README")

        if let clientConfig {
            try fm.createDirectory(atPath: root + "/etc/quarry", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try write(clientConfig, root + "/etc/quarry/client.yaml", mode: 0o600)
            try write("/etc/quarry/client.yaml\n", root + "/DEBIAN/conffiles")
        }
        try write(Self.postinst(client: clientConfig != nil), root + "/DEBIAN/postinst", mode: 0o755)
        try write(Self.prerm(client: clientConfig != nil), root + "/DEBIAN/prerm", mode: 0o755)
        try write(Self.postrm, root + "/DEBIAN/postrm", mode: 0o755)

        let architecture = try Self.run("/usr/bin/dpkg", ["--print-architecture"]).trimmed
        let installedKiB = try Self.run("/usr/bin/du", ["-sk", "--exclude=DEBIAN", root]).trimmed.split(separator: "\t").first ?? "0"
        var control = [
            "Package: \(packageName)", "Version: \(QuarryVersion.current)", "Architecture: \(architecture)",
            "Maintainer: Quarry developers <quarry@localhost>", "Installed-Size: \(installedKiB)", "Section: admin", "Priority: optional",
            "Depends: \(depends.sorted().joined(separator: ", "))", "Recommends: nftables",
        ]
        if clientConfig != nil { control += ["Provides: quarry", "Conflicts: quarry", "Replaces: quarry"] }
        control += [
            "Description: forensic queries, artifacts and fleet for Linux (VQL)",
            clientConfig == nil
                ? " Quarry asks live hosts questions in VQL, collects Velociraptor-style artifacts, builds\n offline collectors and runs a fleet server and endpoint agents."
                : " The Quarry endpoint agent, configured for the fleet \(fleetName): installing it enrols\n this host and starts quarry-client.service.",
        ]
        try write(control.joined(separator: "\n") + "\n", root + "/DEBIAN/control")

        try fm.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let output = outputDirectory + "/\(packageName)_\(QuarryVersion.current)_\(architecture).deb"
        _ = try Self.run("/usr/bin/dpkg-deb", ["--root-owner-group", "-Z\(compression)", "--build", root, output])
        return output
    }

    func write(_ text: String, _ path: String, mode: mode_t = 0o644) throws {
        try write(Data(text.utf8), path, mode: mode)
    }

    func write(_ data: Data, _ path: String, mode: mode_t = 0o644) throws {
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: Int(mode)]) else {
            throw PackageError(message: "cannot write \(path)")
        }
        chmod(path, mode)
    }

    /// The Debian package that installed `path` (tried as given, resolved, and across the /usr merge).
    static func owner(of path: String) throws -> String? {
        let resolved = SelfExtractingBundle.realPath(path)
        var candidates = [path, resolved]
        for p in [path, resolved] {
            if p.hasPrefix("/usr/") { candidates.append(String(p.dropFirst(4))) } else { candidates.append("/usr" + p) }
        }
        for candidate in candidates {
            guard let text = try? run("/usr/bin/dpkg", ["-S", candidate]), let line = text.split(separator: "\n").first,
                  let colon = line.firstIndex(of: ":") else { continue }
            let owner = String(line[..<colon])
            // Run from an installed quarry package, the Swift runtime beside it belongs to that
            // package: bundle it again rather than depend on ourselves.
            return owner == "quarry" || owner.hasPrefix("quarry-client-") ? nil : owner
        }
        return nil
    }

    static func postinst(client: Bool) -> String {
        """
        #!/bin/sh
        set -e
        if [ "$1" = configure ]; then
          if ! getent passwd quarry >/dev/null; then
            adduser --system --group --home /var/lib/quarry --no-create-home quarry >/dev/null 2>&1 \\
              || useradd --system --user-group --home-dir /var/lib/quarry --shell /usr/sbin/nologin quarry
          fi
          if [ -d /run/systemd/system ]; then
            systemctl daemon-reload >/dev/null 2>&1 || true
        \(client ? "    systemctl enable --now quarry-client.service || true\n" : "")  fi
        fi
        exit 0

        """
    }

    static func prerm(client: Bool) -> String {
        """
        #!/bin/sh
        set -e
        if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
          systemctl disable --now \(client ? "quarry-client.service" : "quarry-server.service quarry-client.service") >/dev/null 2>&1 || true
        fi
        exit 0

        """
    }

    static let postrm = """
        #!/bin/sh
        set -e
        if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
        exit 0

        """

    /// Runs a program (with optional standard input) and returns its standard output.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], input: Data? = nil) throws -> String {
        String(decoding: try output(program, arguments, input: input), as: UTF8.self)
    }

    /// Runs a program (with optional standard input) and returns its standard output's bytes.
    static func output(_ program: String, _ arguments: [String], input: Data? = nil) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        let writer = Thread {
            if let input { stdin.fileHandleForWriting.write(input) }
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let errors = ResultBox<Data>()
        let reader = Thread { errors.set(.success(err.fileHandleForReading.readDataToEndOfFile())) }
        reader.start()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = (try? errors.value?.get()).map { String(decoding: $0, as: UTF8.self) } ?? ""
            throw PackageError(message: "\(program) \(arguments.joined(separator: " ")) failed: \(message)")
        }
        return data
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// `quarry package deb`: the Debian package of this quarry (or a per-fleet agent package).
struct PackageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package", abstract: "Build installable packages of quarry.", subcommands: [DebCommand.self])
}

struct DebCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deb", abstract: "Build a .deb: quarry, its systemd units, manual and completions.",
        discussion: "Example: quarry package deb --output-dir dist   (then: apt install ./dist/quarry_VERSION_amd64.deb)")
    @Option(help: "The quarry executable to package (default: this one).") var binary: String = "/proc/self/exe"
    @Option(help: "Folder for the .deb.") var outputDir: String = "."
    @Option(help: "xz, gzip or none.") var compression: String = "xz"
    @Option(help: "A client.yaml: build the per-fleet agent package quarry-client-FLEET instead.") var clientConfig: String?
    @Option(help: "The fleet's name in the agent package's name.") var fleet: String?

    func run() throws {
        guard ["xz", "gzip", "none"].contains(compression) else { throw ValidationError("--compression: xz, gzip or none") }
        let config = try clientConfig.map { try String(contentsOfFile: $0, encoding: .utf8) }
        let package = DebianPackage(binary: binary, outputDirectory: outputDir, compression: compression, clientConfig: config, fleet: fleet)
        print(try package.build())
    }
}
