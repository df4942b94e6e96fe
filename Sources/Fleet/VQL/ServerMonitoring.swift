import FleetCore
import Foundation
import VQL

/// Server VQL over client event monitoring: `monitoring()` reads the event rows stored for an
/// artifact, `watch_monitoring()` follows the rows as they arrive (never ends) — the ground that
/// detection on the server stands on. From an analyst's query both read GET /events with the
/// analyst's key (reader role); inside the server (`LocalFleet`) `monitoring()` reads the datastore
/// and `watch_monitoring()` subscribes to the event broadcaster, so rows arrive as they are stored.
enum ServerMonitoring {
    static var plugins: [PluginDeclaration] { [monitoring, watchMonitoring] }

    /// Rows per page read from the server, and how often `watch_monitoring` asks for new rows.
    static let pageRows = 5_000
    static let pollSeconds = 1.0

    /// A time argument (timestamp, seconds since 1970 or a date string) as seconds since 1970.
    static func seconds(_ ctx: CallContext, _ name: String) -> String? {
        guard let value = ctx.value(name), case .timestamp(let time)? = Timestamps.parse(value) else { return nil }
        return String(time.seconds)
    }

    /// Pages of event rows after a cursor, one at a time, as VQL rows.
    final class Pager: @unchecked Sendable {
        let fetch: @Sendable (EventCursor?) throws -> [EventRow]
        var after: EventCursor?
        var pending: [Value] = []
        var ended = false

        init(fetch: @escaping @Sendable (EventCursor?) throws -> [EventRow]) {
            self.fetch = fetch
        }

        /// Pages from the server's API (GET /events).
        convenience init(api: APIClient, query: [String: String?]) {
            self.init { after in try runBlocking { try await api.eventsPage(query, after: after, rows: ServerMonitoring.pageRows) } }
        }

        /// Pages straight from the datastore (a query running inside the server).
        convenience init(local: LocalFleet, query: EventQuery) {
            let store = local.server.store
            self.init { after in
                var page = query
                page.after = after
                page.limit = ServerMonitoring.pageRows
                return try runBlocking { [page] in try await store.events(page) }
            }
        }

        /// The next row; nil when the stored rows are exhausted (for now).
        func next() throws -> Value? {
            if pending.isEmpty && !ended {
                let page = try fetch(after)
                if let last = page.last { after = last.cursor }
                ended = page.count < ServerMonitoring.pageRows
                pending = page.reversed().map(EventRows.value)
            }
            return pending.popLast()
        }
    }

    static let monitoring = PluginDeclaration(
        name: "monitoring",
        summary: "Event rows that agents sent for a CLIENT_EVENT artifact, oldest first, with ClientId and _ts (when the server received the row) before the row's own columns.",
        arguments: [
            ArgumentSpec("client_id", .string, "Only this client's rows (default: every client's)."),
            ArgumentSpec("artifact", .string, required: true, "The event artifact (or Artifact/Source)."),
            ArgumentSpec("source", .string, "A named source of the artifact."),
            ArgumentSpec("start_time", .any, "Rows received from this time (timestamp, epoch seconds or date string)."),
            ArgumentSpec("end_time", .any, "Rows received before this time."),
        ],
        examples: ["SELECT * FROM monitoring(artifact='Linux.Events.SSHLogin', start_time=now() - 3600)"]
    ) { ctx in
        let (artifact, source) = ServerPlugins.artifactAndSource(ctx)
        guard let artifact else { throw ServerPluginError("monitoring: artifact is required") }
        let pager: Pager
        if let local = LocalFleet.of(ctx) {
            pager = Pager(local: local, query: EventQuery(
                artifact: artifact, source: source, clientId: ctx.string("client_id"),
                since: seconds(ctx, "start_time").flatMap(Double.init), until: seconds(ctx, "end_time").flatMap(Double.init)))
        } else {
            pager = Pager(api: try ServerPlugins.api(ctx), query: [
                "artifact": artifact, "source": source, "client_id": ctx.string("client_id"),
                "since": seconds(ctx, "start_time"), "until": seconds(ctx, "end_time"),
            ])
        }
        return GeneratorCursor {
            try ctx.context.cancellation.check()
            return try pager.next()
        }
    }

    static let watchMonitoring = PluginDeclaration(
        name: "watch_monitoring",
        summary: "Follows a CLIENT_EVENT artifact: yields every event row the server stores from now on, from every client, as monitoring() shows them; never ends.",
        arguments: [
            ArgumentSpec("artifact", .string, required: true, "The event artifact (or Artifact/Source)."),
            ArgumentSpec("source", .string, "A named source of the artifact."),
            ArgumentSpec("client_id", .string, "Only this client's rows."),
        ],
        examples: ["SELECT ClientId, Tick FROM watch_monitoring(artifact='Linux.Events.SSHLogin')"]
    ) { ctx in
        let (artifact, source) = ServerPlugins.artifactAndSource(ctx)
        guard let artifact else { throw ServerPluginError("watch_monitoring: artifact is required") }
        if let local = LocalFleet.of(ctx) { return follow(local, artifact: artifact, source: source, clientId: ctx.string("client_id"), ctx) }
        let api = try ServerPlugins.api(ctx)
        let pager = Pager(api: api, query: [
            "artifact": artifact, "source": source, "client_id": ctx.string("client_id"), "since": String(Date().timeIntervalSince1970),
        ])
        let cancellation = ctx.context.cancellation
        return GeneratorCursor {
            while true {
                try cancellation.check()
                if let row = try pager.next() { return row }
                let deadline = Date().addingTimeInterval(pollSeconds)
                while Date() < deadline {
                    try cancellation.check()
                    Thread.sleep(forTimeInterval: 0.05)
                }
                pager.ended = false
            }
        }
    }

    /// Rows of an artifact as the broadcaster hands them over, filtered by source and client.
    static func follow(_ local: LocalFleet, artifact: String, source: String?, clientId: String?, _ ctx: CallContext) -> RowCursor {
        let follower = EventFollower(local.server.eventReaders, artifact: artifact)
        let cancellation = ctx.context.cancellation
        return GeneratorCursor(onClose: { follower.stop() }) {
            while true {
                try cancellation.check()
                guard let row = follower.next(wait: 0.1) else {
                    let lost = follower.takeDropped()
                    if lost > 0 { ctx.log(.warning, "watch_monitoring(\(artifact)): \(lost) rows dropped: the query is slower than the events") }
                    continue
                }
                if let source, row.source != source { continue }
                if let clientId, row.clientId != clientId { continue }
                return EventRows.value(row)
            }
        }
    }
}
