import CMagic
import Foundation
import Synchronization
import VQL

/// A libmagic handle. Handles are not thread-safe, so each is used by one thread at a time:
/// callers borrow one from the pool and give it back.
final class MagicHandle: @unchecked Sendable {
    let cookie: magic_t
    init?(flags: Int32) {
        guard let cookie = magic_open(flags) else { return nil }
        guard magic_load(cookie, nil) == 0 else {
            magic_close(cookie)
            return nil
        }
        self.cookie = cookie
    }
    deinit { magic_close(cookie) }
}

/// Pools of libmagic handles (descriptions and MIME types), at most one user per handle.
enum MagicPool {
    private static let pools = Mutex<[Int32: [MagicHandle]]>([:])

    static func with<R>(flags: Int32, _ body: (MagicHandle) -> R) -> R? {
        let handle = pools.withLock { $0[flags]?.popLast() } ?? MagicHandle(flags: flags)
        guard let handle else { return nil }
        defer { pools.withLock { $0[flags, default: []].append(handle) } }
        return body(handle)
    }
}

/// magic(): the file type of a file or of data, from libmagic's database (Debian's libmagic-mgc).
public enum MagicFunctions {
    public static let magic = FunctionDeclaration(
        name: "magic", summary: "Identifies a file's type with libmagic (description, or MIME type with type='mime').",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The file (a string, OSPath or pathspec; the data with accessor='data')."),
            ArgumentSpec("accessor", .string, "How to reach the file: file (default), data, zip, …"),
            ArgumentSpec("type", .string, "'mime' for the MIME type, 'extension' for likely extensions."),
        ],
        returns: .string, examples: ["SELECT magic(path='#!/bin/sh\\necho hi\\n', accessor='data') AS Type FROM scope()"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("path", for: accessor) else { return .null }
        var flags = MAGIC_NONE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS
        switch ctx.string("type")?.lowercased() {
        case "mime": flags |= MAGIC_MIME_TYPE
        case "extension": flags |= MAGIC_EXTENSION
        default: break
        }
        let local = accessor.localPath(path, in: ctx.accessorScope)
        var head: [UInt8] = []
        if local == nil {
            // Other accessors: identify the first bytes (libmagic looks at most this far).
            guard let file = ctx.open(path, with: accessor) else { return .null }
            defer { file.close() }
            head = (try? file.read(at: 0, count: 1 << 20)) ?? []
        }
        let result: String?? = MagicPool.with(flags: flags) { handle in
            guard let local else {
                return head.withUnsafeBytes { magic_buffer(handle.cookie, $0.baseAddress, $0.count) }.map { String(cString: $0) }
            }
            // libmagic describes FIFOs and devices from stat without opening them (no MAGIC_DEVICES).
            let cPath = local.map { CChar(bitPattern: $0) } + [0]
            return magic_file(handle.cookie, cPath).map { String(cString: $0) }
        }
        guard let text = result ?? nil else {
            ctx.context.logOnce(.warning, "magic: \(PathValues.display(path)): cannot identify")
            return .null
        }
        return .string(text)
    }
}
