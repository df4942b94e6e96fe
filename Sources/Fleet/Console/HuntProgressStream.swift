import FleetCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import QuarryConsole

/// Live hunt progress for the console as server-sent events, so counters move without a reload:
/// `GET /hunts/ID/progress` for one hunt's page, `GET /hunts/progress` for the hunts list. The
/// server's own push path wakes a stream — every finished flow is published as a
/// `System.Flow.Completion` event, and one that names a hunt makes the stream re-read at once; a
/// re-read every 5 s covers flows finished on other frontends and newly scheduled clients. Only
/// changes are sent, with a comment line every 15 s so a closed connection is noticed; a stream
/// ends after 30 minutes (EventSource reconnects by itself).
extension FleetServer {
    static let progressStreamSeconds: Double = 1800

    func huntProgressStream(_ id: String) async throws -> Response {
        _ = try await huntView(id)  // 404 before any stream starts
        return progressStream(wakesOn: { $0.contains(id) }) { [self] in
            let view = try await huntView(id)
            return Self.progressJSON(HuntRowView(view.hunt, states: view.states))
        }
    }

    /// One flow's state, rows and uploaded bytes, for its page: woken by its own completion, and
    /// read every 5 s while it runs (rows arrive in batches).
    func flowProgressStream(_ id: String) async throws -> Response {
        guard try await store.flow(id) != nil else { throw APIFailure(status: 404, message: "no flow \(id)") }
        return progressStream(wakesOn: { $0.contains(id) }) { [self] in
            guard let flow = try await store.flow(id) else { return "{\"state\":\"deleted\"}" }
            return "{\"state\":\"\(Self.jsonEscaped(flow.state.rawValue))\",\"rows\":\(flow.rows),\"uploaded\":\(flow.uploadedBytes),"
                + "\"final\":\(flow.state.isFinal)}"
        }
    }

    /// The newest hunts of the list page, as one object keyed by hunt ID.
    func huntsProgressStream() -> Response {
        progressStream(wakesOn: { $0.contains("\"H.") }) { [self] in
            var parts: [String] = []
            for hunt in try await store.hunts().sorted(by: { $0.createdAt > $1.createdAt }).prefix(Self.consoleHuntRows) {
                let row = HuntRowView(hunt, states: try await huntView(hunt.huntId).states)
                parts.append("\"\(Self.jsonEscaped(hunt.huntId))\":" + Self.progressJSON(row))
            }
            return "{" + parts.joined(separator: ",") + "}"
        }
    }

    static func progressJSON(_ row: HuntRowView) -> String {
        "{\"done\":\(row.done),\"total\":\(row.total),\"running\":\(row.running),\"round\":\(row.round),\"state\":\"\(jsonEscaped(row.state))\"}"
    }

    static func jsonEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    /// A server-sent event stream of `read()`'s text, sent when it changes: read again when a flow
    /// completion whose row `wakesOn` accepts arrives, and every 5 s (at most every 250 ms).
    func progressStream(wakesOn: @escaping @Sendable (String) -> Bool, read: @escaping @Sendable () async throws -> String) -> Response {
        let woken = NIOLockedValueBox(true)
        let subscription = eventReaders.subscribe(artifact: FlowCompletion.artifact) { row in
            if wakesOn(row.json) { woken.withLockedValue { $0 = true } }
            return true
        }
        var headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store"]
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
            defer { eventReaders.unsubscribe(subscription) }
            var last = ""
            var lastRead = Date.distantPast
            var lastWrite = Date()
            let end = Date().addingTimeInterval(Self.progressStreamSeconds)
            while Date() < end {
                let wake = woken.withLockedValue { value -> Bool in
                    defer { value = false }
                    return value
                }
                if wake || Date().timeIntervalSince(lastRead) >= 5 {
                    lastRead = Date()
                    let text = try await read()
                    if text != last {
                        last = text
                        try await writer.write(ByteBuffer(string: "event: progress\ndata: \(text)\n\n"))
                        lastWrite = Date()
                    }
                }
                if Date().timeIntervalSince(lastWrite) >= 15 {
                    try await writer.write(ByteBuffer(string: ": still here\n\n"))
                    lastWrite = Date()
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            try await writer.finish(nil)
        })
    }
}
