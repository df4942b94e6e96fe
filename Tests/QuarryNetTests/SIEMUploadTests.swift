import Foundation
import QuarryNet
import Testing
import VQL

/// elastic_upload() and splunk_upload() against a real HTTP server on loopback (Python's standard
/// library) that speaks the two protocols' answers — Elasticsearch's bulk API (`errors` and per-item
/// reasons) and Splunk's HEC (token check, `{"text": …}` errors) — and records every request.
@Suite(.serialized) struct SIEMUploadTests {
    static let script = #"""
    import http.server, socketserver, sys, json, os, threading
    d = sys.argv[1]
    lock = threading.Lock()
    flaky = {'n': 0}
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def reply(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code); self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get('Content-Length', 0))).decode()
            with lock:
                with open(d + '/requests', 'a') as f:
                    f.write(json.dumps({'path': self.path, 'auth': self.headers.get('Authorization'), 'type': self.headers.get('Content-Type'), 'body': body}) + '\n')
            if self.path.startswith('/flaky'):
                flaky['n'] += 1
                if flaky['n'] == 1: return self.reply(503, {'text': 'busy'})
            if '/_bulk' in self.path:
                lines = [json.loads(l) for l in body.splitlines() if l]
                items = []
                for meta, doc in zip(lines[0::2], lines[1::2]):
                    action = list(meta)[0]
                    if doc.get('bad'): items.append({action: {'status': 400, 'error': {'type': 'mapper_parsing_exception', 'reason': 'bad doc'}}})
                    else: items.append({action: {'status': 201, 'result': 'created'}})
                return self.reply(200, {'took': 1, 'errors': any('error' in list(i.values())[0] for i in items), 'items': items})
            if self.path == '/api/v1/ingest/humio-structured':
                if self.headers.get('Authorization') != 'Bearer good-token': return self.reply(401, {'error': 'bad token'})
                groups = json.loads(body)
                ok = isinstance(groups, list) and all(isinstance(g.get('events'), list) for g in groups)
                return self.reply(200 if ok else 400, {})
            if '/services/collector' in self.path:
                if self.headers.get('Authorization') != 'Splunk good-token': return self.reply(403, {'text': 'Invalid token', 'code': 4})
                return self.reply(200, {'text': 'Success', 'code': 0})
            self.reply(404, {'text': 'no'})
    class T(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
    s = T(('127.0.0.1', 0), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(d + '/ports.tmp', 'w') as f: f.write('http=%d\n' % s.server_address[1])
    os.rename(d + '/ports.tmp', d + '/ports')
    sys.stdin.read()
    """#

    final class Server {
        let server: PythonServer
        init() throws { server = try PythonServer(script: SIEMUploadTests.script, tag: "siem") }

        var base: String { "http://127.0.0.1:\(server.ports["http"] ?? "0")" }

        /// Every request so far, and clears the record.
        func requests() throws -> [[String: Any]] {
            let path = server.directory + "/requests"
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: path)
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
    }

    static func lines(_ request: [String: Any]) -> [[String: Any]] {
        ((request["body"] as? String) ?? "").split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test func elasticBulkBatchesIndexesAndReportsRefusals() throws {
        let server = try Server()
        let (rows, log) = try net("""
            SELECT * FROM elastic_upload(
                query={ SELECT _value AS N, if(condition=_value = 3, then='other') AS _index FROM range(end=5) },
                addresses='\(server.base)', index='quarry', chunk_size=2, username='u', password='p', pipeline='geo')
            """)
        #expect(rows.map { $0.member("Rows").intValue } == [2, 2, 1], "\(rows) \(log)")
        #expect(rows.allSatisfy { $0.member("Response").intValue == 200 && $0.member("Error").isNull })
        let requests = try server.requests()
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0["path"] as? String == "/_bulk?pipeline=geo" && $0["auth"] as? String == "Basic dTpw" && $0["type"] as? String == "application/x-ndjson" })
        let all = requests.flatMap(Self.lines)
        let metas = all.enumerated().filter { $0.offset % 2 == 0 }.map { ($0.element["index"] as? [String: Any])?["_index"] as? String }
        let docs = all.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        #expect(metas == ["quarry", "quarry", "quarry", "other", "quarry"])
        #expect(docs.map { $0["N"] as? Int } == [0, 1, 2, 3, 4] && docs.allSatisfy { $0["_index"] == nil })

        // Refused documents are named; an API key wins over a user; create for data streams.
        let (refused, _) = try net("""
            SELECT * FROM elastic_upload(query={ SELECT 1 AS A, _value = 1 AS bad FROM range(end=2) },
                addresses='\(server.base)', index='q', api_key='a2V5', username='u', action='create')
            """)
        #expect(refused.first?.member("Error").stringValue == "1 of 2 documents refused: bad doc", "\(refused)")
        let second = try server.requests()
        #expect(second.first?["auth"] as? String == "ApiKey a2V5")
        #expect((Self.lines(second[0]).first?["create"] as? [String: Any])?["_index"] as? String == "q")
    }

    @Test func splunkEventsCarryTheirFieldsAndBadTokensAreReported() throws {
        let server = try Server()
        let (rows, log) = try net("""
            SELECT * FROM splunk_upload(
                query={ SELECT _value AS N, 1700000000 + _value AS T, if(condition=_value = 1, then='special') AS _splunk_index FROM range(end=3) },
                url='\(server.base)/services/collector/event', token='good-token', index='main', hostname='web01', timestamp_field='T')
            """)
        #expect(rows.count == 1 && rows.first?.member("Rows").intValue == 3 && rows.first?.member("Error").isNull == true, "\(rows) \(log)")
        let request = try #require(try server.requests().first)
        #expect(request["auth"] as? String == "Splunk good-token")
        let events = Self.lines(request)
        #expect(events.map { $0["index"] as? String } == ["main", "special", "main"])
        #expect(events.allSatisfy { $0["host"] as? String == "web01" && $0["source"] as? String == "velociraptor" && $0["sourcetype"] as? String == "vql" })
        #expect(events.map { $0["time"] as? Double } == [1_700_000_000, 1_700_000_001, 1_700_000_002])
        #expect(events.map { ($0["event"] as? [String: Any])?["N"] as? Int } == [0, 1, 2])
        #expect(events.allSatisfy { ($0["event"] as? [String: Any])?["_splunk_index"] == nil })

        let (bad, badLog) = try net("""
            SELECT * FROM splunk_upload(query={ SELECT 1 AS A FROM scope() }, url='\(server.base)/services/collector/event', token='wrong', max_retries=2)
            """)
        #expect(bad.first?.member("Response").intValue == 403 && bad.first?.member("Error").stringValue == "status 403: Invalid token", "\(bad)")
        #expect(try server.requests().count == 1, "a refused token is not retried")
        #expect(badLog.contains { $0.contains("Invalid token") })
    }

    @Test func logScaleGroupsCarryTagsTimesAndAttributes() throws {
        let server = try Server()
        let (rows, log) = try net("""
            SELECT * FROM logscale_upload(
                query={ SELECT _value AS N, 'web0' + str(str=_value) AS Host, 1700000000 + _value AS _ts FROM range(end=3) },
                apibaseurl='\(server.base)/', ingest_token='good-token', event_batch_size=2, tag_fields=['Host=host', 'Missing'])
            """)
        #expect(rows.map { $0.member("Rows").intValue } == [2, 1], "\(rows) \(log)")
        #expect(rows.allSatisfy { $0.member("Error").isNull })
        let requests = try server.requests()
        #expect(requests.allSatisfy { $0["path"] as? String == "/api/v1/ingest/humio-structured" && $0["auth"] as? String == "Bearer good-token" })
        let groups = requests.compactMap { try? JSONSerialization.jsonObject(with: Data(($0["body"] as? String ?? "").utf8)) as? [[String: Any]] }.flatMap { $0 }
        #expect(groups.map { ($0["tags"] as? [String: String])?["host"] } == ["web00", "web01", "web02"])
        let events = groups.compactMap { ($0["events"] as? [[String: Any]])?.first }
        #expect(events.map { $0["timestamp"] as? Int } == [1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000])
        #expect(events.map { ($0["attributes"] as? [String: Any])?["N"] as? Int } == [0, 1, 2])

        let (bad, _) = try net("""
            SELECT * FROM logscale_upload(query={ SELECT 1 AS A FROM scope() }, apibaseurl='\(server.base)', ingest_token='wrong', max_retries=3)
            """)
        #expect(bad.first?.member("Response").intValue == 401 && bad.first?.member("Error").stringValue?.hasPrefix("status 401") == true, "\(bad)")
        #expect(try server.requests().count == 1, "a refused token is not retried")
    }

    @Test func aServerErrorIsRetriedWithBackoff() throws {
        let server = try Server()
        let started = Date()
        let (rows, _) = try net("""
            SELECT * FROM splunk_upload(query={ SELECT 1 AS A FROM scope() }, url='\(server.base)/flaky/services/collector/event',
                token='good-token', retry_wait=1)
            """)
        #expect(rows.first?.member("Response").intValue == 200 && rows.first?.member("Error").isNull == true, "\(rows)")
        #expect(try server.requests().count == 2)
        #expect(Date().timeIntervalSince(started) >= 1)
    }
}
