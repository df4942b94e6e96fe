import Crypto
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import PrivateFiles

/// Uploaded files on the server's disk, addressed by SHA-256 (`uploads/ab/abcdef…`), so the same
/// file from many clients is stored once.
///
/// Upload parts come from agents, so nothing in them is trusted: a part must start exactly where
/// the bytes received so far end (a part sent again after a lost acknowledgement is recognised and
/// skipped; any other offset is refused), a flow may not upload more than its cap, digests must be
/// well-formed before they are used, and the digests that file the blob are the ones computed here,
/// incrementally as parts arrive and off the event loop — the agent's claim is only compared with
/// them. Parts are staged in `staging/<flow>-<index>` (0600) until the last one; staging files go
/// when their flow ends and, at start-up, when their flow is over or unknown.
public final class BlobStore: Sendable {
    public let root: String
    private let progress = NIOLockedValueBox<[UploadKey: UploadProgress]>([:])
    /// Bytes staged per upload not yet filed (for the per-flow cap, read without the uploads' locks).
    private let staged = NIOLockedValueBox<[UploadKey: Int64]>([:])
    private let work = DispatchQueue(label: "quarry.blobs", attributes: .concurrent)

    /// Largest part accepted (agents send 2 MiB).
    static let maxPartBytes = 4 << 20
    /// Uploads per flow, at most.
    static let maxIndex = 100_000

    struct UploadKey: Hashable {
        var flowId: String
        var index: Int
    }

    /// An upload being received: bytes so far and the digests running over them.
    final class UploadProgress: @unchecked Sendable {
        let lock = NSLock()
        var received: Int64 = 0
        var sha = SHA256()
        var md5 = Insecure.MD5()
        var filed: UploadRecord?
    }

    /// What became of a part.
    public enum PartOutcome: Sendable, Equatable {
        /// Written (or already there): nothing to record yet.
        case stored
        /// The last part: the upload is filed under its computed SHA-256.
        case filed(UploadRecord)
        /// The upload is complete but its bytes are not what the agent announced: nothing filed.
        case mismatch(String)
        /// The part itself is unacceptable (nothing written): acknowledge it as rejected.
        case rejected(String)
    }

    public init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root + "/staging", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    public func path(sha256: String) -> String {
        root + "/" + String(sha256.prefix(2)) + "/" + sha256
    }

    private func stagingName(_ key: UploadKey) -> String {
        Self.safe(key.flowId) + "-\(key.index)"
    }

    private func stagingPath(_ key: UploadKey) -> String { root + "/staging/" + stagingName(key) }

    static func safe(_ flowId: String) -> String { flowId.filter { $0.isLetter || $0.isNumber || $0 == "." } }

