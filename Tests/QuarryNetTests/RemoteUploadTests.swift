import Foundation
import QuarryNet
import Testing
import VQL

/// upload_s3(), upload_webdav() and upload_azure() against one Python HTTP server on loopback
/// that plays all three: it checks S3's Signature V4 with its own implementation (from AWS's
/// specification, sharing no code with Quarry's), WebDAV's basic authentication and Azure's
/// Put Blob headers and SAS query, and stores every body it accepts.
@Suite(.serialized) struct RemoteUploadTests {
    static let script = #"""
    import http.server, socketserver, sys, json, os, hmac, hashlib, base64, urllib.parse, threading
    d = sys.argv[1]
    KEY, SECRET = 'AKIDQUARRYTEST', 'quarry/secret+key'
    lock = threading.Lock()
    def sign(key, msg): return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    def expected_auth(method, path, query, headers):
        auth = headers.get('authorization', '')
        try:
            cred = auth.split('Credential=')[1].split(',')[0]; signed = auth.split('SignedHeaders=')[1].split(',')[0]
        except IndexError: return None
        key_id, day, region, service, _ = cred.split('/')
        if key_id != KEY: return None
        names = signed.split(';')
        canon_headers = ''.join('%s:%s\n' % (n, ' '.join(headers.get(n, '').split())) for n in names)
        q = '&'.join('%s=%s' % (urllib.parse.quote(k, safe='-_.~'), urllib.parse.quote(v, safe='-_.~')) for k, v in sorted(urllib.parse.parse_qsl(query, keep_blank_values=True)))
        canon = '\n'.join([method, path, q, canon_headers, signed, headers.get('x-amz-content-sha256', '')])
        scope = '/'.join([day, region, service, 'aws4_request'])
        to_sign = '\n'.join(['AWS4-HMAC-SHA256', headers.get('x-amz-date', ''), scope, hashlib.sha256(canon.encode()).hexdigest()])
        k = sign(('AWS4' + SECRET).encode(), day); k = sign(k, region); k = sign(k, service); k = sign(k, 'aws4_request')
        return 'AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s' % (cred, signed, hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest())
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        def log_message(self, *a): pass
        def reply(self, code, text=b''):
            self.send_response(code); self.send_header('Content-Length', str(len(text))); self.end_headers(); self.wfile.write(text)
        def body(self):
            if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
                out = b''
                while True:
                    n = int(self.rfile.readline().strip(), 16)
                    if n == 0: self.rfile.readline(); return out
                    out += self.rfile.read(n); self.rfile.readline()
            return self.rfile.read(int(self.headers.get('Content-Length', 0)))
        def do_PUT(self):
            url = urllib.parse.urlsplit(self.path)
            data = self.body()
            record = {'path': url.path, 'query': url.query, 'headers': {k.lower(): v for k, v in self.headers.items()}, 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()}
            if url.path.startswith('/s3/') or url.path.startswith('/evidence-bucket/'):
                headers = {k.lower(): v for k, v in self.headers.items()}
                good = expected_auth('PUT', url.path, url.query, headers)
                record['signature_ok'] = good is not None and hmac.compare_digest(good, self.headers.get('Authorization', ''))
                if not record['signature_ok']:
                    self.log(record); return self.reply(403, b'<Error><Code>SignatureDoesNotMatch</Code></Error>')
                self.log(record); return self.reply(200)
            if url.path.startswith('/dav/'):
                if self.headers.get('Authorization') != 'Basic ' + base64.b64encode(b'analyst:pw').decode():
                    self.log(record); return self.reply(401, b'authentication required')
                self.log(record); return self.reply(201)
            if url.path.startswith('/container/'):
                q = urllib.parse.parse_qs(url.query)
                if self.headers.get('x-ms-blob-type') != 'BlockBlob' or q.get('sig') != ['c2lnbmF0dXJl']:
                    self.log(record); return self.reply(403, b'AuthenticationFailed')
                self.log(record); return self.reply(201)
            self.reply(404)
        def log(self, record):
            with lock:
                with open(d + '/requests', 'a') as f: f.write(json.dumps(record) + '\n')
    class T(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
    server = T(('127.0.0.1', 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(d + '/ports.tmp', 'w') as f: f.write('http=%d\n' % server.server_address[1])
    os.rename(d + '/ports.tmp', d + '/ports')
    sys.stdin.read()
    """#

    let server: PythonServer
    let evidence: String

    init() throws {
        server = try PythonServer(script: Self.script, tag: "uploads")
        evidence = server.directory + "/evidence file.bin"
        var bytes = [UInt8](repeating: 0, count: 3 * 1024 * 1024 + 17)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 9) }
        _ = FileManager.default.createFile(atPath: evidence, contents: Data(bytes))
    }

    var base: String { "http://127.0.0.1:\(server.ports["http"] ?? "0")" }
    var requests: [[String: Any]] {
        let text = (try? String(contentsOfFile: server.directory + "/requests", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
    var sha256: String { Host256.hex(of: evidence) }

    @Test func s3SignsWithSignatureV4AndStreamsTheFile() throws {
        let (rows, log) = try net("""
            SELECT upload_s3(file='\(evidence)', name='case 7/evidence.bin', bucket='evidence-bucket', region='eu-west-3',
                             endpoint='\(base)', path_style=TRUE, s3upload_root='host-a',
                             credentials_key='AKIDQUARRYTEST', credentials_secret='quarry/secret+key',
                             serverside_encryption='AES256') AS U FROM scope()
            """)
        let result = rows.first?.member("U")
        #expect(result?.member("Error").isNull == true, "\(rows) \(log)")
        #expect(result?.member("Size").intValue == Int64(3 * 1024 * 1024 + 17))
        #expect(result?.member("Sha256").stringValue == sha256)
        let request = requests.last ?? [:]
        #expect(request["signature_ok"] as? Bool == true, "the server's own SigV4 check: \(request)")
        #expect(request["path"] as? String == "/evidence-bucket/host-a/case%207/evidence.bin")
        #expect(request["sha256"] as? String == sha256, "the whole file arrived")
        #expect((request["headers"] as? [String: String])?["x-amz-server-side-encryption"] == "AES256")

        let (bad, _) = try net("""
            SELECT upload_s3(file='\(evidence)', bucket='evidence-bucket', endpoint='\(base)', path_style=TRUE,
                             credentials_key='AKIDQUARRYTEST', credentials_secret='wrong') AS U FROM scope()
            """)
        let refused = bad.first?.member("U").member("Error").stringValue ?? ""
        #expect(refused.contains("403") && refused.contains("SignatureDoesNotMatch"), "\(refused)")
    }

    @Test func webdavAndAzurePutTheFileWhereAsked() throws {
        let (rows, log) = try net("""
            SELECT upload_webdav(file='\(evidence)', name='evidence.bin', url='\(base)/dav/cases/', basic_auth_user='analyst', basic_auth_password='pw') AS W,
                   upload_webdav(file='\(evidence)', url='\(base)/dav/cases', basic_auth_user='analyst', basic_auth_password='nope') AS Refused,
                   upload_azure(file='\(evidence)', name='host-a/evidence.bin', sas_url='\(base)/container?sv=2021-08-06&sig=c2lnbmF0dXJl') AS A
            FROM scope()
            """)
        let row = rows.first
        #expect(row?.member("W").member("Url").stringValue == "\(base)/dav/cases/evidence.bin", "\(rows) \(log)")
        #expect(row?.member("W").member("Sha256").stringValue == sha256)
        #expect(row?.member("Refused").member("Error").stringValue?.contains("401") == true)
        #expect(row?.member("A").member("Url").stringValue == "\(base)/container/host-a/evidence.bin", "the SAS query is not echoed")
        let paths = requests.map { ($0["path"] as? String ?? "", $0["sha256"] as? String ?? "") }
        #expect(paths.contains { $0 == ("/dav/cases/evidence.bin", sha256) })
        #expect(paths.contains { $0 == ("/container/host-a/evidence.bin", sha256) })
    }

    @Test func unreadableFilesAndBadTargetsAreClearErrors() throws {
        let (rows, _) = try net("""
            SELECT upload_webdav(file='/nonexistent/quarry', url='\(base)/dav/x') AS Missing,
                   upload_webdav(file='/dev/zero', url='\(base)/dav/x') AS Endless,
                   upload_webdav(file='\(evidence)', url='ftp://example.org/') AS Scheme,
                   upload_s3(file='\(evidence)', bucket='b', endpoint='\(base)', credentials_key='k', secret='vault') AS Secret,
                   upload_webdav(file='hello', accessor='data', name='greeting.txt', url='\(base)/dav/x', basic_auth_user='analyst', basic_auth_password='pw') AS Data
            FROM scope()
            """)
        let row = rows.first
        #expect(row?.member("Missing").member("Error").isNull == false)
        #expect(row?.member("Endless").member("Error").stringValue?.contains("never end") == true, "\(rows)")
        #expect(row?.member("Scheme").member("Error").stringValue?.contains("http(s)") == true)
        #expect(row?.member("Secret").member("Error").stringValue?.contains("secrets service") == true)
        #expect(row?.member("Data").member("Size").intValue == 5)
        #expect(requests.contains { $0["path"] as? String == "/dav/x/greeting.txt" && $0["size"] as? Int == 5 })
    }
}

/// SHA-256 of a file as hex, by the system's sha256sum (an independent implementation).
enum Host256 {
    static func hex(of path: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try? process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(64))
    }
}
