import FleetCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import QuarryConsole

/// `GET /hunts/ID/progress`: the hunt's progress as server-sent events, so the hunt page's counters
/// move without a reload. The server's own push path wakes it — every finished flow is published
/// as a `System.Flow.Completion` event, and a completion that names the hunt makes the stream
/// re-read the hunt at once; a re-read every 5 s covers flows finished on other frontends and
/// newly scheduled clients. Only changes are sent, with a comment line every 15 s so a closed
/// connection is noticed; a stream ends after 30 minutes (EventSource reconnects by itself).
extension FleetServer {
    static let progressStreamSeconds: Double = 1800

    func huntProgressStream(_ id: String) async throws -> Response {
        _ = try await huntView(id)  // 404 before any stream starts
        let woken = NIOLockedValueBox(true)
        let subscription = eventReaders.subscribe(artifact: FlowCompletion.artifact) { row in
            if row.json.contains(id) { woken.withLockedValue { $0 = true } }
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
                    let view = try await huntView(id)
                    let row = HuntRowView(view.hunt, states: view.states)
                    let text = "{\"done\":\(row.done),\"total\":\(row.total),\"running\":\(row.running),\"round\":\(row.round),\"state\":\"\(row.state)\"}"
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
