import Foundation
import Testing
import VQL
@testable import QuarryHost
#if canImport(Glibc)
import Glibc
#endif

/// Awkward files: none may crash or hang a query; problems are logged once and the query goes on.
@Suite struct RobustnessTests {
    @Test func filesVanishingMidWalk() throws {
        let dir = Host.temporaryDirectory("vanish")
        defer { Host.cleanup(dir) }
        for d in 0..<5 {
            Host.mkdir("\(dir)/d\(d)/sub")
            for f in 0..<5 { Host.write("\(dir)/d\(d)/sub/f\(f)", "x") }
        }
        let (session, logger) = Host.session()
        // A recursion callback keeps the walk on the pulling thread, so the deletion lands mid-walk.
        guard case .rows(let cursor, _)? = try Parser.parse("SELECT FullPath, Size FROM glob(globs=\(Host.quoted(dir + "/**")), recursion_callback='x => TRUE')").first.map({ try session.prepare($0) }) else {
            Issue.record("no cursor")
            return
        }
        defer { cursor.close() }
        var seen = 0
        while let _ = try cursor.next() {
            seen += 1
            if seen == 2 { Host.cleanup(dir) }
        }
        #expect(seen >= 2)
        #expect(seen < 35)
        _ = logger.messages
        // The background walker (no callback) copes the same way with a tree deleted under it.
        for d in 0..<5 {
            Host.mkdir("\(dir)/d\(d)/sub")
            for f in 0..<5 { Host.write("\(dir)/d\(d)/sub/f\(f)", "x") }
        }
        guard case .rows(let background, _)? = try Parser.parse("SELECT FullPath, Size FROM glob(globs=\(Host.quoted(dir + "/**")))").first.map({ try session.prepare($0) }) else {
            Issue.record("no cursor")
            return
        }
        defer { background.close() }
        Host.cleanup(dir)
        var count = 0
        while let _ = try background.next() { count += 1 }
        #expect(count <= 35)
    }

    @Test func unreadableDirectoriesAreLoggedAndSkipped() throws {
        let dir = Host.temporaryDirectory("locked")
        defer {
            chmod(dir + "/locked", 0o755)
            Host.cleanup(dir)
        }
        Host.mkdir(dir + "/locked")
        Host.write(dir + "/locked/secret", "x")
        Host.write(dir + "/open.txt", "x")
        chmod(dir + "/locked", 0)
        let (session, logger) = Host.session()
        let rows = try session.run("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/**")))").last.flatMap { $0 } ?? []
        let paths = Set(rows.compactMap { Host.string($0, "FullPath") })
        #expect(paths.contains(dir + "/open.txt"))
        #expect(paths.contains(dir + "/locked"))
        if geteuid() != 0 {
            #expect(!paths.contains(dir + "/locked/secret"))
            #expect(logger.messages.contains { $0.contains("locked") && $0.contains("denied") })
        }
        // Root can open everything above; /proc/1/map_files refuses even root (or is absent):
        // the same error path must log and go on.
        let (procSession, procLogger) = Host.session()
        let procRows = try procSession.run("SELECT FullPath FROM glob(globs='/proc/1/map_files/*')").last.flatMap { $0 } ?? []
        if procRows.isEmpty && FileManager.default.fileExists(atPath: "/proc/1/map_files") && geteuid() == 0 {
            #expect(procLogger.messages.contains { $0.contains("/proc/1/map_files") })
        }
    }

    @Test func symlinkLoopsTerminate() throws {
        let dir = Host.temporaryDirectory("loop")
        defer { Host.cleanup(dir) }
        Host.mkdir(dir + "/a/b")
        Host.write(dir + "/a/b/file", "x")
        symlink(dir + "/a", dir + "/a/b/up")
        symlink("self", dir + "/self")
        let (session, logger) = Host.session()
        let rows = try session.run("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/**")))").last.flatMap { $0 } ?? []
        let paths = Set(rows.compactMap { Host.string($0, "FullPath") })
        #expect(paths.contains(dir + "/a/b/file"))
        #expect(paths.contains(dir + "/a/b/up"))
        #expect(paths.contains(dir + "/self"))
        #expect(rows.count < 20)
        #expect(logger.messages.contains { $0.contains("symlink loop") })
        // nosymlink: links are listed but never followed.
        let plain = try Host.rows("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/**")), nosymlink=TRUE)")
        #expect(plain.count == 5)
    }

    @Test func fifosAndSocketsAreNeverOpened() throws {
        let dir = Host.temporaryDirectory("fifo")
        defer { Host.cleanup(dir) }
        #expect(mkfifo(dir + "/pipe", 0o644) == 0)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let socketPath = dir + "/sock"
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in socketPath.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        let (session, logger) = Host.session()
        let rows = try session.run("""
            SELECT Name, Mode.String AS Mode, hash(path=FullPath) AS Hash, read_file(filename=FullPath) AS Content
            FROM glob(globs=\(Host.quoted(dir + "/*")))
            """).last.flatMap { $0 } ?? []
        #expect(rows.count == 2)
        for row in rows {
            #expect(Host.field(row, "Hash")?.isNull == true)
            #expect(Host.field(row, "Content")?.isNull == true)
        }
        #expect(Set(rows.compactMap { Host.string($0, "Mode") }) == ["prw-r--r--", "Srwxr-xr-x"])
        #expect(logger.messages.contains { $0.contains("not a regular file") })
        let lines = try Host.rows("SELECT * FROM parse_lines(filename=\(Host.quoted(dir + "/pipe")))")
        #expect(lines.isEmpty)
        let chunks = try Host.rows("SELECT * FROM read_file(filenames=\(Host.quoted(dir + "/pipe")))")
        #expect(chunks.isEmpty)
    }

    @Test func characterDevicesAreReadOnlyBounded() throws {
        let (session, logger) = Host.session()
        let rows = try session.run("""
            SELECT hash(path='/dev/zero') AS Hash, read_file(filename='/dev/zero', length=16) AS Zeros FROM scope()
            """).last.flatMap { $0 } ?? []
        #expect(rows.first.flatMap { Host.field($0, "Hash") }?.isNull == true)
        #expect(rows.first.flatMap { Host.field($0, "Zeros") }?.byteValue == [UInt8](repeating: 0, count: 16))
        #expect(logger.messages.contains { $0.contains("/dev/zero") })
        let chunks = try Host.rows("SELECT len(list=Data) AS N FROM read_file(filenames='/dev/zero', max_length=3000, chunk=1000)")
        #expect(chunks.compactMap { Host.int($0, "N") } == [1000, 1000, 1000])
        let unbounded = try Host.rows("SELECT count() AS N FROM read_file(filenames='/dev/zero', chunk=1048576) GROUP BY 1")
        #expect(unbounded.first.flatMap { Host.int($0, "N") } == 10)
    }

    @Test func sparseFiles() throws {
        let dir = Host.temporaryDirectory("sparse")
        defer { Host.cleanup(dir) }
        let path = dir + "/sparse"
        let fd = open(path, O_CREAT | O_WRONLY, 0o644)
        #expect(ftruncate(fd, 8 << 20) == 0)
        _ = pwrite(fd, "end", 3, (8 << 20) - 3)
        close(fd)
        let expected = try Host.shell("sha256sum \(path)").split(separator: " ").first.map(String.init)
        let rows = try Host.rows("SELECT Size, hash(path=FullPath, hashselect='SHA256').SHA256 AS Digest FROM stat(filename=\(Host.quoted(path)))")
        #expect(rows.first.flatMap { Host.int($0, "Size") } == 8 << 20)
        #expect(rows.first.flatMap { Host.string($0, "Digest") } == expected)
    }

    @Test func nonUTF8NamesKeepTheirBytes() throws {
        let dir = Host.temporaryDirectory("bytes")
        defer { Host.cleanup(dir) }
        let name: [UInt8] = [0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]
        let path = Array(dir.utf8) + [0x2f] + name
        let fd = (path + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) }
        }
        #expect(fd >= 0)
        _ = write(fd, "hi", 2)
        close(fd)
        let rows = try Host.rows("SELECT FullPath, Name, Size, hash(path=OSPath).MD5 AS MD5 FROM glob(globs=\(Host.quoted(dir + "/bad*")))")
        #expect(rows.count == 1)
        guard let row = rows.first else { return }
        if case .bytes(let bytes)? = Host.field(row, "FullPath") {
            #expect(bytes == path)
        } else {
            Issue.record("FullPath should keep raw bytes")
        }
        #expect(Host.field(row, "Name")?.byteValue == name)
        #expect(Host.int(row, "Size") == 2)
        #expect(Host.string(row, "MD5") == "49f68a5c8493ec2c0bf489821c21fc3b")
        // A raw-byte path in VQL (\xff escapes) reaches the same file.
        let direct = try Host.rows("SELECT Size FROM stat(filename='\(dir)/bad\\xff\\xfe.txt')")
        #expect(direct.first.flatMap { Host.int($0, "Size") } == 2)
    }

    @Test func timestampsBeyondTheNanosecondRange() throws {
        let dir = Host.temporaryDirectory("times")
        defer { Host.cleanup(dir) }
        Host.write(dir + "/far", "x")
        // 2400-01-01: seconds * 1e9 overflows 64 bits (this used to trap).
        var times = [timespec(tv_sec: 13_569_465_600, tv_nsec: 0), timespec(tv_sec: 13_569_465_600, tv_nsec: 0)]
        let set = utimensat(AT_FDCWD, dir + "/far", &times, 0)
        let rows = try Host.rows("SELECT Mtime, Atime FROM glob(globs=\(Host.quoted(dir + "/*")))")
        #expect(rows.count == 1)
        if set == 0, case .timestamp(let t)? = rows.first.flatMap({ Host.field($0, "Mtime") }) {
            #expect(t.nanoseconds == Int64.max - 1_000_000_000)
        }
        // And far in the past (1000-01-01), if the file system can store it: JSON output must not trap.
        var past = [timespec(tv_sec: -30_610_224_000, tv_nsec: 0), timespec(tv_sec: -30_610_224_000, tv_nsec: 0)]
        if utimensat(AT_FDCWD, dir + "/far", &past, 0) == 0 {
            let old = try Host.rows("SELECT Mtime FROM glob(globs=\(Host.quoted(dir + "/*")))")
            #expect(old.first.map { JSONWriter.string($0) }?.contains("Mtime") == true)
        }
    }

    @Test func pathsWithNewlines() throws {
        let dir = Host.temporaryDirectory("newline")
        defer { Host.cleanup(dir) }
        Host.write(dir + "/line\nbreak", "content")
        let rows = try Host.rows("SELECT FullPath, read_file(filename=FullPath) AS Data FROM glob(globs=\(Host.quoted(dir + "/*")))")
        #expect(rows.count == 1)
        #expect(rows.first.flatMap { Host.string($0, "FullPath") } == dir + "/line\nbreak")
        #expect(rows.first.flatMap { Host.string($0, "Data") } == "content")
    }
}
