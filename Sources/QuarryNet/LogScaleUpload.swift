import Foundation
import VQL

/// `logscale_upload()`: a query's rows to CrowdStrike Falcon LogScale (formerly Humio) through its
/// structured ingest API, batched like the other SIEM uploads (SIEMUpload.Batcher): one output row
/// per request sent.
public enum LogScaleUpload {
    public static let plugin = PluginDeclaration(
        name: "logscale_upload",
        summary: "Uploads a query's rows to LogScale (Humio) through the structured ingest API, in batches; one row per batch sent.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to upload."),
            ArgumentSpec("apibaseurl", .string, required: true, "The LogScale URL; events go to APIBASEURL/api/v1/ingest/humio-structured."),
            ArgumentSpec("ingest_token", .string, required: true, "The repository's ingest token."),
            ArgumentSpec("threads", .int, "Accepted; batches are sent one after the other, in order."),
            ArgumentSpec("http_timeout", .int, "Seconds a request may take (default 10)."),
            ArgumentSpec("max_retries", .int, "Retries of a failed request (default 7200 in Velociraptor; Quarry retries at most 10 times, backing off from 2 s)."),
            ArgumentSpec("root_ca", .string, "PEM certificates trusted in addition to the system's."),
            ArgumentSpec("skip_verify", .bool, "Do not verify the server's certificate."),
            ArgumentSpec("batching_timeout_ms", .int, "Send a batch once its first row has waited this long (default 3000 ms)."),
            ArgumentSpec("event_batch_size", .int, "Rows per request (default 2000)."),
            ArgumentSpec("tag_fields", .stringList, "Columns sent as LogScale tags; FIELD=NAME renames the tag."),
            ArgumentSpec("stats_interval", .int, "Accepted; each batch is reported as an output row instead."),
            ArgumentSpec("debug", .bool, "Accepted."),
        ],
        columns: SIEMUpload.columns,
        examples: ["SELECT Rows, Error FROM logscale_upload(query={ SELECT 1 AS A FROM scope() }, apibaseurl='http://127.0.0.1:9', ingest_token='t', max_retries=0)"],
        permissions: [.network]
    ) { ctx in
        guard ctx.context.require(.network, for: "logscale_upload"), let base = ctx.string("apibaseurl"), let token = ctx.string("ingest_token") else {
            return ArrayCursor([])
        }
        let url = base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/api/v1/ingest/humio-structured"
        let tags: [(field: String, tag: String)] = (ctx.strings("tag_fields") ?? []).compactMap { spec in
            let parts = spec.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard let field = parts.first, !field.isEmpty else { return nil }
            return (field, parts.count == 2 && !parts[1].isEmpty ? parts[1] : field)
        }
        let millis = max(0, ctx.int("batching_timeout_ms") ?? 3000)
        return try SIEMUpload.Batcher(
            ctx, url: url, headers: [("Authorization", "Bearer " + token), ("Content-Type", "application/json")], insecure: false,
            chunk: Int(clamping: max(1, ctx.int("event_batch_size") ?? 2000)), wait: Double(millis) / 1000,
            timeout: max(1, ctx.int("http_timeout") ?? 10),
            frame: { "[" + String($0.dropLast()) + "]" }
        ) { row in
            // One group per row: its own tags, one event. The event's time is the row's `_ts`
            // (epoch seconds, as monitoring rows carry it) or now.
            var tagPairs: [(String, Value)] = []
            for (field, tag) in tags {
                if let value = row[field], !value.isNull { tagPairs.append((tag, .string(value.stringValue ?? JSONWriter.string(value)))) }
            }
            let seconds = row["_ts"].map(SIEMUpload.epoch) ?? Date().timeIntervalSince1970
            let event = Dict([("timestamp", .int(Int64(seconds * 1000))), ("attributes", .dict(row))])
            return JSONWriter.string(.dict(Dict([("tags", .dict(Dict(tagPairs))), ("events", .list([.dict(event)]))]))) + ","
        } check: { status, body in
            guard status / 100 == 2 else {
                let text = String(decoding: body.prefix(200), as: UTF8.self)
                return "status \(status)" + (text.isEmpty ? "" : ": " + text)
            }
            return nil
        }
    }
}
