import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Closes a connection whose response has not moved for `seconds`: a client that stops reading a
/// streamed answer would otherwise hold the server's read (and, on SQLite, a reader connection)
/// for as long as it likes. Call `beat()` whenever the response makes progress, `stop()` when done.
final class StallWatchdog: Sendable {
    private let last: NIOLockedValueBox<NIODeadline>
    private let task: NIOLockedValueBox<RepeatedTask?>

    init(channel: any Channel, seconds: Int64) {
        let last = NIOLockedValueBox(NIODeadline.now())
        self.last = last
        let limit = TimeAmount.seconds(seconds)
        let check = TimeAmount.milliseconds(max(100, min(5_000, seconds * 250)))
        task = NIOLockedValueBox(
            channel.eventLoop.scheduleRepeatedTask(initialDelay: check, delay: check) { task in
                if NIODeadline.now() - last.withLockedValue({ $0 }) > limit {
                    channel.close(promise: nil)
                    task.cancel()
                }
            })
    }

    func beat() {
        last.withLockedValue { $0 = .now() }
    }

    func stop() {
        task.withLockedValue { $0?.cancel() }
    }
}
