import AsyncHTTPClient
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat

/// Alerts reach the server as lines of a flow's log: `alert()` on the agent logs
/// `ALERT: {"name":…,"event_time":…,"details":{…}}`. Each stored log batch is read for them once
/// (batches are stored exactly once, so alerts are too); every alert is stored, audited, counted
/// in /metrics and, when `alert_webhook` is set, posted to it.
enum AlertLine {
    static let prefix = "ALERT: "

    /// The alerts in log lines (JSON objects with a "message"), bounded in number per batch.
    static func alerts(in lines: [String], clientId: String, flowId: String, artifact: String, limit: Int = 100) -> [AlertRecord] {
        var found: [AlertRecord] = []
        for line in lines where line.contains(prefix) {
            guard found.count < limit,
                  let entry = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let message = entry["message"] as? String,
                  let record = alert(fromMessage: message, clientId: clientId, flowId: flowId, artifact: artifact)
            else { continue }
            found.append(record)
        }
        return found
    }

    /// The alert in one `ALERT: {…}` log message, or nil. With `clientIdFromDetails` (a query
    /// running on the server), the client it concerns is the `client_id` (or `ClientId`) detail.
    static func alert(fromMessage message: String, clientId: String, flowId: String, artifact: String, clientIdFromDetails: Bool = false) -> AlertRecord? {
        guard message.hasPrefix(prefix),
              let record = (try? JSONSerialization.jsonObject(with: Data(message.dropFirst(prefix.count).utf8))) as? [String: Any],
              let name = record["name"] as? String, !name.isEmpty
        else { return nil }
        let details = record["details"] as? [String: Any] ?? [:]
        let detailText = (try? JSONSerialization.data(withJSONObject: details, options: [.sortedKeys, .withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let client = clientIdFromDetails ? (details["client_id"] as? String ?? details["ClientId"] as? String ?? clientId) : clientId
        return AlertRecord(
            time: Date().timeIntervalSince1970, name: name, severity: AlertSeverity.named(details["severity"] as? String),
            clientId: client, flowId: flowId, artifact: artifact, details: detailText)
    }
}

/// Alerts raised by client event artifacts travel as rows of their own event stream, named as
/// Velociraptor names its alert queue: each row is the alert's JSON (name, event_time, details)
/// plus the artifact that raised it.
public enum AlertEvents {
    public static let artifact = "Server.Internal.Alerts"

    /// The event row for an `ALERT: {…}` log message; nil for any other message.
    public static func row(fromLog message: String, artifact source: String) -> String? {
        guard message.hasPrefix(AlertLine.prefix),
              var record = (try? JSONSerialization.jsonObject(with: Data(message.dropFirst(AlertLine.prefix.count).utf8))) as? [String: Any]
        else { return nil }
        record["artifact"] = source
        return (try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The alerts in stored rows of the alert stream.
    static func alerts(in rows: [String], clientId: String, limit: Int = 100) -> [AlertRecord] {
        rows.prefix(limit).compactMap { row in
            guard let record = (try? JSONSerialization.jsonObject(with: Data(row.utf8))) as? [String: Any] else { return nil }
            let artifact = record["artifact"] as? String ?? ""
            let message = AlertLine.prefix + String(decoding: (try? JSONSerialization.data(withJSONObject: record, options: [.withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
            let line = (try? JSONSerialization.data(withJSONObject: ["message": message], options: [.withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return AlertLine.alerts(in: [line], clientId: clientId, flowId: EventStream.id(artifact: Self.artifact), artifact: artifact).first
        }
    }
}

extension FleetServer {
    /// Alerts in a log batch just stored for `flowId`.
    func raiseAlerts(fromLog lines: [String], clientId: String, flowId: String) async {
        guard lines.contains(where: { $0.contains(AlertLine.prefix) }) else { return }
        let artifact = ((try? await store.flow(flowId)) ?? nil)?.request.artifacts.joined(separator: ",") ?? ""
        for alert in AlertLine.alerts(in: lines, clientId: clientId, flowId: flowId, artifact: artifact) {
            await record(alert)
        }
    }

    /// Stores, audits, counts and forwards one alert. A datastore failure is logged: the alert
    /// is still in the flow's log it came from.
    func record(_ alert: AlertRecord) async {
        do {
            var stored = alert.bounded()
            stored.id = try await store.addAlert(stored)
            metrics.alertsRaised.increment()
            try await store.audit(AuditEntry(
                time: stored.time, user: stored.clientId.isEmpty || stored.flowId.isEmpty ? "server" : stored.clientId, action: "alert",
                target: stored.name, details: stored.details, remote: stored.flowId))
            if let url = config.alertWebhook { webhook.post(stored, to: url) }
        } catch {
            log("alert \(alert.name) from \(alert.clientId): not stored: \(error)")
        }
    }
}

/// Posts alerts as JSON to the configured URL, a few at a time, each with a short timeout; when
/// the receiver is slow or down, alerts beyond a bounded backlog are dropped from the webhook
/// (never from the datastore) and counted.
final class AlertWebhook: Sendable {
    private let inFlight = NIOLockedValueBox(0)
    private let maxInFlight = 64
    let dropped = NIOLockedValueBox(0)
    let failures = NIOLockedValueBox(0)
    private let log: @Sendable (String) -> Void

    init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    func post(_ alert: AlertRecord, to url: String) {
        let admitted = inFlight.withLockedValue { count -> Bool in
            guard count < maxInFlight else { return false }
            count += 1
            return true
        }
        guard admitted else {
            dropped.withLockedValue { $0 += 1 }
            return
        }
        Task { [self] in
            defer { inFlight.withLockedValue { $0 -= 1 } }
            // Three tries, 1 s then 3 s apart: a receiver that is busy or restarting still gets
            // the alert; a 4xx answer is final.
            for attempt in 1...3 {
                do {
                    var request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(alert)))
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                    if (200..<300).contains(response.status.code) { return }
                    log("alert webhook: \(url) answered \(response.status.code) (try \(attempt))")
                    if (400..<500).contains(response.status.code) { break }
                } catch {
                    log("alert webhook: \(url): \(error) (try \(attempt))")
                }
                if attempt < 3 { try? await Task.sleep(for: .seconds(attempt == 1 ? 1 : 3)) }
            }
            failures.withLockedValue { $0 += 1 }
        }
    }
}
