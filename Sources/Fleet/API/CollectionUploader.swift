import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Sends an offline collector's container to the server with a one-time token, in pieces, over TLS
/// pinned to the fleet's CA. A lost connection or a refused piece is followed by asking the server
/// how much it holds and resuming there, with growing pauses, until the container is in or the
/// attempts without progress run out.
public struct CollectionUploader: Sendable {
    public let serverURL: String
    public let token: String
    let tls: NIOSSLContext
    let group: EventLoopGroup
    /// Bytes per request.
    public var pieceBytes = 8 << 20
    /// Failed requests in a row before giving up.
    public var attempts = 8

    public init(serverURL: String, caCertificate: String, token: String, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.serverURL = serverURL
        self.token = token
        self.group = group
        tls = try TLSSetup.clientContext(caCertificate: caCertificate, identity: nil)
    }

    /// Why an upload ended without the container on the server.
    public struct UploadError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Uploads the file at `path`; returns the flow the server made of it. `progress` sees bytes held by the server.
    public func upload(path: String, hostname: String?, progress: @Sendable (Int64, Int64) -> Void = { _, _ in }) async throws -> ImportOutcome {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let total = Int64(try handle.seekToEnd())
        var failures = 0
        var received = try await status()
        while true {
            do {
                try handle.seek(toOffset: UInt64(received))
                let piece = try handle.read(upToCount: pieceBytes) ?? Data()
                var query = "offset=\(received)&total=\(total)"
                if let hostname, let escaped = hostname.addingPercentEncoding(withAllowedCharacters: .alphanumerics) { query += "&hostname=\(escaped)" }
                let (code, body) = try await Connector.request(
                    url: serverURL, tls: tls, group: group, method: .PUT, path: "/upload/collection?" + query,
                    headers: [("X-Quarry-Upload-Token", token)], body: piece)
                if [400, 401, 403, 413, 422].contains(code) {
                    throw UploadError(message: "the server refused the upload (\(code)): \(Self.message(body))")
                }
                if code == 200, received + Int64(piece.count) == total, let outcome = try? JSONDecoder().decode(ImportOutcome.self, from: body) {
                    progress(total, total)
                    return outcome
                }
                if code == 200, let report = try? JSONDecoder().decode(UploadProgressReport.self, from: body) {
                    received = report.received
                    failures = 0
                    progress(received, total)
                    continue
                }
                throw URLError(.badServerResponse, userInfo: [NSLocalizedDescriptionKey: "\(code): \(Self.message(body))"])
            } catch let error as UploadError {
                throw error
            } catch {
                failures += 1
                guard failures < attempts else { throw UploadError(message: "upload failed \(failures) times in a row: \(error)") }
                try await Task.sleep(for: .milliseconds(min(30_000, 250 << min(failures, 7))))
                if let held = try? await status() { received = held }
            }
        }
    }

    /// Bytes of this upload the server holds.
    public func status() async throws -> Int64 {
        let (code, body) = try await Connector.request(
            url: serverURL, tls: tls, group: group, method: .GET, path: "/upload/collection", headers: [("X-Quarry-Upload-Token", token)], body: nil)
        guard code == 200, let report = try? JSONDecoder().decode(UploadProgressReport.self, from: body) else {
            throw UploadError(message: "the server refused the upload (\(code)): \(Self.message(body))")
        }
        return report.received
    }

    static func message(_ body: Data) -> String {
        ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? String ?? String(decoding: body.prefix(300), as: UTF8.self)
    }
}
