import FleetCore
import Foundation

/// The clients page's search, as a pure function of the records: words match the host name, FQDN,
/// client ID, OS, addresses or a label (case-insensitive, every word must match); `label:NAME`
/// needs that exact label; `seen` keeps clients seen within a window (or not seen for one).
public struct ClientSearch: Sendable, Equatable {
    /// The last-seen choices the page offers, by their query value.
    public enum Seen: String, Sendable, CaseIterable {
        case any = ""
        case hour = "1h"
        case day = "24h"
        case week = "7d"
        case quietDay = "-24h"

        public var label: String {
            switch self {
            case .any: "any time"
            case .hour: "in the last hour"
            case .day: "in the last day"
            case .week: "in the last week"
            case .quietDay: "not for a day or more"
            }
        }

        /// Whether a client last seen at `lastSeen` passes at `now`.
        func admits(_ lastSeen: Double, now: Double) -> Bool {
            switch self {
            case .any: true
            case .hour: now - lastSeen <= 3600
            case .day: now - lastSeen <= 86400
            case .week: now - lastSeen <= 7 * 86400
            case .quietDay: now - lastSeen > 86400
            }
        }
    }

    public var words: [String]
    public var labels: [String]
    public var seen: Seen

    /// Parses the page's `q` and `seen` parameters (an unknown `seen` is "any time"; the text is cut at 256 bytes).
    public init(query: String?, seen: String?) {
        let text = String((query ?? "").utf8.prefix(256)) ?? ""
        var words: [String] = []
        var labels: [String] = []
        for part in text.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            if part.lowercased().hasPrefix("label:"), part.count > 6 {
                labels.append(String(part.dropFirst(6)).lowercased())
            } else {
                words.append(part.lowercased())
            }
        }
        self.words = words
        self.labels = labels
        self.seen = Seen(rawValue: seen ?? "") ?? .any
    }

    /// Whether `client` matches at `now`.
    public func matches(_ client: ClientRecord, now: Double) -> Bool {
        guard seen.admits(client.lastSeen, now: now) else { return false }
        let clientLabels = client.labels.map { $0.lowercased() }
        guard labels.allSatisfy(clientLabels.contains) else { return false }
        let fields = [client.hostname, client.fqdn, client.clientId, client.os] + client.ips + client.labels
        let haystack = fields.map { $0.lowercased() }
        return words.allSatisfy { word in haystack.contains { $0.contains(word) } }
    }
}
