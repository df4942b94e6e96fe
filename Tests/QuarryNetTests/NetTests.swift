import Foundation
import QuarryHost
import QuarryNet
import Testing
import VQL

/// Real servers on loopback, written in Python's standard library: HTTP, HTTPS (a certificate
/// made by openssl), HTTP over a Unix socket, a line-oriented TCP server and a UDP echo.
final class LocalServers {
    let server: PythonServer
    var directory: String { server.directory }
    var ports: [String: String] { server.ports }

    static let script = #"""
    import http.server, socketserver, ssl, sys, threading, json, os, socket, time
    d = sys.argv[1]
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def reply(self, code, body, ctype='text/plain', extra=()):
            self.send_response(code)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(body)))
            self.send_header('X-Test', 'yes')
            for k, v in extra: self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            if self.path == '/hello': return self.reply(200, b'hello world')
            if self.path.startswith('/echo'):
                return self.reply(200, json.dumps({'path': self.path, 'ua': self.headers.get('User-Agent'), 'h': self.headers.get('X-Mine')}).encode(), 'application/json')
            if self.path == '/loop': return self.reply(302, b'', extra=[('Location', '/loop')])
            if self.path == '/moved': return self.reply(301, b'', extra=[('Location', '/hello')])
            if self.path == '/big': return self.reply(200, b'A' * (3 * 1024 * 1024))
            if self.path == '/slow':
                time.sleep(6); return self.reply(200, b'late')
            return self.reply(404, b'missing')
        def do_POST(self):
            n = int(self.headers.get('Content-Length', 0))
            body = self.rfile.read(n)
            self.reply(200, json.dumps({'body': body.decode(), 'type': self.headers.get('Content-Type')}).encode(), 'application/json')
    class T(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
    class U(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True
        def get_request(self):
            r, _ = super().get_request(); return r, ('unix', 0)
    plain = T(('127.0.0.1', 0), H)
    tls = T(('127.0.0.1', 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(d + '/cert.pem', d + '/key.pem')
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    unix = U(d + '/http.sock', H)
    class L(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline()
            self.wfile.write(b'got: ' + line + b'second line\nno newline at the end')
    class LT(socketserver.ThreadingMixIn, socketserver.TCPServer): daemon_threads = True; allow_reuse_address = True
    lines = LT(('127.0.0.1', 0), L)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(('127.0.0.1', 0))
    def echo():
        while True:
            data, addr = udp.recvfrom(65536); udp.sendto(b'echo:' + data, addr)
    for s in (plain, tls, unix, lines): threading.Thread(target=s.serve_forever, daemon=True).start()
    threading.Thread(target=echo, daemon=True).start()
    with open(d + '/ports.tmp', 'w') as f:
        f.write('http=%d\nhttps=%d\nlines=%d\nudp=%d\n' % (plain.server_address[1], tls.server_address[1], lines.server_address[1], udp.getsockname()[1]))
    os.rename(d + '/ports.tmp', d + '/ports')
    sys.stdin.read()  # until the test closes our standard input
    """#

    init() throws {
        server = try PythonServer(script: LocalServers.script, tag: "net", prepare: PythonServer.makeCertificate)
    }

    func url(_ path: String, tls: Bool = false) -> String {
        tls ? "https://127.0.0.1:\(ports["https"] ?? "0")\(path)" : "http://127.0.0.1:\(ports["http"] ?? "0")\(path)"
    }
}

/// A Python script run as a server on loopback for one test: it gets its own folder as argv[1],
/// writes `ports` there (KEY=PORT lines) once listening, and stops when its standard input closes.
final class PythonServer {
    let directory: String
    let process = Process()
    let input = Pipe()
    private(set) var ports: [String: String] = [:]

    init(script: String, tag: String, prepare: (String) throws -> Void = { _ in }) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-\(tag)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try prepare(directory)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, directory]
        process.standardInput = input
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: directory + "/ports", encoding: .utf8) {
                for line in text.split(separator: "\n") {
                    let parts = line.split(separator: "=")
                    if parts.count == 2 { ports[String(parts[0])] = String(parts[1]) }
                }
                break
            }
            usleep(50_000)
        }
    }

    /// A self-signed certificate for localhost and 127.0.0.1 (cert.pem, key.pem) in `directory`.
    static func makeCertificate(in directory: String) throws {
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
                             "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        // SIGKILL, not terminate(): the server inherits the spawning thread's signal mask, in which
        // SIGTERM may be blocked, and a process another test starts meanwhile (a PostgreSQL server)
        // may inherit its stdin pipe, so neither SIGTERM nor end-of-input would stop it — a clean
        // run hung here for 20 minutes.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

func net(_ text: String) throws -> (rows: [Value], log: [String]) {
    let registry = CoreLibrary.registry()
    registry.add(plugins: NetLibrary.plugins, functions: NetLibrary.functions)
    // The live host's accessors (file, auto, …), which the upload functions read through.
    registry.add(accessors: HostLibrary.accessors)
    let logger = MemoryLogger()
    let session = Session(registry: registry, logger: logger)
    let results = try session.run(text)
    return ((results.last ?? nil) ?? [], logger.messages)
}

@Suite(.serialized) struct HTTPClientTests {
    @Test func getPostHeadersParamsAndRedirects() throws {
        let servers = try LocalServers()
        let (rows, log) = try net("SELECT * FROM http_client(url='\(servers.url("/hello"))')")
        #expect(log.isEmpty, "\(log)")
        #expect(rows.first?.member("Content").stringValue == "hello world")
        #expect(rows.first?.member("Response").intValue == 200)
        #expect(rows.first?.member("Headers").member("X-Test").stringValue == "yes")
        #expect(rows.first?.member("Url").stringValue == servers.url("/hello"))

        let (echo, _) = try net("SELECT parse_json(data=Content) AS J FROM http_client(url='\(servers.url("/echo"))', params=dict(q='a b'), headers=dict(`X-Mine`='mine'), user_agent='QuarryTest')")
        #expect(echo.first?.member("J").member("path").stringValue == "/echo?q=a%20b")
        #expect(echo.first?.member("J").member("ua").stringValue == "QuarryTest")
        #expect(echo.first?.member("J").member("h").stringValue == "mine")

        let (post, _) = try net("SELECT parse_json(data=Content) AS J FROM http_client(url='\(servers.url("/post"))', method='POST', params=dict(a=1, b='x y'))")
        #expect(post.first?.member("J").member("body").stringValue == "a=1&b=x%20y")
        #expect(post.first?.member("J").member("type").stringValue == "application/x-www-form-urlencoded")
        let (raw, _) = try net("SELECT parse_json(data=Content).body AS B FROM http_client(url='\(servers.url("/post"))', method='POST', data='{\"k\": 1}')")
        #expect(raw.first?.member("B").stringValue == "{\"k\": 1}")

        let (moved, _) = try net("SELECT Content FROM http_client(url='\(servers.url("/moved"))')")
        #expect(moved.first?.member("Content").stringValue == "hello world")
        let (loop, _) = try net("SELECT Response, Content FROM http_client(url='\(servers.url("/loop"))')")
        #expect(loop.first?.member("Response").intValue == 500, "a redirect cycle is an error row, not a hang")

        // Several URLs: the first that answers 200 wins.
        let (fallback, _) = try net("SELECT Url, Response FROM http_client(url=['\(servers.url("/missing"))', '\(servers.url("/hello"))'])")
        #expect(fallback.first?.member("Url").stringValue == servers.url("/hello"))
    }

    @Test func chunksTempfilesTimeoutsTLSAndUnixSockets() throws {
        let servers = try LocalServers()
        let (chunks, _) = try net("SELECT len(list=Content) AS L FROM http_client(url='\(servers.url("/big"))', chunk_size=1048576)")
        #expect(chunks.compactMap { $0.member("L").intValue } == [1_048_576, 1_048_576, 1_048_576])

        // A temporary file: 0600 while the query runs, gone once the session is released.
        var path = ""
        do {
            let registry = CoreLibrary.registry()
            registry.add(plugins: NetLibrary.plugins, functions: NetLibrary.functions)
            let session = Session(registry: registry, logger: MemoryLogger())
            let rows = (try session.run("SELECT Content FROM http_client(url='\(servers.url("/big"))', tempfile_extension='.bin')").last ?? nil) ?? []
            path = rows.first?.member("Content").stringValue ?? ""
            #expect(path.hasSuffix(".bin"))
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect((attributes[.size] as? Int) == 3 * 1024 * 1024)
        }
        #expect(!FileManager.default.fileExists(atPath: path), "the temporary file is removed with the query")

        let start = Date()
        let (slow, _) = try net("SELECT Response FROM http_client(url='\(servers.url("/slow"))', timeout=1)")
        #expect(slow.first?.member("Response").intValue == 500)
        #expect(Date().timeIntervalSince(start) < 5)

        let (untrusted, _) = try net("SELECT Response FROM http_client(url='\(servers.url("/hello", tls: true))')")
        #expect(untrusted.first?.member("Response").intValue == 500, "a self-signed server is refused by default")
        let (skipped, _) = try net("SELECT Content FROM http_client(url='\(servers.url("/hello", tls: true))', skip_verify=TRUE)")
        #expect(skipped.first?.member("Content").stringValue == "hello world")
        let ca = try String(contentsOfFile: servers.directory + "/cert.pem", encoding: .utf8)
        let (pinned, _) = try net("SELECT Content FROM http_client(url='\(servers.url("/hello", tls: true))', root_ca='''\(ca)''')")
        #expect(pinned.first?.member("Content").stringValue == "hello world")

        let (unix, log) = try net("SELECT Content, Response FROM http_client(url='\(servers.directory)/http.sock:unix/hello')")
        #expect(unix.first?.member("Content").stringValue == "hello world", "\(log)")
    }
}

@Suite(.serialized) struct NetcatTests {
    @Test func tcpLinesUdpAndRefusedConnections() throws {
        let servers = try LocalServers()
        let (rows, log) = try net("SELECT Data FROM netcat(address='127.0.0.1:\(servers.ports["lines"] ?? "0")', send='hi\\n')")
        #expect(log.isEmpty, "\(log)")
        #expect(rows.compactMap { $0.member("Data").stringValue } == ["got: hi", "second line", "no newline at the end"])

        let (udp, _) = try net("SELECT Data FROM netcat(address='127.0.0.1:\(servers.ports["udp"] ?? "0")', type='udp', send='ping') LIMIT 1")
        #expect(udp.first?.member("Data").stringValue == "echo:ping")

        let (refused, refusedLog) = try net("SELECT Data FROM netcat(address='127.0.0.1:1')")
        #expect(refused.isEmpty)
        #expect(refusedLog.contains { $0.contains("netcat") })

        let (chunked, _) = try net("SELECT Data FROM netcat(address='127.0.0.1:\(servers.ports["lines"] ?? "0")', send='x\\n', sep='', chunk_size=4)")
        #expect(chunked.allSatisfy { ($0.member("Data").byteValue?.count ?? 99) <= 4 })
    }
}

/// The examples in the network declarations run and yield rows without errors.
@Suite struct NetExampleTests {
    @Test(arguments: NetLibrary.plugins.flatMap(\.examples) + NetLibrary.functions.flatMap(\.examples))
    func exampleRuns(_ example: String) throws {
        let (rows, log) = try net(example)
        #expect(!rows.isEmpty, "no rows from \(example)")
        #expect(!log.contains { $0.hasPrefix("ERROR") }, "\(log)")
    }
}
