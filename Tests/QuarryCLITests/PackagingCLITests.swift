import Foundation
import Testing

/// `quarry package deb` and `quarry config client --package`: real .deb files checked with
/// dpkg-deb, unpacked into a scratch root and run there with the Swift toolchain hidden, their
/// systemd units verified by systemd-analyze, their manual page by groff; and the services'
/// systemd notifications (READY, WATCHDOG) received on a real notification socket.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.binary), "run `swift build` first"))
struct PackagingCLITests {
    static func run(_ program: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CLI.Result {
        try CLI.run(arguments, executable: program, environment: environment)
    }

    /// The folder of the Swift runtime this test's quarry links (hidden to prove a package brings its own).
    static func swiftRuntimeFolder() throws -> String {
        let ldd = try Self.run("/usr/bin/ldd", [CLI.binary]).stdout
        let core = try #require(ldd.split(separator: "\n").first { $0.contains("libswiftCore.so") }?.split(separator: " ").first { $0.hasPrefix("/") })
        return (String(core) as NSString).deletingLastPathComponent
    }

    /// Installs `deb` with the real dpkg into a copy-on-write view of this machine (an overlay
    /// over / in a private mount namespace, entered with chroot), then runs `script` there with
    /// the Swift runtime folder hidden. Nothing reaches the host: the overlay's upper layer is a
    /// tmpfs that disappears with the namespace. /run is empty, so no systemd is seen.
    static func installInScratchRoot(_ deb: String, in dir: String, then script: String) throws -> CLI.Result {
        let setup = """
            set -e
            S="$1"; DEB="$2"; RUNTIME="$3"
            mkdir -p "$S/layers" "$S/merged"
            mount -t tmpfs tmpfs "$S/layers"
            mkdir -p "$S/layers/upper" "$S/layers/work"
            mount -t overlay overlay -o "lowerdir=/,upperdir=$S/layers/upper,workdir=$S/layers/work" "$S/merged"
            mount --rbind /proc "$S/merged/proc"
            mount --rbind /dev "$S/merged/dev"
            mount -t tmpfs tmpfs "$S/merged/run"
            mount -t tmpfs tmpfs "$S/merged/tmp"
            cp "$DEB" "$S/merged/tmp/package.deb"
            chroot "$S/merged" /bin/sh -c 'set -e; dpkg -i /tmp/package.deb >/dev/null; mount -t tmpfs tmpfs "$1"; shift; eval "$1"' sh "$RUNTIME" "$4"
            """
        return try Self.run("/usr/bin/unshare", ["-m", "/bin/sh", "-c", setup, "sh", dir + "/scratch", deb, try swiftRuntimeFolder(), script])
    }

    @Test(.enabled(if: getuid() == 0, "mount namespaces need root"))
    func debianPackageInstallsAndRunsWithoutTheSwiftToolchain() throws {
        let dir = try CollectorCLITests.folder("deb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let built = try CLI.run(["package", "deb", "--binary", CLI.binary, "--output-dir", dir, "--compression", "none"])
        #expect(built.status == 0, "\(built.stderr)")
        let deb = built.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(deb.hasSuffix(".deb") && FileManager.default.fileExists(atPath: deb))

        let info = try Self.run("/usr/bin/dpkg-deb", ["--info", deb]).stdout
        #expect(info.contains("Package: quarry"))
        let depends = info.split(separator: "\n").first { $0.contains("Depends:") }.map(String.init) ?? ""
        for library in ["libyara9", "libmagic1", "libsqlite3-0", "libpcre2-8-0", "libmagic-mgc"] {
            #expect(depends.contains(library), "Depends lacks \(library): \(depends)")
        }
        #expect(!depends.contains("swift"), "the Swift runtime is bundled, not a dependency")
        let contents = try Self.run("/usr/bin/dpkg-deb", ["--contents", deb]).stdout
        for path in [
            "./usr/bin/quarry -> ../lib/quarry/quarry", "./usr/lib/quarry/libswiftCore.so", "./lib/systemd/system/quarry-server.service",
            "./lib/systemd/system/quarry-client.service", "./usr/share/man/man1/quarry.1.gz", "./usr/share/bash-completion/completions/quarry",
            "./usr/share/zsh/vendor-completions/_quarry", "./usr/share/fish/vendor_completions.d/quarry.fish",
        ] {
            #expect(contents.contains(path), "missing \(path)")
        }

        // Unpacked into a scratch root, it runs where the Swift toolchain is hidden.
        let root = dir + "/root"
        #expect(try Self.run("/usr/bin/dpkg-deb", ["-x", deb, root]).status == 0)
        let runtime = try Self.swiftRuntimeFolder()
        let version = try Self.run(
            "/usr/bin/unshare", ["-m", "/bin/sh", "-c", "mount -t tmpfs none \"$1\" || exit 90; \"$2\" --version", "sh", runtime, root + "/usr/bin/quarry"])
        #expect(version.status == 0, "\(version.stderr)")
        #expect(try version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == CLI.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines))

        // The units verify against the host's own units inside the scratch root; a broken copy does not.
        #expect(try Self.run("/bin/cp", ["-an", "/lib/systemd/system/.", root + "/lib/systemd/system/"]).status == 0)
        let units = ["/lib/systemd/system/quarry-server.service", "/lib/systemd/system/quarry-client.service"]
        let verified = try Self.run("/usr/bin/systemd-analyze", ["verify", "--man=no", "--root=\(root)"] + units)
        #expect(verified.status == 0 && verified.stderr.isEmpty && verified.stdout.isEmpty, "\(verified.stdout)\(verified.stderr)")
        let server = root + "/lib/systemd/system/quarry-server.service"
        try (String(contentsOfFile: server, encoding: .utf8).replacingOccurrences(of: "ProtectSystem=strict", with: "ProtectSystm=strict"))
            .write(toFile: server, atomically: true, encoding: .utf8)
        let broken = try Self.run("/usr/bin/systemd-analyze", ["verify", "--man=no", "--root=\(root)", units[0]])
        #expect(broken.stderr.contains("ProtectSystm"), "systemd-analyze must notice a broken unit")

        // The manual page is clean roff and covers the commands.
        let manual = try Self.run("/bin/sh", ["-c", "zcat \"$1\" | groff -man -ww -z -Tutf8", "sh", root + "/usr/share/man/man1/quarry.1.gz"])
        #expect(manual.status == 0 && manual.stderr.isEmpty, "\(manual.stderr)")
        let text = try Self.run("/bin/sh", ["-c", "zcat \"$1\"", "sh", root + "/usr/share/man/man1/quarry.1.gz"]).stdout
        #expect(text.contains("quarry collector build") && text.contains("quarry respond kill"))
        #expect(try Self.run("/bin/bash", ["-n", root + "/usr/share/bash-completion/completions/quarry"]).status == 0)

        // Installed by dpkg itself (maintainer scripts and all) into a scratch root, then purged.
        let installed = try Self.installInScratchRoot(deb, in: dir, then: """
            dpkg -s quarry | grep '^Status:'
            quarry --version
            getent passwd quarry | cut -d: -f1,6,7
            test -f /lib/systemd/system/quarry-server.service && echo units
            test -s /usr/share/man/man1/quarry.1.gz && echo manual
            dpkg --purge quarry >/dev/null
            test ! -e /usr/bin/quarry && test ! -e /usr/lib/quarry && echo purged
            """)
        #expect(installed.status == 0, "\(installed.stdout)\(installed.stderr)")
        let lines = installed.stdout.split(separator: "\n").map(String.init)
        let ownVersion = try CLI.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lines == ["Status: install ok installed", ownVersion, "quarry:/var/lib/quarry:/usr/sbin/nologin", "units",
                          "manual", "purged"], "\(installed.stdout)\(installed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/usr/lib/quarry/quarry"), "the host is untouched")
    }

