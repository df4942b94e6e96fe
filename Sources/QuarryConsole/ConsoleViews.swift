import FleetCore
import Foundation

// What each console page shows, as plain values the templates read (swift-mustache reads stored
// properties by name). Built from datastore records; every string is escaped when rendered.

/// The signed-in user as the page header shows them.
public struct HeaderView: Sendable {
    public var name: String
    public var role: String
    public var isAdmin: Bool
    public var csrf: String
    public init(name: String, role: String, isAdmin: Bool, csrf: String) {
        self.name = name
        self.role = role
        self.isAdmin = isAdmin
        self.csrf = csrf
    }
}

/// A choice in a `<select>`.
public struct OptionView: Sendable {
    public var value: String
    public var label: String
    public var selected: Bool
}

/// One row of the clients table.
public struct ClientRowView: Sendable {
    public var id: String
    public var link: String
    public var hostname: String
    public var os: String
    public var labels: [String]
    public var lastSeen: String
    public var connected: Bool

    public init(_ client: ClientRecord, connected: Bool) {
        id = client.clientId
        link = "/clients/" + ConsoleText.pathSegment(client.clientId)
        hostname = client.hostname
        os = client.os
        labels = client.labels
        lastSeen = ConsoleText.time(client.lastSeen)
        self.connected = connected
    }
}

/// The clients page: the search form and the matching clients (at most `ClientsPageView.maxRows`).
public struct ClientsPageView: Sendable {
    public static let maxRows = 500
    public var query: String
    public var seenOptions: [OptionView]
    public var rows: [ClientRowView]
    public var matched: Int
    public var truncated: Bool

    public init(search: ClientSearch, query: String, clients: [(ClientRecord, Bool)], now: Double) {
        self.query = query
        seenOptions = ClientSearch.Seen.allCases.map { OptionView(value: $0.rawValue, label: $0.label, selected: $0 == search.seen) }
        let matching = clients.filter { search.matches($0.0, now: now) }.sorted { ($0.0.hostname, $0.0.clientId) < ($1.0.hostname, $1.0.clientId) }
        matched = matching.count
        truncated = matching.count > Self.maxRows
        rows = matching.prefix(Self.maxRows).map { ClientRowView($0.0, connected: $0.1) }
    }
}

/// One flow in a client's list.
public struct FlowRowView: Sendable {
    public var id: String
    /// The flow's own page.
    public var link: String
    public var artifacts: String
    public var state: String
    public var created: String
    public var creator: String
    public var rows: Int
    public var errors: String
    public var hunt: String

    public init(_ flow: FlowRecord) {
        id = flow.flowId
        link = "/flows/" + ConsoleText.pathSegment(flow.flowId)
        artifacts = flow.request.artifacts.joined(separator: ", ")
        state = flow.state.rawValue
        created = ConsoleText.time(flow.createdAt)
        creator = flow.creator
        rows = flow.rows
        errors = flow.errors.joined(separator: "; ")
        hunt = flow.huntId ?? ""
    }
}

/// A client's page: its facts, labels (with the forms to change them when the role may), its flows.
public struct ClientPageView: Sendable {
    public var id: String
    public var action: String
    public var hostname: String
    public var fqdn: String
    public var os: String
    public var kernel: String
    public var ips: String
    public var enrolled: String
    public var lastSeen: String
    public var connected: Bool
    public var revoked: Bool
    public var labels: [String]
    public var canLabel: Bool
    /// The collect page's address, when the user may start collections.
    public var collectLink: String?
    public var flows: [FlowRowView]

    public init(_ client: ClientRecord, connected: Bool, canLabel: Bool, flows: [FlowRecord]) {
        id = client.clientId
        action = "/clients/" + ConsoleText.pathSegment(client.clientId) + "/labels"
        hostname = client.hostname
        fqdn = client.fqdn
        os = client.os
        kernel = client.kernel
        ips = client.ips.joined(separator: ", ")
        enrolled = ConsoleText.time(client.enrolledAt)
        lastSeen = ConsoleText.time(client.lastSeen)
        self.connected = connected
        revoked = client.revoked
        labels = client.labels
        self.canLabel = canLabel
        self.flows = flows.sorted { $0.createdAt > $1.createdAt }.prefix(200).map(FlowRowView.init)
    }
}

/// One hunt with its progress in the current round.
public struct HuntRowView: Sendable {
    public var id: String
    public var link: String
    public var description: String
    public var artifacts: String
    public var state: String
    public var created: String
    public var round: Int
    public var done: Int
    public var total: Int
    public var running: Int

    /// `states`: flows of the current round per state (as `HuntView.states`).
    public init(_ hunt: HuntRecord, states: [String: Int]) {
        id = hunt.huntId
        link = "/hunts/" + ConsoleText.pathSegment(hunt.huntId)
        description = hunt.description
        artifacts = hunt.request.artifacts.joined(separator: ", ")
        state = hunt.state.rawValue
        created = ConsoleText.time(hunt.createdAt)
        round = hunt.round
        total = states.values.reduce(0, +)
        running = (states[FlowState.running.rawValue] ?? 0) + (states[FlowState.scheduled.rawValue] ?? 0)
        done = total - running
    }
}

