import Crypto
import FleetCore
import Foundation
import PrivateFiles

/// Evidence back from the server: uploads read in bounded slices, saved privately and checked
/// against the SHA-256 the agent reported; encrypted storage files decrypted by the server.
extension APIClient {
    /// Bytes `offset ..< offset + length` of an upload of a flow (a short read at its end).
    public func uploadSlice(flowId: String, sha256: String, offset: Int64, length: Int) async throws -> Data {
        try await raw(.GET, "/flows/\(Self.pathSegment(flowId))/uploads/\(Self.pathSegment(sha256))",
                      query: ["offset": String(offset), "length": String(length)], body: nil)
    }

    /// Downloads an upload into a new private file (0600) at `path`, slice by slice, and checks
    /// its SHA-256; a mismatch removes the file and throws.
    public func downloadUpload(_ upload: UploadRecord, to path: String) async throws {
        let fd = try PrivateFile.create(path)
        var hasher = SHA256()
        var offset: Int64 = 0
        do {
            defer { close(fd) }
            while offset < upload.size {
                let slice = try await uploadSlice(flowId: upload.flowId, sha256: upload.sha256, offset: offset,
                                                  length: Int(min(Int64(8 << 20), upload.size - offset)))
                if slice.isEmpty { throw APIError(status: 200, message: "\(upload.name): the server's copy ends at \(offset) of \(upload.size) bytes") }
                try PrivateFile.writeAll(fd, slice, path: path)
                hasher.update(data: slice)
                offset += Int64(slice.count)
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            guard digest == upload.sha256 else { throw APIError(status: 200, message: "\(upload.name): downloaded SHA-256 \(digest) is not \(upload.sha256)") }
        } catch {
            unlink(path)
            throw error
        }
    }

    /// The rows of an uploaded encrypted storage file (write_crypto_file), decrypted by the server.
    public func decryptedUploadRows(flowId: String, sha256: String) async throws -> [String] {
        let data = try await raw(.GET, "/flows/\(Self.pathSegment(flowId))/uploads/\(Self.pathSegment(sha256))/crypto-rows", query: [:], body: nil)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// A path segment with everything but plain characters percent-encoded.
    public static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "._-"))) ?? text
    }
}
