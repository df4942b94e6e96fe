import Crypto
import Foundation
import NIOHTTP1
import VQL

/// upload_s3(), upload_webdav() and upload_azure(): send a file (through any accessor) straight to
/// the storage the investigation uses — an S3 bucket or MinIO, a WebDAV share, an Azure container
/// with a SAS URL — streamed and hashed on the way (see RemoteUpload). Each returns upload()'s
/// shape: Path, Name, Size, Sha256, Md5, Url, Response, or Error.
public enum UploadFunctions {
    public static var functions: [FunctionDeclaration] { [s3, webdav, azure] }

    public static let s3 = FunctionDeclaration(
        name: "upload_s3",
        summary: "Uploads a file to an S3 bucket (AWS or MinIO/S3-compatible with endpoint= and path_style=), signed with AWS Signature V4; returns Path, Name, Size, Sha256, Md5, Url.",
        arguments: RemoteUpload.arguments + [
            ArgumentSpec("bucket", .string, required: true, "The bucket."),
            ArgumentSpec("region", .string, "The bucket's region (default us-east-1)."),
            ArgumentSpec("credentials_key", .string, "Access key id (default: $AWS_ACCESS_KEY_ID)."),
            ArgumentSpec("credentials_secret", .string, "Secret access key (default: $AWS_SECRET_ACCESS_KEY)."),
            ArgumentSpec("credentials_token", .string, "Session token for temporary credentials (default: $AWS_SESSION_TOKEN)."),
            ArgumentSpec("endpoint", .string, "An S3-compatible server's URL, e.g. http://127.0.0.1:9000 (default: AWS)."),
            ArgumentSpec("serverside_encryption", .string, "Server-side encryption, e.g. AES256 or aws:kms."),
            ArgumentSpec("kms_encryption_key", .string, "The KMS key id for aws:kms."),
            ArgumentSpec("s3upload_root", .string, "A prefix for the object's key."),
            ArgumentSpec("skip_verify", .bool, "Do not verify the server's certificate."),
            ArgumentSpec("path_style", .bool, "Address the bucket as ENDPOINT/BUCKET/KEY rather than BUCKET.HOST/KEY (MinIO needs this)."),
            ArgumentSpec("secret", .string, "A stored secret (not supported by Quarry yet; an error when given)."),
        ],
        returns: .dict,
        examples: ["SELECT upload_s3(file='/etc/hostname', bucket='evidence', endpoint='http://127.0.0.1:9000', path_style=TRUE, credentials_key='K', credentials_secret='S').Sha256 AS Sha256 FROM scope()"],
        permissions: [.filesystemRead, .network]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "upload_s3"), ctx.context.require(.network, for: "upload_s3") else { return .null }
        if let secret = ctx.string("secret"), !secret.isEmpty {
            return RemoteUpload.error(ctx, path: "", name: "", "secret= needs a secrets service, which Quarry does not have yet")
        }
        let environment = ProcessInfo.processInfo.environment
        guard let bucket = ctx.string("bucket"), !bucket.isEmpty else { return RemoteUpload.error(ctx, path: "", name: "", "no bucket") }
        guard let key = ctx.string("credentials_key") ?? environment["AWS_ACCESS_KEY_ID"],
              let secret = ctx.string("credentials_secret") ?? environment["AWS_SECRET_ACCESS_KEY"] else {
            return RemoteUpload.error(ctx, path: "", name: "", "no credentials: give credentials_key= and credentials_secret=")
        }
        let token = ctx.string("credentials_token") ?? environment["AWS_SESSION_TOKEN"]
        let region = ctx.string("region").flatMap { $0.isEmpty ? nil : $0 } ?? "us-east-1"
        let opened: (UploadSource, display: String, name: String)
        switch RemoteUpload.open(ctx) {
        case .success(let value): opened = value
        case .failure(let failure): return failure.result
        }
        let root = ctx.string("s3upload_root") ?? ""
        let objectKey = RemoteUpload.encodePath(root + "/" + opened.name)
        let endpoint = ctx.string("endpoint").flatMap { $0.isEmpty ? nil : $0 } ?? "https://s3.\(region).amazonaws.com"
        guard let base = URLComponents(string: endpoint), let scheme = base.scheme, let host = base.host else {
            return RemoteUpload.error(ctx, path: opened.display, name: opened.name, "endpoint \(endpoint) is not a URL")
        }
        let pathStyle = ctx.bool("path_style") ?? false
        let defaultPort = (scheme == "https" && base.port == 443) || (scheme == "http" && base.port == 80)
        let authority = (pathStyle ? host : "\(bucket).\(host)") + (base.port.map { defaultPort ? "" : ":\($0)" } ?? "")
        let path = (pathStyle ? "/" + RemoteUpload.encodePath(bucket) : "") + "/" + objectKey
        var headers: [(String, String)] = [("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]
        if let token, !token.isEmpty { headers.append(("x-amz-security-token", token)) }
        if let encryption = ctx.string("serverside_encryption"), !encryption.isEmpty {
            headers.append(("x-amz-server-side-encryption", encryption))
            if let kms = ctx.string("kms_encryption_key"), !kms.isEmpty { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", kms)) }
        }
        let signed = S3Signer(accessKey: key, secretKey: secret, region: region)
            .sign(method: "PUT", host: authority, path: path, query: [], headers: headers, date: Date())
        let target = RemoteUpload.Target(url: "\(scheme)://\(authority)\(path)", headers: signed.filter { $0.0 != "host" },
                                         insecure: ctx.bool("skip_verify") ?? false)
        return RemoteUpload.send(ctx, opened.0, display: opened.display, name: opened.name, to: target)
    }

    public static let webdav = FunctionDeclaration(
        name: "upload_webdav",
        summary: "Uploads a file to a WebDAV server (HTTP PUT to URL/NAME, optional basic authentication); returns Path, Name, Size, Sha256, Md5, Url.",
        arguments: RemoteUpload.arguments + [
            ArgumentSpec("url", .string, required: true, "The WebDAV folder's URL; the file is stored at URL/NAME."),
            ArgumentSpec("basic_auth_user", .string, "User for HTTP basic authentication."),
            ArgumentSpec("basic_auth_password", .string, "Password for HTTP basic authentication."),
            ArgumentSpec("noverifycert", .bool, "Same as skip_verify (older name)."),
            ArgumentSpec("skip_verify", .bool, "Do not verify the server's certificate."),
            ArgumentSpec("user_agent", .string, "The User-Agent header."),
        ],
        returns: .dict,
        examples: ["SELECT upload_webdav(file='/etc/hosts', name='hosts.txt', url='http://127.0.0.1:8080/evidence', basic_auth_user='u', basic_auth_password='p').Url AS Url FROM scope()"],
        permissions: [.filesystemRead, .network]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "upload_webdav"), ctx.context.require(.network, for: "upload_webdav") else { return .null }
        guard let url = ctx.string("url"), url.hasPrefix("http://") || url.hasPrefix("https://") else {
            return RemoteUpload.error(ctx, path: "", name: "", "url must be an http(s) URL")
        }
        let opened: (UploadSource, display: String, name: String)
        switch RemoteUpload.open(ctx) {
        case .success(let value): opened = value
        case .failure(let failure): return failure.result
        }
        var headers: [(String, String)] = [("User-Agent", ctx.string("user_agent") ?? "Quarry")]
        if let user = ctx.string("basic_auth_user") {
            let token = Data("\(user):\(ctx.string("basic_auth_password") ?? "")".utf8).base64EncodedString()
            headers.append(("Authorization", "Basic \(token)"))
        }
        let target = RemoteUpload.Target(
            url: (url.hasSuffix("/") ? String(url.dropLast()) : url) + "/" + RemoteUpload.encodePath(opened.name), headers: headers,
            insecure: (ctx.bool("skip_verify") ?? false) || (ctx.bool("noverifycert") ?? false))
        return RemoteUpload.send(ctx, opened.0, display: opened.display, name: opened.name, to: target)
    }

    public static let azure = FunctionDeclaration(
        name: "upload_azure",
        summary: "Uploads a file to an Azure Blob Storage container through a SAS URL (one Put Blob, up to 5000 MiB); returns Path, Name, Size, Sha256, Md5, Url.",
        arguments: RemoteUpload.arguments + [
            ArgumentSpec("sas_url", .string, required: true, "The container's SAS URL (https://ACCOUNT.blob.core.windows.net/CONTAINER?sv=…&sig=…)."),
        ],
        returns: .dict,
        examples: ["SELECT upload_azure(file='/etc/hosts', sas_url='http://127.0.0.1:9/evidence?sv=2021-08-06&sig=SIG').Size AS Size FROM scope()"],
        permissions: [.filesystemRead, .network]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "upload_azure"), ctx.context.require(.network, for: "upload_azure") else { return .null }
        guard let sas = ctx.string("sas_url"), var components = URLComponents(string: sas), components.host != nil else {
            return RemoteUpload.error(ctx, path: "", name: "", "sas_url is not a URL")
        }
        let opened: (UploadSource, display: String, name: String)
        switch RemoteUpload.open(ctx) {
        case .success(let value): opened = value
        case .failure(let failure): return failure.result
        }
        if let size = opened.0.size, size > 5000 << 20 {
            return RemoteUpload.error(ctx, path: opened.display, name: opened.name, "larger than one Put Blob takes (5000 MiB)")
        }
        let container = components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath
        components.percentEncodedPath = container + "/" + RemoteUpload.encodePath(opened.name)
        let target = RemoteUpload.Target(
            url: components.string ?? sas,
            headers: [("x-ms-blob-type", "BlockBlob"), ("x-ms-version", "2021-08-06"), ("Content-Type", "application/octet-stream")])
        return RemoteUpload.send(ctx, opened.0, display: opened.display, name: opened.name, to: target, accept: [201])
    }
}