    public static func isSHA256(_ text: String) -> Bool { text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } }
    public static func isMD5(_ text: String) -> Bool { text.utf8.count == 32 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) } }

    /// Takes one part of upload `index` of a flow whose filed uploads already hold `flowBytes` and
    /// that may upload `cap` bytes in all. The caller has checked that the flow is the sender's and
    /// still running.
    public func receive(flowId: String, part: WirePayload, flowBytes: Int64, cap: Int64) async -> PartOutcome {
        await withCheckedContinuation { continuation in
            work.async { continuation.resume(returning: self.receiveNow(flowId: flowId, part: part, flowBytes: flowBytes, cap: cap)) }
        }
    }

    private func receiveNow(flowId: String, part: WirePayload, flowBytes: Int64, cap: Int64) -> PartOutcome {
        guard case .uploadPart(let index, let name, let offset, let data, let last, let size, let sha256, let md5) = part else {
            return .rejected("not an upload part")
        }
        // Everything is checked before a byte is written.
        guard (0..<Self.maxIndex).contains(index) else { return .rejected("upload index \(index) is out of range") }
        guard !name.isEmpty, name.utf8.count <= 4096, !name.utf8.contains(0) else { return .rejected("upload name is empty, too long or holds a NUL byte") }
        guard Self.isSHA256(sha256) else { return .rejected("upload \(name): sha256 must be 64 lower-case hex digits") }
        guard Self.isMD5(md5) else { return .rejected("upload \(name): md5 must be 32 hex digits") }
        guard data.count <= Self.maxPartBytes else { return .rejected("upload \(name): a part of \(data.count) bytes is larger than \(Self.maxPartBytes)") }
        guard offset >= 0, size >= 0, offset <= size, Int64(data.count) <= size - offset else {
            return .rejected("upload \(name): a part of \(data.count) bytes at offset \(offset) does not fit its size \(size)")
        }
        guard !last || offset + Int64(data.count) == size else { return .rejected("upload \(name): the last part ends at \(offset + Int64(data.count)), not at its size \(size)") }
        let key = UploadKey(flowId: flowId, index: index)
        let upload = progress.withLockedValue { all -> UploadProgress in
            if let existing = all[key] { return existing }
            let made = UploadProgress()
            all[key] = made
            return made
        }
        upload.lock.lock()
        defer { upload.lock.unlock() }
        let staging = stagingPath(key)
        if let filed = upload.filed ?? readMarker(key) {
            // Sent again after its acknowledgement was lost: the upload is already filed.
            upload.filed = filed
            return last ? .filed(filed) : .stored
        }
        do {
            try catchUp(upload, staging: staging)
        } catch {
            return .rejected("upload \(name): \(error)")
        }
        let end = offset + Int64(data.count)
        if end <= upload.received && !(last && end == upload.received) { return .stored }
        if end > upload.received {
            guard offset == upload.received else {
                return .rejected("upload \(name): part at offset \(offset), but \(upload.received) bytes were received so far (parts must arrive in order)")
            }
            // The flow's filed uploads, its other uploads in progress here, and this one.
            let others = staged.withLockedValue { all in
                all.reduce(Int64(0)) { $0 + ($1.key.flowId == flowId && $1.key.index != index ? $1.value : 0) }
            }
            guard flowBytes + others + end <= cap else {
                return .rejected("upload \(name): the flow's uploads would pass its limit of \(cap) bytes")
            }
            do {
                try append(data, to: staging, at: offset)
            } catch {
                return .rejected("upload \(name): \(error)")
            }
            upload.sha.update(data: data)
            upload.md5.update(data: data)
            upload.received = end
            staged.withLockedValue { $0[key] = end }
        }
        guard last else { return .stored }
        return file(upload, key: key, name: name, flowId: flowId, claimed: (size, sha256, md5.lowercased()), staging: staging)
    }

    /// Makes the running digests cover exactly the staged bytes: after a restart, or when another
    /// frontend received parts meanwhile (agents move between frontends), they are recomputed once
    /// from the staged file.
    private func catchUp(_ upload: UploadProgress, staging: String) throws {
        var info = stat()
        let staged: Int64 = stat(staging, &info) == 0 ? Int64(info.st_size) : 0
        guard staged != upload.received else { return }
        upload.sha = SHA256()
        upload.md5 = Insecure.MD5()
        upload.received = 0
        guard staged > 0, let handle = FileHandle(forReadingAtPath: staging) else { return }
        defer { try? handle.close() }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            upload.sha.update(data: chunk)
            upload.md5.update(data: chunk)
            upload.received += Int64(chunk.count)
        }
    }

    private func append(_ data: Data, to staging: String, at offset: Int64) throws {
        var fd = open(staging, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == ENOENT { fd = try PrivateFile.create(staging) }
        guard fd >= 0 else { throw StoreError("cannot write the staging file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard written == data.count else { throw StoreError("short write to the staging file") }
    }

    /// The upload is whole: compare the computed digests with the agent's, then file it (or drop
    /// the staged copy when a blob with these bytes exists already).
    private func file(_ upload: UploadProgress, key: UploadKey, name: String, flowId: String, claimed: (size: Int64, sha256: String, md5: String), staging: String) -> PartOutcome {
        let sha = upload.sha.finalize().map { String(format: "%02x", $0) }.joined()
        let md5 = upload.md5.finalize().map { String(format: "%02x", $0) }.joined()
        let received = upload.received
        guard received == claimed.size, sha == claimed.sha256, md5 == claimed.md5 else {
            unlink(staging)
            progress.withLockedValue { $0[key] = nil }
            staged.withLockedValue { $0[key] = nil }
            return .mismatch(
                "upload \(name): received \(received) bytes with sha256 \(sha) and md5 \(md5), the agent announced \(claimed.size) bytes with sha256 \(claimed.sha256) and md5 \(claimed.md5): not stored")
        }
        let record = UploadRecord(flowId: flowId, name: name, size: received, sha256: sha, md5: md5)
        do {
            // Recorded before the rename, so a part sent again after a crash finds the upload filed.
            try PrivateFile.write(try JSONEncoder().encode(record), to: stagingPath(key) + ".done")
            let target = path(sha256: sha)
            if FileManager.default.fileExists(atPath: target) {
                unlink(staging)
            } else {
                try FileManager.default.createDirectory(atPath: root + "/" + String(sha.prefix(2)), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                guard rename(staging, target) == 0 else { throw StoreError("cannot file upload \(name): \(String(cString: strerror(errno)))") }
                PrivateFile.syncFolder(of: target)
            }
        } catch {
            return .rejected("upload \(name): \(error)")
        }
        upload.filed = record
        staged.withLockedValue { $0[key] = nil }
        return .filed(record)
    }

    private func readMarker(_ key: UploadKey) -> UploadRecord? {
        guard let data = FileManager.default.contents(atPath: stagingPath(key) + ".done") else { return nil }
        return try? JSONDecoder().decode(UploadRecord.self, from: data)
    }

    /// Staging files and progress of a flow that ended.
    public func discard(flowId: String) {
        progress.withLockedValue { all in all = all.filter { $0.key.flowId != flowId } }
        staged.withLockedValue { all in all = all.filter { $0.key.flowId != flowId } }
        let prefix = Self.safe(flowId) + "-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root + "/staging")) ?? [] where name.hasPrefix(prefix) {
            unlink(root + "/staging/" + name)
        }
    }

    /// At start-up: removes staging files whose flow is over or unknown (`isLive` says which are
    /// not; other frontends' uploads in progress stay).
    public func sweep(isLive: (String) async -> Bool) async -> Int {
        var flows: [String: [String]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root + "/staging")) ?? [] {
            let stem = name.hasSuffix(".done") ? String(name.dropLast(5)) : name
            guard let dash = stem.lastIndex(of: "-") else {
                unlink(root + "/staging/" + name)
                continue
            }
            flows[String(stem[..<dash]), default: []].append(name)
        }
        var removed = 0
        for (flowId, names) in flows where await !isLive(flowId) {
            for name in names { unlink(root + "/staging/" + name) }
            removed += names.count
        }
        return removed
    }
}
