import FleetCore

/// One flow in the console: what was collected where and by whom, its state, its sources with one
/// page of results each (read from the datastore after a cursor, like a hunt's), exports of every
/// row, its uploads and the end of its log.
public struct FlowPageView: Sendable {
    public var flow: FlowRowView
    public var clientId: String
    public var clientLink: String
    public var huntLink: String?
    public var sources: [CountView]
    public var results: ResultTableView
    public var exportCSV: String?
    public var exportJSONL: String?
    public var filter: ResultFilterView?
    public var uploads: [UploadRowView]
    public var logs: [String]
    /// Log lines not shown (only the last `maxLogLines` are).
    public var logsHidden: Int
    /// "true" once the flow can no longer change: the page's script reloads it when a running
    /// flow ends, to show the results it then has.
    public var final: String

    public static let maxLogLines = 200

    public init(_ flow: FlowRecord, sources: [CountView], results: ResultTableView, uploads: [UploadRecord], logs: [String]) {
        self.flow = FlowRowView(flow)
        clientId = flow.clientId
        clientLink = "/clients/" + ConsoleText.pathSegment(flow.clientId)
        huntLink = flow.huntId.map { "/hunts/" + ConsoleText.pathSegment($0) }
        self.sources = sources
        self.results = results
        self.uploads = uploads.map(UploadRowView.init)
        self.logs = Array(logs.suffix(Self.maxLogLines))
        logsHidden = max(0, logs.count - Self.maxLogLines)
        final = flow.state.isFinal ? "true" : "false"
    }
}

/// The column filter form above a results table: which column, what text, and the link back to
/// every row when a filter is on. The datastore applies it (`ResultQuery.filter`).
public struct ResultFilterView: Sendable {
    public struct Column: Sendable {
        public var name: String
        public var selected: Bool
    }
    public var action: String
    public var artifact: String
    public var source: String
    public var columns: [Column]
    public var contains: String
    public var clear: String?

    /// The form for `table`'s columns (and the filtered one, even when no row shows it now).
    public init(action: String, artifact: String, source: String, table: ResultTableView, column: String?, contains: String?, clear: String?) {
        var names = table.columns.filter { $0 != "Client" && $0 != "FQDN" }
        if let column, !column.isEmpty, !names.contains(column) { names.insert(column, at: 0) }
        self.action = action
        self.artifact = artifact
        self.source = source
        columns = names.map { Column(name: $0, selected: $0 == column) }
        self.contains = contains ?? ""
        self.clear = clear
    }
}

/// The results part of a hunt's or a flow's page (the `results` partial's values).
public struct ConsoleResultSection: Sendable {
    public var sources: [CountView]
    public var results: ResultTableView
    public var exportCSV: String?
    public var exportJSONL: String?
    public var filter: ResultFilterView?
    public init(sources: [CountView], results: ResultTableView) {
        self.sources = sources
        self.results = results
    }
}

/// An uploaded file of a flow.
public struct UploadRowView: Sendable {
    public var name: String
    public var size: Int64
    public var sha256: String
    /// Where the console serves the file (a download, audited like the API's).
    public var href: String
    public init(_ upload: UploadRecord) {
        name = upload.name
        size = upload.size
        sha256 = upload.sha256
        href = "/flows/" + ConsoleText.pathSegment(upload.flowId) + "/uploads/" + ConsoleText.pathSegment(upload.sha256)
    }
}

/// What changed between two rounds of a scheduled hunt: rows new in this round and rows gone
/// since the previous one, per client that reported in both (a client missing from a round is
/// not compared).
public struct HuntDiffPageView: Sendable {
    public var huntId: String
    public var huntLink: String
    public var round: Int
    public var previous: Int
    public var added: ResultTableView
    public var removed: ResultTableView
    public var addedCount: Int
    public var removedCount: Int
    /// The comparison one round earlier, when there is one.
    public var earlier: String?

    public init(huntId: String, round: Int, previous: Int, added: [ResultRow], removed: [ResultRow]) {
        self.huntId = huntId
        huntLink = "/hunts/" + ConsoleText.pathSegment(huntId)
        self.round = round
        self.previous = previous
        self.added = ResultTableView(rows: added, next: nil, first: nil)
        self.removed = ResultTableView(rows: removed, next: nil, first: nil)
        addedCount = added.count
        removedCount = removed.count
        earlier = previous > 1 ? ConsoleText.link(huntLink + "/diff", [("round", String(previous))]) : nil
    }
}

enum ConsoleFlowTemplates {
    static let huntDiff = """
        <h1>Hunt <a href="{{huntLink}}"><code>{{huntId}}</code></a>: round {{round}} against round {{previous}}</h1>
        {{#earlier}}<p><a href="{{earlier}}" data-testid="diff-earlier">Round {{previous}} against the one before</a></p>{{/earlier}}
        <h2>New in round {{round}} (<span data-testid="diff-added-count">{{addedCount}}</span>)</h2>
        {{#added}}<div class="scroll"><table data-testid="diff-added">
        <thead><tr>{{#columns}}<th scope="col">{{.}}</th>{{/columns}}</tr></thead>
        <tbody>{{#rows}}<tr data-testid="diff-added-row">{{#cells}}<td>{{.}}</td>{{/cells}}</tr>{{/rows}}</tbody>
        </table></div>{{/added}}
        <h2>Gone since round {{previous}} (<span data-testid="diff-removed-count">{{removedCount}}</span>)</h2>
        {{#removed}}<div class="scroll"><table data-testid="diff-removed">
        <thead><tr>{{#columns}}<th scope="col">{{.}}</th>{{/columns}}</tr></thead>
        <tbody>{{#rows}}<tr data-testid="diff-removed-row">{{#cells}}<td>{{.}}</td>{{/cells}}</tr>{{/rows}}</tbody>
        </table></div>{{/removed}}
        """


    static let flow = """
        <h1>Flow <code>{{#flow}}{{id}}{{/flow}}</code></h1>
        <dl class="facts" data-testid="flow-facts" {{#flow}}data-flow-progress-url="{{link}}/progress"{{/flow}} data-flow-final="{{final}}" aria-live="polite">
        {{#flow}}
        <dt>Artifacts</dt><dd>{{artifacts}}</dd>
        <dt>State</dt><dd data-testid="flow-state">{{state}}</dd>
        <dt>Created</dt><dd>{{created}}</dd>
        <dt>By</dt><dd>{{creator}}</dd>
        <dt>Rows</dt><dd data-testid="flow-rows">{{rows}}</dd>
        <dt>Errors</dt><dd>{{errors}}</dd>
        {{/flow}}
        <dt>Client</dt><dd><a href="{{clientLink}}" data-testid="flow-client">{{clientId}}</a></dd>
        {{#huntLink}}<dt>Hunt</dt><dd><a href="{{huntLink}}">{{huntLink}}</a></dd>{{/huntLink}}
        </dl>
        <h2>Results</h2>
        {{> results}}
        <h2>Uploads</h2>
        <table data-testid="uploads-table">
        <thead><tr><th scope="col">File</th><th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead>
        <tbody>{{#uploads}}<tr><td><a href="{{href}}" download data-testid="upload-link">{{name}}</a></td><td>{{size}}</td><td><code>{{sha256}}</code></td></tr>{{/uploads}}</tbody>
        </table>
        <h2>Log</h2>
        {{#logsHidden}}<p>{{logsHidden}} earlier lines not shown.</p>{{/logsHidden}}
        <pre class="log" data-testid="flow-log">{{#logs}}{{.}}
        {{/logs}}</pre>
        """
}
