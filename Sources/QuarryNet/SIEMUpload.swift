import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import VQL

/// `elastic_upload()` and `splunk_upload()`: rows of a query forwarded to a SIEM as they come —
/// Elasticsearch's bulk API (NDJSON, one action line per row) or Splunk's HTTP Event Collector
/// (one JSON event per row). Rows are sent in batches of `chunk_size`, or sooner when the oldest
/// row of a batch has waited `wait_time` seconds (checked as rows arrive), and the last batch when
/// the query ends. Each batch is one row of output: where it went, how many rows, the answer's
/// status and the start of its body, and an error (failed requests are retried `max_retries`
/// times with exponential backoff; an Elasticsearch answer with `"errors": true` names the first
/// refused document). Nothing is buffered beyond one batch.
public enum SIEMUpload {
    /// Most bytes of an answer kept in the output row.
    static let answerBytes = 4096
    static let schema = Schema(["Url", "Rows", "Response", "Content", "Error"])

    static let common: [ArgumentSpec] = [
        ArgumentSpec("query", .query, required: true, "The rows to upload."),
        ArgumentSpec("chunk_size", .int, "Rows per request (default 1000)."),
        ArgumentSpec("wait_time", .int, "Send a batch once its first row has waited this many seconds (default 2)."),
        ArgumentSpec("threads", .int, "Accepted; batches are sent one after the other, in order."),
        ArgumentSpec("skip_verify", .bool, "Do not verify the server's certificate."),
        ArgumentSpec("root_ca", .string, "PEM certificates trusted in addition to the system's."),
        ArgumentSpec("max_retries", .int, "Retries of a failed request (default 3)."),
        ArgumentSpec("retry_wait", .int, "Seconds before the first retry, doubled each time (default 2)."),
    ]

    public static let elastic = PluginDeclaration(
        name: "elastic_upload", summary: "Uploads a query's rows to Elasticsearch through the bulk API, in batches; one row per batch sent.",
        arguments: common + [
            ArgumentSpec("addresses", .stringList, "Elasticsearch nodes (the first is used; default http://127.0.0.1:9200)."),
            ArgumentSpec("index", .string, "The index; a row's own `_index` column wins (and is not uploaded)."),
            ArgumentSpec("type", .string, "A document type (old Elasticsearch versions)."),
            ArgumentSpec("username", .string, "HTTP basic authentication user."), ArgumentSpec("password", .string, "Its password."),
            ArgumentSpec("api_key", .string, "An API key (base64 id:key); wins over username and password."),
            ArgumentSpec("pipeline", .string, "An ingest pipeline."), ArgumentSpec("action", .string, "index (default) or create (data streams)."),
            ArgumentSpec("disable_ssl_security", .bool, "Do not verify the server's certificate."),
            ArgumentSpec("cloud_id", .string, "Not supported."), ArgumentSpec("secret", .string, "Not supported."),
            ArgumentSpec("max_memory_buffer", .int, "Accepted; at most one batch is held."),
        ],
        columns: columns,
        examples: ["SELECT Rows, Error FROM elastic_upload(query={ SELECT 1 AS A FROM scope() }, addresses='http://127.0.0.1:9', index='quarry', max_retries=0)"],
        permissions: [.network]
    ) { ctx in
        guard ctx.context.require(.network, for: "elastic_upload") else { return ArrayCursor([]) }
        let base = ((ctx.strings("addresses") ?? []).first { !$0.isEmpty } ?? "http://127.0.0.1:9200").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        var url = base + "/_bulk"
        if let pipeline = ctx.string("pipeline"), !pipeline.isEmpty { url += "?pipeline=" + (pipeline.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? pipeline) }
        var headers = [("Content-Type", "application/x-ndjson")]
        if let key = ctx.string("api_key"), !key.isEmpty {
            headers.append(("Authorization", "ApiKey " + key))
        } else if let user = ctx.string("username"), !user.isEmpty {
            headers.append(("Authorization", "Basic " + Data((user + ":" + (ctx.string("password") ?? "")).utf8).base64EncodedString()))
        }
        let index = ctx.string("index")
        let type = ctx.string("type")
        let action = ctx.string("action") == "create" ? "create" : "index"
        return try Batcher(ctx, url: url, headers: headers, insecure: ctx.bool("disable_ssl_security") ?? false) { row in
            var document = row
            var meta: [(String, Value)] = []
            let own = document["_index"].flatMap { $0.isNull ? nil : $0 }
            document["_index"] = nil
            if let own { meta.append(("_index", own)) } else if let index { meta.append(("_index", .string(index))) }
            if let type, !type.isEmpty { meta.append(("_type", .string(type))) }
            return JSONWriter.string(.dict(Dict([(action, .dict(Dict(meta)))]))) + "\n" + JSONWriter.string(.dict(document)) + "\n"
        } check: { status, body in
            guard status / 100 == 2 else { return "status \(status)" }
            guard let answer = try? JSONParser.parse(bytes: body), answer.member("errors").isTruthy else { return nil }
            let items = answer.member("items").listElements ?? []
            let refused = items.compactMap { item -> String? in
                guard case .dict(let d) = item, let result = d.pairs.first?.1, !result.member("error").isNull else { return nil }
                return result.member("error").member("reason").stringValue ?? JSONWriter.string(result.member("error"))
            }
            return "\(refused.count) of \(items.count) documents refused" + (refused.first.map { ": " + $0 } ?? "")
        }
    }