/// A count by name (flow states, result sources).
public struct CountView: Sendable {
    public var name: String
    public var count: Int
    public var link: String
    public var selected: Bool
    public init(name: String, count: Int, link: String = "", selected: Bool = false) {
        self.name = name
        self.count = count
        self.link = link
        self.selected = selected
    }
}

/// The results table of a hunt page: one page of rows read from the datastore, with the link on.
public struct ResultTableView: Sendable {
    /// One row's cells, in the order of `columns`.
    public struct Row: Sendable {
        public var cells: [String]
    }

    public static let maxColumns = 40
    public static let maxCellCharacters = 2000
    public var columns: [String]
    public var rows: [Row]
    public var next: String?
    public var first: String?

    /// `rows` as a table: the client and FQDN, then the union of the rows' fields (sorted, at most
    /// `maxColumns`). `next` and `first` are the links to the following and the first page.
    public init(rows source: [ResultRow], next: String?, first: String?) {
        let objects = source.map { row in (row, (try? JSONSerialization.jsonObject(with: Data(row.json.utf8))) as? [String: Any] ?? [:]) }
        var names = Set<String>()
        for (_, object) in objects { names.formUnion(object.keys) }
        let fields = Array(names.sorted().prefix(Self.maxColumns))
        columns = ["Client", "FQDN"] + fields
        rows = objects.map { row, object in
            Row(cells: [row.clientId, row.fqdn] + fields.map { ConsoleText.cell(object[$0]) })
        }
        self.next = next
        self.first = first
    }
}

/// The hunt page: the hunt, its progress, its sources and a page of results.
public struct HuntPageView: Sendable {
    public var hunt: HuntRowView
    public var creator: String
    public var expires: String
    public var schedule: String
    public var states: [CountView]
    public var sources: [CountView]
    public var results: ResultTableView
    /// The column filter form over the results (nil before there are results).
    public var filter: ResultFilterView?
    /// Links that download every row of the source shown (nil before there are results).
    public var exportCSV: String?
    public var exportJSONL: String?
    /// The changes since the previous round, for a hunt past its first round.
    public var diffLink: String?
    /// The state changes offered (start, stop, archive), with the address each form posts to;
    /// empty for roles that may not change hunts.
    public var actions: [HuntActionView] = []

    public init(_ hunt: HuntRecord, states: [String: Int], sources: [CountView], results: ResultTableView) {
        self.hunt = HuntRowView(hunt, states: states)
        creator = hunt.creator
        expires = ConsoleText.time(hunt.expiresAt)
        schedule = hunt.schedule ?? ""
        self.states = states.sorted { $0.key < $1.key }.map { CountView(name: $0.key, count: $0.value) }
        self.sources = sources
        self.results = results
        if hunt.round > 1 { diffLink = "/hunts/" + ConsoleText.pathSegment(hunt.huntId) + "/diff" }
    }
}

/// A hunt state change the hunt page offers as a button.
public struct HuntActionView: Sendable {
    public var name: String
    public var label: String
    public var action: String

    /// The changes that make sense from `state` (as the server allows them).
    public static func offered(for hunt: HuntRecord, now: Double) -> [HuntActionView] {
        let base = "/hunts/" + ConsoleText.pathSegment(hunt.huntId) + "/"
        var names: [(String, String)] = []
        switch hunt.state {
        case .paused, .stopped:
            if hunt.expiresAt > now { names.append(("start", "Start")) }
            names.append(("archive", "Archive"))
        case .running: names += [("stop", "Stop"), ("archive", "Archive")]
        default: break
        }
        return names.map { HuntActionView(name: $0.0, label: $0.1, action: base + $0.0) }
    }
}

/// One audit log entry.
public struct AuditRowView: Sendable {
    public var time: String
    public var user: String
    public var action: String
    public var target: String
    public var details: String
    public var remote: String
    public init(_ entry: AuditEntry) {
        time = ConsoleText.time(entry.time)
        user = entry.user
        action = entry.action
        target = entry.target
        details = String(entry.details.prefix(ResultTableView.maxCellCharacters))
        remote = entry.remote
    }
}

/// Text helpers for the views: times, URL parts, table cells.
public enum ConsoleText {
    /// A time as ISO 8601 in UTC (empty for zero).
    public static func time(_ seconds: Double) -> String {
        guard seconds > 0 else { return "" }
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: seconds))
    }

    /// `text` percent-encoded for one path segment.
    public static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""
    }

    /// A path with query parameters (nil values left out), percent-encoded.
    public static func link(_ path: String, _ query: [(String, String?)]) -> String {
        let items = query.compactMap { name, value in value.map { pathSegment(name) + "=" + pathSegment($0) } }
        return items.isEmpty ? path : path + "?" + items.joined(separator: "&")
    }

    /// A result value as table text: strings as they are, anything else as JSON; cut when long.
    public static func cell(_ value: Any?) -> String {
        let text: String
        switch value {
        case nil, is NSNull: text = ""
        case let string as String: text = string
        case let number as NSNumber: text = number.stringValue
        case let other?:
            text = (try? JSONSerialization.data(withJSONObject: other, options: [.sortedKeys, .fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        return text.count > ResultTableView.maxCellCharacters ? String(text.prefix(ResultTableView.maxCellCharacters)) + "…" : text
    }
}
