import CResponse
import Foundation
import Testing
import VQL
@testable import QuarryResponse
#if canImport(Glibc)
import Glibc
#endif

/// Quarantine and restore of real files: bytes, owner, mode, times and xattrs round-trip.
@Suite(.serialized) struct QuarantineTests {
    /// A file with a distinctive owner, set-uid mode, a user xattr and old times.
    static func makeVictim(in folder: String) throws -> String {
        let path = folder + "/dropper.bin"
        var bytes = [UInt8](repeating: 0, count: 300_000)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(chown(path, 1234, 5678) == 0)
        #expect(chmod(path, 0o4751) == 0)
        let value = Array("evil-payload".utf8)
        #expect(value.withUnsafeBytes { setxattr(path, "user.quarry.test", $0.baseAddress, value.count, 0) } == 0)
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789), timespec(tv_sec: 1_500_000_000, tv_nsec: 987_654_321)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        return path
    }

    static func snapshot(_ path: String) throws -> (FileStat, String, [String: [UInt8]]) {
        // O_NOATIME: reading for the snapshot must not move the access time it checks.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | quarry_o_noatime)
        guard fd >= 0 else { throw ResponseError("cannot open \(path)") }
        defer { close(fd) }
        return (try FileStat.of(fd: fd), try FileDigest.sha256(fd: fd), ExtendedAttributes.read(fd: fd))
    }

    @Test func roundTripKeepsBytesOwnerModeTimesAndXattrs() throws {
        let folder = try Response.temporaryFolder(), root = try Response.temporaryFolder()
        defer { for f in [folder, root] { try? FileManager.default.removeItem(atPath: f) } }
        let path = try Self.makeVictim(in: folder)
        let (before, digest, xattrs) = try Self.snapshot(path)
        #expect(xattrs["user.quarry.test"] == Array("evil-payload".utf8))

        let (session, logger) = Response.session(stateRoot: root)
        let held = try #require(try Response.first(session, "SELECT quarantine(path='\(path)', reason='dropper') AS Q FROM scope()", "Q"))
        let id = try #require(Response.field(held, "Id")?.stringValue, "\(logger.messages)")
        #expect(id.wholeMatch(of: /Q\.[0-9a-f]{16}/) != nil)
        #expect(Response.field(held, "SHA256")?.stringValue == digest)
        #expect(Response.field(held, "Mode")?.stringValue == "4751")
        #expect(!FileManager.default.fileExists(atPath: path))

        // The vault: 0700 folders, 0600 content owned by this (root) user, never set-uid.
        var info = stat()
        #expect(stat(root + "/quarantine/" + id, &info) == 0 && info.st_mode & 0o7777 == 0o700)
        #expect(stat(root + "/quarantine/" + id + "/content", &info) == 0 && info.st_mode & 0o7777 == 0o600 && info.st_uid == getuid())
        #expect(stat(root + "/quarantine/" + id + "/manifest.json", &info) == 0 && info.st_mode & 0o7777 == 0o600)
        #expect(stat(root + "/quarantine", &info) == 0 && info.st_mode & 0o7777 == 0o700)

        let listed = try Response.rows(session, "SELECT Id, Path, SHA256, Xattrs FROM quarantine_list()")
        #expect(listed.count == 1)
        #expect(listed.first.flatMap { Response.field($0, "Path")?.stringValue } == path)

        let restored = try Response.first(session, "SELECT quarantine_restore(id='\(id)') AS R FROM scope()", "R")
        #expect(restored.flatMap { Response.field($0, "Path")?.stringValue } == path, "\(logger.messages)")
        let (after, digestAfter, xattrsAfter) = try Self.snapshot(path)
        #expect(digestAfter == digest)
        #expect(after.uid == 1234 && after.gid == 5678)
        #expect(after.mode == 0o4751)
        #expect(after.mtime == before.mtime && after.mtimeNanos == before.mtimeNanos)
        #expect(after.atime == before.atime && after.atimeNanos == before.atimeNanos)
        #expect(after.size == before.size)
        #expect(xattrsAfter == xattrs)
        #expect(!FileManager.default.fileExists(atPath: root + "/quarantine/" + id))
        #expect(try Response.rows(session, "SELECT * FROM quarantine_list()").isEmpty)
        let journal = try String(contentsOfFile: root + "/audit.jsonl", encoding: .utf8)
        #expect(journal.contains("\"action\":\"quarantine\"") && journal.contains("\"action\":\"quarantine_restore\"") && journal.contains(id))
    }

    @Test func restoreRefusesToOverwriteUnlessAsked() throws {
        let folder = try Response.temporaryFolder(), root = try Response.temporaryFolder()
        defer { for f in [folder, root] { try? FileManager.default.removeItem(atPath: f) } }
        let path = try Self.makeVictim(in: folder)
        let (_, digest, _) = try Self.snapshot(path)
        let (session, logger) = Response.session(stateRoot: root)
        let id = try #require(try Response.first(session, "SELECT quarantine(path='\(path)').Id AS Id FROM scope()", "Id")?.stringValue)
        try Data("a new file".utf8).write(to: URL(fileURLWithPath: path))

        let refused = try Response.first(session, "SELECT quarantine_restore(id='\(id)') AS R FROM scope()", "R")
        #expect(refused?.isNull == true)
        #expect(logger.messages.contains { $0.contains("not overwriting") })
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "a new file")
        #expect(FileManager.default.fileExists(atPath: root + "/quarantine/" + id + "/content"))

        _ = try Response.first(session, "SELECT quarantine_restore(id='\(id)', overwrite=TRUE) AS R FROM scope()", "R")
        #expect(try Self.snapshot(path).1 == digest)
    }

    @Test func refusesWhatItMustNotMove() throws {
        let folder = try Response.temporaryFolder(), root = try Response.temporaryFolder()
        defer { for f in [folder, root] { try? FileManager.default.removeItem(atPath: f) } }
        #expect(symlink("/etc/hostname", folder + "/link") == 0)
        let (session, logger) = Response.session(stateRoot: root)
        for (path, why) in [(folder + "/link", "not a regular file"), (folder, "not a regular file"), ("relative/path", "absolute path"),
                            (folder + "/missing", "no such file"), (root + "/audit.jsonl", "inside the response state folder")] {
            let value = try Response.first(session, "SELECT quarantine(path='\(path)') AS Q FROM scope()", "Q")
            #expect(value?.isNull == true)
            #expect(logger.messages.contains { $0.hasPrefix("ERROR") && $0.contains(why) }, "\(why): \(logger.messages)")
        }
        #expect(FileManager.default.fileExists(atPath: "/etc/hostname"))
        let bad = try Response.first(session, "SELECT quarantine_restore(id='../../etc') AS R FROM scope()", "R")
        #expect(bad?.isNull == true)
        #expect(logger.messages.contains { $0.contains("is not a quarantine id") })
    }
}
