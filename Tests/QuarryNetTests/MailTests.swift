import Foundation
import QuarryNet
import Testing
import VQL

/// mail() against a real SMTP server on loopback (a small Python one that speaks EHLO, STARTTLS
/// with a test certificate, AUTH PLAIN/LOGIN, MAIL/RCPT/DATA and records every message), plus a
/// hostile server whose reply never ends.
@Suite(.serialized) struct MailTests {
    static let script = #"""
    import socket, socketserver, ssl, sys, threading, json, os, base64
    d = sys.argv[1]
    lock = threading.Lock()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(d + '/cert.pem', d + '/key.pem')
    class H(socketserver.BaseRequestHandler):
        starttls = False
        def handle(self):
            sock = self.request
            f = sock.makefile('rwb')
            tls = False; auth = None; mail_from = None; rcpt = []
            def send(text):
                f.write(text.encode() + b'\r\n'); f.flush()
            send('220 quarry-test ESMTP')
            while True:
                line = f.readline()
                if not line: return
                cmd = line.decode().rstrip('\r\n'); up = cmd.upper()
                if up.startswith('EHLO'):
                    ext = ['quarry-test', 'AUTH PLAIN LOGIN', '8BITMIME'] + (['STARTTLS'] if self.starttls and not tls else []) + ['SIZE 1000000']
                    f.write(('\r\n'.join(('250-' if i < len(ext) - 1 else '250 ') + e for i, e in enumerate(ext)) + '\r\n').encode()); f.flush()
                elif up == 'STARTTLS':
                    send('220 go ahead')
                    sock = ctx.wrap_socket(sock, server_side=True); f = sock.makefile('rwb'); tls = True
                elif up.startswith('AUTH PLAIN'):
                    if self.starttls and not tls:
                        send('530 must issue STARTTLS first'); continue
                    parts = base64.b64decode(cmd.split(' ', 2)[2]).split(b'\0')
                    if parts[1:] == [b'analyst', b's3cret']:
                        auth = 'analyst'; send('235 2.7.0 accepted')
                    else:
                        send('535 5.7.8 bad credentials')
                elif up.startswith('MAIL FROM:'):
                    mail_from = cmd[10:]; send('250 ok')
                elif up.startswith('RCPT TO:'):
                    rcpt.append(cmd[8:]); send('250 ok')
                elif up == 'DATA':
                    send('354 end with <CRLF>.<CRLF>')
                    data = []
                    while True:
                        l = f.readline()
                        if l in (b'.\r\n', b''): break
                        data.append(l)
                    with lock:
                        with open(d + '/log', 'a') as out:
                            out.write(json.dumps({'from': mail_from, 'rcpt': rcpt, 'tls': tls, 'auth': auth, 'data': b''.join(data).decode('utf-8', 'replace')}) + '\n')
                    send('250 2.0.0 queued as 42')
                elif up == 'QUIT':
                    send('221 bye'); return
                else:
                    send('502 unknown command')
    class StartTLS(H): starttls = True
    class Endless(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b'220-' + b'A' * 20000)
            self.request.recv(100)
    class S(socketserver.ThreadingMixIn, socketserver.TCPServer): daemon_threads = True; allow_reuse_address = True
    servers = {'plain': S(('127.0.0.1', 0), H), 'starttls': S(('127.0.0.1', 0), StartTLS), 'endless': S(('127.0.0.1', 0), Endless)}
    for s in servers.values(): threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(d + '/ports.tmp', 'w') as f:
        f.write(''.join('%s=%d\n' % (k, s.server_address[1]) for k, s in servers.items()))
    os.rename(d + '/ports.tmp', d + '/ports')
    sys.stdin.read()
    """#

    let server: PythonServer

    init() throws {
        server = try PythonServer(script: Self.script, tag: "smtp", prepare: PythonServer.makeCertificate)
    }

    var received: [[String: Any]] {
        let text = (try? String(contentsOfFile: server.directory + "/log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    var certificate: String { (try? String(contentsOfFile: server.directory + "/cert.pem", encoding: .utf8)) ?? "" }

    func port(_ name: String) -> String { server.ports[name] ?? "0" }

    @Test func startTLSThenAuthThenTheMessage() throws {
        let (rows, log) = try net("""
            LET ca <= '''\(certificate)'''
            SELECT mail(server='localhost', server_port=\(port("starttls")), root_ca=ca, auth_username='analyst', auth_password='s3cret',
                        from='Quarry <quarry@example.org>', to=['soc@example.org', 'Lead <lead@example.org>'], cc='audit@example.org',
                        subject='Détection: memfd exec', period=0,
                        body='first line\\n.hidden starts with a dot\\nlast') AS M FROM scope()
            """)
        let result = rows.first?.member("M")
        #expect(result?.member("Sent").isTruthy == true, "\(rows) \(log)")
        #expect(result?.member("Response").stringValue?.contains("queued as 42") == true)
        let mail = received.last ?? [:]
        #expect(mail["tls"] as? Bool == true, "credentials and message went over TLS")
        #expect(mail["auth"] as? String == "analyst")
        #expect(mail["from"] as? String == "<quarry@example.org>")
        #expect(mail["rcpt"] as? [String] == ["<soc@example.org>", "<lead@example.org>", "<audit@example.org>"])
        let data = mail["data"] as? String ?? ""
        #expect(data.contains("Subject: =?UTF-8?B?\(Data("Détection: memfd exec".utf8).base64EncodedString())?=\r\n"))
        #expect(data.contains("Cc: audit@example.org\r\n"))
        #expect(data.contains("\r\n\r\nfirst line\r\n..hidden starts with a dot\r\nlast\r\n"), "dot-stuffed body with CRLF lines: \(data)")
    }

    @Test func refusedCredentialsUnverifiedCertificatesAndThrottlingAreReported() throws {
        let wrong = try net("""
            SELECT mail(server='127.0.0.1', server_port=\(port("plain")), auth_username='analyst', auth_password='guess',
                        to='soc@example.org', body='x', period=0) AS M FROM scope()
            """)
        let refused = wrong.rows.first?.member("M")
        #expect(refused?.member("Sent").isTruthy == false)
        #expect(refused?.member("Error").stringValue?.contains("535") == true, "\(wrong)")
        #expect(wrong.log.contains { $0.hasPrefix("WARN") && $0.contains("mail:") }, "\(wrong.log)")

        // The test certificate is not trusted unless root_ca names it.
        let untrusted = try net("SELECT mail(server='localhost', server_port=\(port("starttls")), to='soc@example.org', body='x', period=0) AS M FROM scope()")
        #expect(untrusted.rows.first?.member("M").member("Sent").isTruthy == false, "\(untrusted)")
        let before = received.count
        let skipped = try net("SELECT mail(server='localhost', server_port=\(port("starttls")), skip_verify=TRUE, to='soc@example.org', body='x', period=0) AS M FROM scope()")
        #expect(skipped.rows.first?.member("M").member("Sent").isTruthy == true, "\(skipped)")
        #expect(received.count == before + 1)

        let both = try net("""
            SELECT mail(server='127.0.0.1', server_port=\(port("plain")), to='a@example.org', body='one', period=0) AS First,
                   mail(server='127.0.0.1', server_port=\(port("plain")), to='a@example.org', body='two', period=3600) AS Second
            FROM scope()
            """)
        #expect(both.rows.first?.member("First").member("Sent").isTruthy == true, "\(both)")
        #expect(both.rows.first?.member("Second").member("Error").stringValue?.contains("throttled") == true)
    }

    @Test func headerAndCommandInjectionCannotLeaveTheirField() throws {
        let before = received.count
        let (rows, _) = try net("""
            SELECT mail(server='127.0.0.1', server_port=\(port("plain")), to='soc@example.org',
                        subject='hi\\r\\nBcc: evil@example.org', headers=dict(`X-Case`='a\\nX-Other: b'), body='x', period=0) AS M,
                   mail(server='127.0.0.1', server_port=\(port("plain")), to='soc@example.org>\\r\\nRCPT TO:<evil@example.org', body='x', period=0) AS Bad
            FROM scope()
            """)
        #expect(rows.first?.member("M").member("Sent").isTruthy == true)
        #expect(rows.first?.member("Bad").member("Sent").isTruthy == false)
        #expect(rows.first?.member("Bad").member("Error").stringValue?.contains("not a mail address") == true)
        let mails = received.dropFirst(before)
        #expect(mails.count == 1)
        let data = mails.first?["data"] as? String ?? ""
        #expect(!data.contains("\r\nBcc:") && !data.contains("\r\nX-Other:"), "\(data)")
        #expect(!(mails.first?["rcpt"] as? [String] ?? []).contains { $0.contains("evil") })
    }

    @Test func aHostileServerCannotHoldTheQueryOrItsMemory() throws {
        let started = Date()
        let (rows, _) = try net("SELECT * FROM mail(server='127.0.0.1', server_port=\(port("endless")), to='a@example.org', body='x', period=0)")
        #expect(rows.count == 1)
        #expect(rows.first?.member("Error").stringValue?.contains("longer than") == true, "\(rows)")
        #expect(Date().timeIntervalSince(started) < 10)
        let missing = try net("SELECT mail(to='a@example.org', body='x') AS M FROM scope()")
        #expect(missing.rows.first?.member("M").member("Error").stringValue?.contains("no SMTP server") == true)
    }
}