    public static let splunk = PluginDeclaration(
        name: "splunk_upload", summary: "Uploads a query's rows to Splunk's HTTP Event Collector, in batches; one row per batch sent.",
        arguments: common + [
            ArgumentSpec("url", .string, required: true, "The collector's URL (…/services/collector/event)."),
            ArgumentSpec("token", .string, required: true, "The HEC token."),
            ArgumentSpec("index", .string, "The index; a row's `_splunk_index` column wins."),
            ArgumentSpec("source", .string, "The source (default velociraptor, as Velociraptor's); a row's `_splunk_source` wins."),
            ArgumentSpec("sourcetype", .string, "The sourcetype (default vql); a row's `_splunk_source_type` wins."),
            ArgumentSpec("hostname", .string, "The events' host (default this machine's name)."),
            ArgumentSpec("hostname_field", .string, "A column holding each event's host (wins over hostname)."),
            ArgumentSpec("timestamp_field", .string, "A column holding each event's time (a timestamp or epoch seconds)."),
            ArgumentSpec("secret", .string, "Not supported."), ArgumentSpec("idle_conn_timeout", .int, "Accepted; each batch opens its own connection."),
        ],
        columns: columns,
        examples: ["SELECT Rows, Error FROM splunk_upload(query={ SELECT 1 AS A FROM scope() }, url='http://127.0.0.1:9/services/collector/event', token='x', max_retries=0)"],
        permissions: [.network]
    ) { ctx in
        guard ctx.context.require(.network, for: "splunk_upload"), let url = ctx.string("url"), let token = ctx.string("token") else { return ArrayCursor([]) }
        let index = ctx.string("index")
        let source = ctx.string("source") ?? "velociraptor"
        let sourcetype = ctx.string("sourcetype") ?? "vql"
        let host = ctx.string("hostname") ?? ProcessInfo.processInfo.hostName
        let hostField = ctx.string("hostname_field")
        let timeField = ctx.string("timestamp_field")
        return try Batcher(ctx, url: url, headers: [("Authorization", "Splunk " + token), ("Content-Type", "application/json")], insecure: false) { row in
            var event = row
            func take(_ column: String) -> Value? {
                defer { event[column] = nil }
                return event[column]
            }
            let ownIndex = take("_splunk_index")?.stringValue
            let ownSource = take("_splunk_source")?.stringValue
            let ownType = take("_splunk_source_type")?.stringValue
            var pairs: [(String, Value)] = []
            if let timeField, let time = row[timeField] { pairs.append(("time", .double(Self.epoch(time)))) }
            pairs.append(("host", .string(hostField.flatMap { row[$0]?.stringValue } ?? host)))
            pairs.append(("source", .string(ownSource ?? source)))
            pairs.append(("sourcetype", .string(ownType ?? sourcetype)))
            if let chosen = ownIndex ?? index { pairs.append(("index", .string(chosen))) }
            pairs.append(("event", .dict(event)))
            return JSONWriter.string(.dict(Dict(pairs))) + "\n"
        } check: { status, body in
            guard status / 100 == 2 else {
                let text = (try? JSONParser.parse(bytes: body))?.member("text").stringValue
                return "status \(status)" + (text.map { ": " + $0 } ?? "")
            }
            return nil
        }
    }

