import FleetCore
import Foundation
import Hummingbird

extension FleetServer {
    /// Rows per chunk read from the datastore and written to the connection.
    static let resultChunkRows = 500
    /// A results response that has not moved for this long is cut (the client stopped reading).
    static let resultStallSeconds: Int64 = 60

    /// GET /results?hunt_id=&flow_id=&client_id=&artifact=&source=&round=&limit=&after=: one page of
    /// rows as JSON lines (`application/x-ndjson`), streamed from the datastore a chunk at a time, so
    /// the server holds one chunk whatever the page size. A page holds `limit` rows (default
    /// `results_page_rows`, at most `max_results_page_rows`); a shorter page is the last. The next
    /// page starts `after` the last row's cursor (`FLOW/SEQ/INDEX`, `ResultRow.cursor`).
    /// `column=` and `contains=` as a column filter; 400 when only one is given or it cannot apply.
    static func resultFilter(_ q: Hummingbird.Parameters) throws -> ResultFilter? {
        let column = q.string("column") ?? "", contains = q.string("contains") ?? ""
        if column.isEmpty && contains.isEmpty { return nil }
        let filter = ResultFilter(column: column, contains: contains)
        if let problem = filter.problem { throw APIFailure(status: 400, message: problem) }
        return filter
    }

    func results(_ request: Request, _ context: FleetRequestContext) async throws -> Response {
        try context.requireCaller().require("READ_RESULTS")
        let q = request.uri.queryParameters
        var after: ResultCursor?
        if let text = q.string("after") {
            guard let cursor = ResultCursor(text) else { throw APIFailure(status: 400, message: "after=\(text): expected FLOW/SEQ/INDEX") }
            after = cursor
        }
        for (name, value) in [("round", q.string("round")), ("limit", q.string("limit")), ("offset", q.string("offset"))] {
            if let value, Int(value) == nil { throw APIFailure(status: 400, message: "\(name)=\(value): expected a number") }
        }
        let query = ResultQuery(
            huntId: q.string("hunt_id"), flowId: q.string("flow_id"), clientId: q.string("client_id"), artifact: q.string("artifact"),
            source: q.string("source"), round: q.int("round"),
            limit: ServerLimits.page(q.int("limit"), default: config.limits.resultsPageRows, max: config.limits.maxResultsPageRows),
            offset: max(0, q.int("offset") ?? 0), after: after, filter: try Self.resultFilter(q))
        let store = self.store
        let channel = context.channel
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson"],
            body: ResponseBody { writer in
                let watchdog = StallWatchdog(channel: channel, seconds: Self.resultStallSeconds)
                defer { watchdog.stop() }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                try await store.streamResults(query, chunk: Self.resultChunkRows) { rows in
                    var buffer = ByteBuffer()
                    for row in rows {
                        buffer.writeBytes(try encoder.encode(row))
                        buffer.writeInteger(UInt8(ascii: "\n"))
                    }
                    try await writer.write(buffer)
                    watchdog.beat()
                    // A chunk is read and written without suspending when the socket keeps up: let
                    // other requests run between chunks, or a few big reads hold every thread.
                    await Task.yield()
                }
                try await writer.finish(nil)
            })
    }
}
