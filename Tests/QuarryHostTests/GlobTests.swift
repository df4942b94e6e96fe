import Foundation
import Testing
import VQL
@testable import QuarryHost
#if canImport(Glibc)
import Glibc
#endif

@Suite struct GlobTests {
    /// A small tree: dirs a/b/c, files at several depths, a dotfile.
    static func makeTree() -> String {
        let dir = Host.temporaryDirectory("glob")
        Host.mkdir(dir + "/a/b/c")
        Host.mkdir(dir + "/x")
        for file in ["top.txt", "top.log", ".hidden", "a/one.txt", "a/b/two.txt", "a/b/c/three.txt", "a/b/c/four.log", "x/y.txt"] {
            Host.write(dir + "/" + file, file)
        }
        return dir
    }

    static func paths(_ query: String, root: String? = nil) throws -> Set<String> {
        Set(try Host.rows(query, root: root).compactMap { Host.string($0, "FullPath") })
    }

    @Test func recursiveGlobMatchesFind() throws {
        let dir = Self.makeTree()
        defer { Host.cleanup(dir) }
        let found = Set(try Host.shell("find \(dir) -mindepth 1").split(separator: "\n").map(String.init))
        let globbed = try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/**")))")
        #expect(globbed == found)
        #expect(globbed.count == 12)
    }

    @Test func wildcardsBracesAndSets() throws {
        let dir = Self.makeTree()
        defer { Host.cleanup(dir) }
        #expect(try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/*.txt")))") == [dir + "/top.txt"])
        #expect(try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/top.{txt,log}")))") == [dir + "/top.txt", dir + "/top.log"])
        #expect(try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/to?.[lt]*")))") == [dir + "/top.txt", dir + "/top.log"])
        #expect(try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/top.[!t]*")))") == [dir + "/top.log"])
        #expect(try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/**/*.log")))") == [dir + "/top.log", dir + "/a/b/c/four.log"])
        // Relative globs with root=, and a list of globs.
        #expect(try Self.paths("SELECT FullPath FROM glob(globs=['a/*.txt', 'x/*'], root=\(Host.quoted(dir)))") == [dir + "/a/one.txt", dir + "/x/y.txt"])
    }

    @Test func depthLimitedRecursion() throws {
        let dir = Self.makeTree()
        defer { Host.cleanup(dir) }
        let one = try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/a/**1")))")
        #expect(one == [dir + "/a/one.txt", dir + "/a/b"])
        let two = try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/a/**2")))")
        #expect(two == [dir + "/a/one.txt", dir + "/a/b", dir + "/a/b/two.txt", dir + "/a/b/c"])
    }

    @Test func recursionCallbackPrunes() throws {
        let dir = Self.makeTree()
        defer { Host.cleanup(dir) }
        let found = try Self.paths("SELECT FullPath FROM glob(globs=\(Host.quoted(dir + "/**")), recursion_callback='x => NOT x.Name = \"b\"')")
        #expect(found.contains(dir + "/a/b"))
        #expect(!found.contains(dir + "/a/b/two.txt"))
        #expect(found.contains(dir + "/x/y.txt"))
    }

    @Test func rowsAreLazyAndWellShaped() throws {
        let dir = Self.makeTree()
        defer { Host.cleanup(dir) }
        // The WHERE clause deletes the file before the projection reads Size: the row made no
        // stat of its own, so Size is now unknown while FullPath is still there.
        let lazy = try Host.rows("""
            SELECT FullPath, Size FROM glob(globs=\(Host.quoted(dir + "/top.tx?")))
            WHERE { SELECT * FROM execve(argv=['rm', FullPath]) }
            """)
        #expect(lazy.count == 1)
        #expect(lazy.first.flatMap { Host.string($0, "FullPath") } == dir + "/top.txt")
        #expect(lazy.first.flatMap { Host.field($0, "Size") }?.isNull == true)
        #expect(!FileManager.default.fileExists(atPath: dir + "/top.txt"))

        let rows = try Host.rows("SELECT * FROM glob(globs=\(Host.quoted(dir + "/a*")))")
        #expect(rows.count == 1)
        for column in GlobPlugin.plugin.columns {
            #expect(Host.field(rows[0], column.name) != nil, "missing column \(column.name)")
        }
        #expect(Host.string(rows[0], "Mode") == "drwxr-xr-x")
        #expect(Host.field(rows[0], "IsDir")?.isTruthy == true)
    }

    @Test func osPathIsIndexableAndActsAsString() throws {
        let dir = Self.makeTree()
        defer { Host.cleanup(dir) }
        let components = dir.split(separator: "/").map(String.init)
        let rows = try Host.rows("""
            SELECT OSPath[0] AS First, OSPath.Basename AS Base, OSPath.Dirname AS Dir, OSPath =~ 'top' AS Matches,
                   format(format='%v', args=OSPath) AS Formatted, Mode.String AS ModeString
            FROM glob(globs=\(Host.quoted(dir + "/top.txt")))
            """)
        #expect(rows.count == 1)
        #expect(Host.string(rows[0], "First") == components.first)
        #expect(Host.string(rows[0], "Base") == "top.txt")
        #expect(Host.string(rows[0], "Dir") == dir)
        #expect(Host.field(rows[0], "Matches")?.isTruthy == true)
        #expect(Host.string(rows[0], "Formatted") == dir + "/top.txt")
        #expect(Host.string(rows[0], "ModeString") == "-rw-r--r--")
    }

    @Test func rootRemapping() throws {
        let dir = Self.makeTree()
        defer { Host.cleanup(dir) }
        let found = try Self.paths("SELECT FullPath FROM glob(globs='/a/b/*.txt')", root: dir)
        #expect(found == ["/a/b/two.txt"])
        let sizes = try Host.rows("SELECT Size FROM glob(globs='/x/y.txt')", root: dir)
        #expect(sizes.first.flatMap { Host.int($0, "Size") } == Int64("x/y.txt".utf8.count))
    }

    @Test func absoluteLinksStayInsideTheRemappedRoot() throws {
        let image = Host.temporaryDirectory("image")
        defer { Host.cleanup(image) }
        let marker = "quarry-image-\(UUID().uuidString)"
        Host.mkdir(image + "/\(marker)/lib")
        Host.write(image + "/\(marker)/lib/libx.so", "inside")
        Host.write(image + "/\(marker)/target.txt", "inside-target")
        // Absolute links as an image has them: they point at the image's own /MARKER/….
        symlink("/\(marker)/lib", image + "/lib")
        symlink("/\(marker)/target.txt", image + "/link.txt")
        let files = try Self.paths("SELECT FullPath FROM glob(globs='/lib/*')", root: image)
        #expect(files == ["/lib/libx.so"])
        let content = try Host.rows("SELECT read_file(filename='/link.txt') AS C, hash(path='/lib/libx.so').MD5 AS H FROM scope()", root: image)
        #expect(content.first.flatMap { Host.string($0, "C") } == "inside-target")
        #expect(content.first.flatMap { Host.string($0, "H") } == (try Host.shell("printf inside | md5sum").split(separator: " ").first.map(String.init)))
        let link = try Host.rows("SELECT IsLink, Data.Link AS Target FROM stat(filename='/link.txt')", root: image)
        #expect(link.first.flatMap { Host.field($0, "IsLink") }?.isTruthy == true)
        #expect(link.first.flatMap { Host.string($0, "Target") } == "/\(marker)/target.txt")
        let recursive = try Self.paths("SELECT FullPath FROM glob(globs='/**')", root: image)
        #expect(recursive.contains("/lib/libx.so"))
        #expect(recursive.contains("/\(marker)/lib/libx.so"))
    }

    @Test func oneFilesystemStopsAtMountPoints() throws {
        let crossing = try Host.rows("SELECT FullPath FROM glob(globs='/proc/self/stat*')")
        #expect(!crossing.isEmpty)
        let staying = try Host.rows("SELECT FullPath FROM glob(globs='/proc/self/stat*', one_filesystem=TRUE)")
        #expect(staying.isEmpty)
    }

    @Test func cancellationStopsTheWalk() throws {
        let (session, _) = Host.session()
        guard case .rows(let cursor, _)? = try Parser.parse("SELECT FullPath FROM glob(globs='/usr/**')").first.map({ try session.prepare($0) }) else {
            Issue.record("no cursor")
            return
        }
        defer { cursor.close() }
        _ = try cursor.next()
        session.context.cancellation.cancel()
        var rows = 0
        #expect(throws: QueryCancelled.self) {
            while try cursor.next() != nil { rows += 1 }
        }
        #expect(rows < 100_000)
    }

    @Test func procFdLinksShowSockets() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        let rows = try Host.rows("SELECT Data.Link AS Link FROM glob(globs='/proc/self/fd/\(fd)')")
        #expect(rows.count == 1)
        #expect(rows.first.flatMap { Host.string($0, "Link") }?.hasPrefix("socket:[") == true)
    }
}