    static let columns = [
        ColumnSpec("Url", .string, "Where the batch went."), ColumnSpec("Rows", .int, "Rows in the batch."),
        ColumnSpec("Response", .int, "The answer's HTTP status (0 when none came)."), ColumnSpec("Content", .string, "The start of the answer."),
        ColumnSpec("Error", .string, "Why the batch was not (wholly) accepted; NULL when it was."),
    ]

    /// Seconds since 1970 from a timestamp, a number, or a time string.
    static func epoch(_ value: Value) -> Double {
        switch value.reduced() {
        case .timestamp(let t): return Double(t.nanoseconds) / 1e9
        case .int(let n): return Double(n)
        case .double(let d): return d
        case .string(let s): return Double(s) ?? GoTime.parseAny(s).map { Double($0.nanoseconds) / 1e9 } ?? 0
        default: return 0
        }
    }

    /// Pulls rows, batches them, sends each batch, and yields one row per batch.
    final class Batcher: RowCursor, @unchecked Sendable {
        let ctx: CallContext
        let source: RowCursor
        let url: String
        let request: HTTPClientPlugin.RequestSpec
        let encode: (Dict) -> String
        let check: (Int, [UInt8]) -> String?
        let chunk: Int
        let wait: Double
        let retries: Int
        let retryWait: Double
        /// Turns the concatenated encoded rows into the request body (LogScale wants a JSON array).
        let frame: (String) -> String
        var finished = false

        init(
            _ ctx: CallContext, url: String, headers: [(String, String)], insecure: Bool, chunk: Int? = nil, wait: Double? = nil,
            timeout: Int64 = 120, frame: @escaping (String) -> String = { $0 }, encode: @escaping (Dict) -> String,
            check: @escaping (Int, [UInt8]) -> String?
        ) throws {
            guard let rows = try ctx.rows("query") else { throw HTTPFailure(message: "query= is required") }
            self.ctx = ctx
            source = rows
            self.url = url
            request = HTTPClientPlugin.RequestSpec(
                method: .POST, headers: [("User-Agent", "Quarry")] + headers, insecure: insecure || (ctx.bool("skip_verify") ?? false), roots: ClientTLS.roots(ctx),
                timeout: timeout)
            self.encode = encode
            self.check = check
            self.frame = frame
            self.chunk = chunk ?? Int(clamping: max(1, ctx.int("chunk_size") ?? 1000))
            self.wait = wait ?? Double(max(0, ctx.int("wait_time") ?? 2))
            retries = Int(clamping: max(0, min(10, ctx.int("max_retries") ?? 3)))
            retryWait = Double(max(0, ctx.int("retry_wait") ?? 2))
        }

        func next() throws -> Value? {
            guard !finished else { return nil }
            var body = ""
            var count = 0
            var started: Date?
            while count < chunk {
                try ctx.checkCancelled()
                guard let row = try source.next() else {
                    finished = true
                    break
                }
                let value = row.materialized()
                let dict: Dict
                if case .dict(let d) = value { dict = d } else { dict = Dict([("_value", value)]) }
                body += encode(dict)
                count += 1
                if started == nil { started = Date() }
                if let started, Date().timeIntervalSince(started) >= wait { break }
            }
            guard count > 0 else { return nil }
            return send(Array(frame(body).utf8), rows: count)
        }

        private func send(_ body: [UInt8], rows: Int) -> Value {
            var attempt = 0
            var delay = retryWait
            while true {
                let result = Bridge.run(ctx) { [request, url] in try await request.fetch(url, body: body) }
                var status = 0
                var content: [UInt8] = []
                var problem: String?
                switch result {
                case .success(let fetched):
                    status = fetched.status
                    content = fetched.body
                    problem = check(status, content)
                case .failure(let error):
                    problem = "\(error)"
                }
                let retryable = status == 0 || status == 429 || status >= 500
                if problem == nil || !retryable || attempt >= retries {
                    if let problem { ctx.context.logOnce(.warning, "\(ctx.name): \(url): \(problem)") }
                    return .dict(Dict(schema: SIEMUpload.schema, values: [
                        .string(url), .int(Int64(rows)), .int(Int64(status)), .string(bytes: Array(content.prefix(SIEMUpload.answerBytes))),
                        problem.map { .string($0) } ?? .null,
                    ]))
                }
                attempt += 1
                var waited = 0.0
                while waited < delay, !ctx.context.cancellation.isCancelled {
                    Thread.sleep(forTimeInterval: 0.1)
                    waited += 0.1
                }
                delay *= 2
            }
        }

        func close() { source.close() }
    }
}
