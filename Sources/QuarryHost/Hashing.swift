import Crypto
import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `hash()`: MD5, SHA1 and SHA256 of a file in one streamed pass (1 MiB reads; the file is never
/// held in memory), through any accessor. On the file accessor only regular files are hashed, so
/// FIFOs and devices cannot hang a query. `tlsh_hash()` lives in Tlsh.swift.
public enum Hashing {
    public static var functions: [FunctionDeclaration] { [hash, Tlsh.function] }

    static let schema = Schema(["MD5", "SHA1", "SHA256"], caseInsensitiveFallback: true)
    static let bufferSize = 1 << 20

    public static let hash = FunctionDeclaration(
        name: "hash", summary: "Hashes a file: {MD5, SHA1, SHA256}; digests not selected are empty strings.",
        arguments: [
            ArgumentSpec("path", .any, required: true, "The file to hash (a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
            ArgumentSpec("hashselect", .stringList, "Which digests to compute: MD5, SHA1, SHA256 (default all)."),
            ArgumentSpec("max_size", .int, "Hash at most this many bytes."),
        ],
        returns: .dict,
        examples: [
            "SELECT hash(path='/etc/hostname', hashselect='SHA256').SHA256 AS Digest FROM scope()",
            "SELECT hash(path='hello', accessor='data').MD5 AS MD5 FROM scope()",
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("path", for: accessor) else { return .null }
        let selected = Set((ctx.strings("hashselect") ?? ["MD5", "SHA1", "SHA256"]).map { $0.uppercased() })
        let limit = ctx.int("max_size").map { max(0, $0) } ?? Int64.max
        let result: Result<[String], ReadError>
        if let file = accessor as? FileAccessor, file.isPlain, path.delegate == nil {
            let host = HostFS.resolve(FileAccessor.logical(path), root: HostFS.root(ctx.context))
            result = digest(host, md5: selected.contains("MD5"), sha1: selected.contains("SHA1"),
                            sha256: selected.contains("SHA256"), limit: limit, cancellation: ctx.context.cancellation,
                            throttle: ctx.context.throttle)
        } else {
            guard let file = ctx.open(path, with: accessor) else { return .null }
            defer { file.close() }
            var offset: Int64 = 0
            result = digest(md5: selected.contains("MD5"), sha1: selected.contains("SHA1"), sha256: selected.contains("SHA256"),
                            limit: limit, cancellation: ctx.context.cancellation, throttle: ctx.context.throttle) { buffer in
                let n = try file.read(into: buffer, at: offset)
                offset += Int64(n)
                return n
            }
        }
        switch result {
        case .success(let values): return .dict(Dict(schema: schema, values: values.map { .string($0) }))
        case .failure(let error):
            ctx.context.logOnce(.warning, "hash: \(PathValues.display(path)): \(error)")
            return .null
        }
    }

    /// Streams the file through the selected digests; returns [MD5, SHA1, SHA256] as hex ("" if not selected).
    static func digest(_ path: [UInt8], md5: Bool, sha1: Bool, sha256: Bool, limit: Int64,
                       cancellation: CancellationFlag, throttle: CPUThrottle? = nil) -> Result<[String], ReadError> {
        let fd: Int32
        switch HostFS.openForReading(path, allowDevices: false) {
        case .failure(let e): return .failure(e)
        case .success(let (descriptor, _)): fd = descriptor
        }
        defer { close(fd) }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        return digest(md5: md5, sha1: sha1, sha256: sha256, limit: limit, cancellation: cancellation, throttle: throttle) { buffer in
            while true {
                let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw ReadError.system(Errno(errno)) }
                return n
            }
        }
    }

    /// Buffers in flight between the reader and the MD5 lane.
    static let ringSize = 4

    /// Streams what `read` yields (it fills the buffer and returns the count; 0 ends) through the
    /// selected digests. When MD5 and a SHA are both wanted and the file is longer than one
    /// buffer, MD5 runs on a second thread fed through a ring of buffers, so reading, SHA1/SHA256
    /// and MD5 overlap (MD5, the slowest, never waits for a read); small files stay on one thread.
    static func digest(md5: Bool, sha1: Bool, sha256: Bool, limit: Int64, cancellation: CancellationFlag, throttle: CPUThrottle?,
                       read: (UnsafeMutableRawBufferPointer) throws -> Int) -> Result<[String], ReadError> {
        let state = Hashers(md5: md5, sha1: sha1, sha256: sha256)
        let ring = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize * ringSize, alignment: 64)
        defer { ring.deallocate() }
        let wantsLane = md5 && (sha1 || sha256) && ProcessInfo.processInfo.activeProcessorCount > 1
        var lane: MD5Lane?
        // Declared after the ring: runs first, so the lane is done with the ring before it goes.
        defer { lane?.finish() }
        var remaining = limit
        var slot = 0
        while remaining > 0 {
            if cancellation.isCancelled { return .failure(.system(Errno(ECANCELED))) }
            throttle?.pace()
            let want = Int(min(Int64(bufferSize), remaining))
            lane?.free.wait()
            let buffer = UnsafeMutableRawBufferPointer(rebasing: ring[slot * bufferSize..<slot * bufferSize + want])
            let n: Int
            do {
                n = try read(buffer)
            } catch let error as ReadError {
                lane?.free.signal()
                return .failure(error)
            } catch {
                lane?.free.signal()
                return .failure(.other("\(error)"))
            }
            if n <= 0 {
                lane?.free.signal()
                break
            }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            if lane == nil && wantsLane && n == bufferSize && remaining > Int64(n) {
                lane = MD5Lane(state)
            }
            if let lane {
                lane.submit(chunk)
            } else {
                state.updateMD5(chunk)
            }
            state.updateSHA(chunk)
            remaining -= Int64(n)
            slot = (slot + 1) % ringSize
        }
        lane?.finish()
        return .success([
            state.md5.map { hex($0.finalize()) } ?? "",
            state.sha1.map { hex($0.finalize()) } ?? "",
            state.sha256.map { hex($0.finalize()) } ?? "",
        ])
    }

    /// A helper thread that runs MD5 over the chunks submitted to it, in order; `free` counts the
    /// ring's buffers it no longer needs (the one being filled when it started is taken).
    final class MD5Lane: @unchecked Sendable {
        let free = DispatchSemaphore(value: ringSize - 1)
        private let filled = DispatchSemaphore(value: 0)
        private let exited = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var chunks: [UnsafeRawBufferPointer?] = []
        private var finished = false

        init(_ hashers: Hashers) {
            let thread = Thread { [self] in
                while true {
                    filled.wait()
                    guard let chunk = lock.withLock({ chunks.removeFirst() }) else { break }
                    hashers.updateMD5(chunk)
                    free.signal()
                }
                exited.signal()
            }
            thread.start()
        }

        func submit(_ chunk: UnsafeRawBufferPointer) {
            lock.withLock { chunks.append(chunk) }
            filled.signal()
        }

        /// Waits until every submitted chunk is hashed and the thread has ended (idempotent).
        func finish() {
            if finished { return }
            finished = true
            lock.withLock { chunks.append(nil) }
            filled.signal()
            exited.wait()
        }
    }

    /// The running digests. Two lanes may update it at once, but they touch disjoint digests
    /// (MD5 vs SHA1/SHA256).
    final class Hashers: @unchecked Sendable {
        var md5: Insecure.MD5?
        var sha1: Insecure.SHA1?
        var sha256: SHA256?

        init(md5: Bool, sha1: Bool, sha256: Bool) {
            self.md5 = md5 ? Insecure.MD5() : nil
            self.sha1 = sha1 ? Insecure.SHA1() : nil
            self.sha256 = sha256 ? SHA256() : nil
        }

        func updateMD5(_ chunk: UnsafeRawBufferPointer) { md5?.update(bufferPointer: chunk) }

        func updateSHA(_ chunk: UnsafeRawBufferPointer) {
            sha1?.update(bufferPointer: chunk)
            sha256?.update(bufferPointer: chunk)
        }
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
