import Crypto
import Foundation
import FleetCore

/// Uploaded files on the server's disk, addressed by SHA-256 (`uploads/ab/abcdef…`), so the same
/// file from many clients is stored once. Parts arrive in order but may repeat after a reconnect:
/// each is written at its offset into a staging file, and the last part moves the file into place
/// only if its digest is the one the agent computed.
public struct BlobStore: Sendable {
    public let root: String

    public init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root + "/staging", withIntermediateDirectories: true)
    }

    public func path(sha256: String) -> String {
        root + "/" + String(sha256.prefix(2)) + "/" + sha256
    }

    private func stagingPath(flowId: String, index: Int) -> String {
        root + "/staging/" + flowId.filter { $0.isLetter || $0.isNumber || $0 == "." } + "-\(index)"
    }

    /// Writes one part; on the last part verifies the digests and files the blob. Returns the
    /// upload record, or an error text when the bytes do not match what the agent announced.
    public func write(flowId: String, part: WirePayload) throws -> Result<UploadRecord, StoreError>? {
        guard case .uploadPart(let index, let name, let offset, let data, let last, let size, let sha256, let md5) = part else { return nil }
        let staging = stagingPath(flowId: flowId, index: index)
        let fd = open(staging, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError("cannot write \(staging): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        close(fd)
        guard written == data.count else { throw StoreError("short write to \(staging)") }
        guard last else { return nil }
        if FileManager.default.fileExists(atPath: path(sha256: sha256)) {
            unlink(staging)
            return .success(UploadRecord(flowId: flowId, name: name, size: size, sha256: sha256, md5: md5))
        }
        let actual = try digest(staging)
        guard actual.size == size, actual.sha256 == sha256 else {
            unlink(staging)
            return .failure(StoreError("upload \(name): received \(actual.size) bytes with sha256 \(actual.sha256), expected \(size) bytes with \(sha256)"))
        }
        try FileManager.default.createDirectory(atPath: root + "/" + String(sha256.prefix(2)), withIntermediateDirectories: true)
        guard rename(staging, path(sha256: sha256)) == 0 else { throw StoreError("cannot file upload \(name): \(String(cString: strerror(errno)))") }
        return .success(UploadRecord(flowId: flowId, name: name, size: size, sha256: sha256, md5: md5))
    }

    private func digest(_ path: String) throws -> (size: Int64, sha256: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StoreError("cannot read \(path)") }
        defer { try? handle.close() }
        var sha = SHA256()
        var size: Int64 = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            sha.update(data: chunk)
            size += Int64(chunk.count)
        }
        return (size, sha.finalize().map { String(format: "%02x", $0) }.joined())
    }
}