    @Test func agentPackageCarriesTheFleetConfigPrivately() throws {
        let dir = try CollectorCLITests.folder("client-deb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CLI.run(["config", "generate", "--server-url", "https://127.0.0.1:8999", "--dir", dir + "/fleet"]).status == 0)
        let bad = try CLI.run(["config", "client", "--server-config", dir + "/fleet/server.yaml", "--package", dir, "--fleet", "Bad Name"])
        #expect(bad.status != 0 && bad.stderr.contains("lower-case"))
        let built = try CLI.run(["config", "client", "--server-config", dir + "/fleet/server.yaml", "--package", dir, "--fleet", "acme-prod", "--compression", "none"])
        #expect(built.status == 0, "\(built.stderr)")
        let deb = built.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((deb as NSString).lastPathComponent.hasPrefix("quarry-client-acme-prod_"))
        let contents = try Self.run("/usr/bin/dpkg-deb", ["--contents", deb]).stdout
        let line = contents.split(separator: "\n").first { $0.hasSuffix("./etc/quarry/client.yaml") }.map(String.init) ?? ""
        #expect(line.hasPrefix("-rw------- root/root"), "client.yaml must be 0600 root: \(line)")
        let control = dir + "/control"
        #expect(try Self.run("/usr/bin/dpkg-deb", ["-e", deb, control]).status == 0)
        #expect(try String(contentsOfFile: control + "/conffiles", encoding: .utf8) == "/etc/quarry/client.yaml\n")
        let postinst = try String(contentsOfFile: control + "/postinst", encoding: .utf8)
        #expect(postinst.contains("systemctl enable --now quarry-client.service"))
        for script in ["postinst", "prerm", "postrm"] { #expect(try Self.run("/bin/sh", ["-n", control + "/" + script]).status == 0) }
        // The packaged config is the fleet's: it names the server and pins its CA.
        #expect(try Self.run("/usr/bin/dpkg-deb", ["-x", deb, dir + "/root"]).status == 0)
        let yaml = try String(contentsOfFile: dir + "/root/etc/quarry/client.yaml", encoding: .utf8)
        #expect(yaml.contains("https://127.0.0.1:8999") && yaml.contains("BEGIN CERTIFICATE"))

        // `dpkg -i` of the agent package: the config lands 0600 root as a registered conffile;
        // a purge takes it away with the program.
        guard getuid() == 0 else { return }
        let installed = try Self.installInScratchRoot(deb, in: dir, then: """
            dpkg -s quarry-client-acme-prod | grep -E '^(Status|Provides):'
            dpkg-query -W -f='${Conffiles}\\n' quarry-client-acme-prod | awk 'NF {print $1}'
            stat -c '%a %U %G' /etc/quarry/client.yaml
            quarry --version >/dev/null && echo runs
            dpkg --purge quarry-client-acme-prod >/dev/null
            test ! -e /etc/quarry/client.yaml && test ! -e /usr/bin/quarry && echo purged
            """)
        #expect(installed.status == 0, "\(installed.stdout)\(installed.stderr)")
        #expect(installed.stdout.split(separator: "\n").map(String.init) == [
            "Status: install ok installed", "Provides: quarry", "/etc/quarry/client.yaml", "600 root root", "runs", "purged",
        ], "\(installed.stdout)\(installed.stderr)")
    }