/// AWS Signature Version 4 for S3 requests (headers signed; the payload is sent unsigned, which
/// S3 and MinIO accept and which lets a file stream without being read twice).
struct S3Signer {
    let accessKey: String
    let secretKey: String
    let region: String
    var service = "s3"

    /// The headers to send: the given ones plus host, x-amz-date and Authorization.
    func sign(method: String, host: String, path: String, query: [(String, String)], headers: [(String, String)], date: Date) -> [(String, String)] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let amzDate = formatter.string(from: date)
        let day = String(amzDate.prefix(8))
        var all = headers + [("host", host), ("x-amz-date", amzDate)]
        all = all.map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }.sorted { $0.0 < $1.0 }
        let signedHeaders = all.map(\.0).joined(separator: ";")
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text }
        let encodedQuery: [(String, String)] = query.map { (encode($0.0), encode($0.1)) }
        let sortedQuery = encodedQuery.sorted { (a: (String, String), b: (String, String)) -> Bool in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        let canonicalQuery = sortedQuery.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let payload = all.first { $0.0 == "x-amz-content-sha256" }?.1 ?? "UNSIGNED-PAYLOAD"
        let canonicalHeaders = all.map { "\($0.0):\($0.1)\n" }.joined()
        let canonical = [method, path, canonicalQuery, canonicalHeaders, signedHeaders, payload].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Array(canonical.utf8)))].joined(separator: "\n")
        var key = SymmetricKey(data: Array("AWS4\(secretKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        return all + [("Authorization", "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)")]
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