    @Test func serverTellsSystemdItIsReadyAndFeedsTheWatchdog() throws {
        let dir = try CollectorCLITests.folder("notify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = Int.random(in: 10_000..<32_000)  // below the ephemeral range
        #expect(try CLI.run(["config", "generate", "--server-url", "https://127.0.0.1:\(port)", "--dir", dir]).status == 0)
        let socketPath = dir + "/notify.sock"
        let receiver = try NotifySocket(path: socketPath)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: CLI.binary)
        server.arguments = ["server", "--config", dir + "/server.yaml"]
        server.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "400000"]) { $1 }
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, messages.filter({ $0.contains("WATCHDOG=1") }).count < 3 {
            if let message = receiver.receive() { messages.append(message) }
        }
        let ready = messages.firstIndex { $0.contains("READY=1") }
        #expect(ready != nil, "no READY=1 in \(messages)")
        #expect(messages.filter { $0.contains("WATCHDOG=1") }.count >= 3, "watchdog pings: \(messages)")
        // Ready means serving: the port accepts connections by then.
        #expect(messages.first.map { $0.contains("READY=1") } ?? false, "READY=1 comes first: \(messages)")
    }
}

/// A Unix datagram socket standing in for systemd's notification socket.
final class NotifySocket {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// The next datagram, or nil after a second without one.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }
}
