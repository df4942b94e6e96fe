// The console's pages as Mustache templates, compiled into the binary. `{{name}}` is HTML-escaped
// by swift-mustache (& < > " '); the only unescaped insertion is the layout's `{{{body}}}`, which is a
// page these templates rendered. No inline script or style (the Content-Security-Policy forbids
// them): behaviour is in /assets/console.js, looks in /assets/console.css.

enum ConsoleTemplates {
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Quarry</title>
        <link rel="stylesheet" href="/assets/console.css">
        <script src="/assets/console.js" defer></script>
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        {{#header}}
        <header>
        <nav aria-label="Main">
        <span class="brand">Quarry</span>
        <a href="/clients" data-testid="nav-clients">Clients</a>
        <a href="/hunts" data-testid="nav-hunts">Hunts</a>
        <a href="/alerts" data-testid="nav-alerts">Alerts</a>
        <a href="/actions" data-testid="nav-actions">Response actions</a>
        <a href="/events" data-testid="nav-events">Events</a>
        {{#isAdmin}}<a href="/audit" data-testid="nav-audit">Audit log</a>{{/isAdmin}}
        </nav>
        <form method="post" action="/logout" class="logout">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <span data-testid="current-user">{{name}} ({{role}})</span>
        <button type="submit" data-testid="logout">Sign out</button>
        </form>
        </header>
        {{/header}}
        <main id="main" tabindex="-1">
        {{#message}}<p class="message" role="alert" data-testid="message">{{message}}</p>{{/message}}
        {{{body}}}
        </main>
        </body>
        </html>
        """

    static let login = """
        <h1>Sign in</h1>
        <form method="post" action="/login" class="login" data-testid="login-form">
        <input type="hidden" name="login_token" value="{{loginToken}}">
        <label for="login-username">User name</label>
        <input id="login-username" name="username" autocomplete="username" required autofocus value="{{userName}}" data-testid="login-username">
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required data-testid="login-password">
        <button type="submit" data-testid="login-submit">Sign in</button>
        </form>
        """

    static let clients = """
        <h1>Clients</h1>
        <form method="get" action="/clients" class="search" role="search">
        <label for="client-search">Search</label>
        <input id="client-search" name="q" value="{{query}}" placeholder="host name, label:NAME, OS, IP (press /)" data-testid="client-search">
        <label for="client-seen">Last seen</label>
        <select id="client-seen" name="seen" data-testid="client-seen">
        {{#seenOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/seenOptions}}
        </select>
        <button type="submit" data-testid="client-search-submit">Search</button>
        </form>
        <p data-testid="clients-count">{{matched}} clients{{#truncated}} (the first 500 shown; narrow the search){{/truncated}}</p>
        <table data-testid="clients-table">
        <thead><tr><th scope="col">Host name</th><th scope="col">Client ID</th><th scope="col">OS</th><th scope="col">Labels</th><th scope="col">Last seen</th><th scope="col">Online</th></tr></thead>
        <tbody>
        {{#rows}}
        <tr data-testid="client-row" data-client-id="{{id}}">
        <td><a href="{{link}}" data-testid="client-link">{{hostname}}</a></td>
        <td><code>{{id}}</code></td>
        <td>{{os}}</td>
        <td>{{#labels}}<span class="label" data-testid="client-label">{{.}}</span> {{/labels}}</td>
        <td>{{lastSeen}}</td>
        <td>{{#connected}}yes{{/connected}}{{^connected}}no{{/connected}}</td>
        </tr>
        {{/rows}}
        </tbody>
        </table>
        """

    static let client = """
        <h1 data-testid="client-hostname">{{hostname}}</h1>
        <dl class="facts" data-testid="client-info">
        <dt>Client ID</dt><dd><code data-testid="client-id">{{id}}</code></dd>
        <dt>FQDN</dt><dd>{{fqdn}}</dd>
        <dt>OS</dt><dd>{{os}}</dd>
        <dt>Kernel</dt><dd>{{kernel}}</dd>
        <dt>Addresses</dt><dd>{{ips}}</dd>
        <dt>Enrolled</dt><dd>{{enrolled}}</dd>
        <dt>Last seen</dt><dd>{{lastSeen}}</dd>
        <dt>Online</dt><dd>{{#connected}}yes{{/connected}}{{^connected}}no{{/connected}}{{#revoked}} (revoked){{/revoked}}</dd>
        </dl>
        <h2>Labels</h2>
        <ul class="labels" data-testid="client-labels">
        {{#labels}}
        <li><span class="label" data-testid="client-label">{{.}}</span>
        {{#canLabel}}<form method="post" action="{{action}}" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="remove" value="{{.}}">
        <button type="submit" data-testid="label-remove" aria-label="Remove label {{.}}">Remove</button>
        </form>{{/canLabel}}</li>
        {{/labels}}
        </ul>
        {{#canLabel}}
        <form method="post" action="{{action}}" class="inline" data-testid="label-form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="label-add">New label</label>
        <input id="label-add" name="add" required maxlength="128" data-testid="label-add">
        <button type="submit" data-testid="label-submit">Add label</button>
        </form>
        {{/canLabel}}
        <h2>Flows</h2>
        {{#collectLink}}<p><a href="{{collectLink}}" class="button" data-testid="collect-link">Collect an artifact…</a></p>{{/collectLink}}
        <table data-testid="flows-table">
        <thead><tr><th scope="col">Flow</th><th scope="col">Artifacts</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">By</th><th scope="col">Rows</th><th scope="col">Hunt</th><th scope="col">Errors</th></tr></thead>
        <tbody>
        {{#flows}}
        <tr data-testid="flow-row"><td><a href="{{link}}" data-testid="flow-link"><code>{{id}}</code></a></td><td>{{artifacts}}</td><td>{{state}}</td><td>{{created}}</td><td>{{creator}}</td><td>{{rows}}</td><td>{{hunt}}</td><td>{{errors}}</td></tr>
        {{/flows}}
        </tbody>
        </table>
        """

    static let hunts = """
        <h1>Hunts</h1>
        {{#newHunt}}<p><a href="/hunts/new" class="button" data-testid="new-hunt-link">New hunt…</a></p>{{/newHunt}}
        <table data-testid="hunts-table" data-hunts-progress-url="/hunts/progress">
        <thead><tr><th scope="col">Hunt</th><th scope="col">Description</th><th scope="col">Artifacts</th><th scope="col">State</th><th scope="col">Round</th><th scope="col">Progress</th><th scope="col">Created</th></tr></thead>
        <tbody>
        {{#rows}}
        <tr data-testid="hunt-row" data-hunt-id="{{id}}">
        <td><a href="{{link}}" data-testid="hunt-link"><code>{{id}}</code></a></td>
        <td>{{description}}</td><td>{{artifacts}}</td><td data-testid="hunt-row-state">{{state}}</td><td data-testid="hunt-row-round">{{round}}</td>
        <td><progress value="{{done}}" max="{{total}}" aria-label="{{done}} of {{total}} clients done"></progress> <span data-testid="hunt-progress">{{done}}/{{total}}</span></td>
        <td>{{created}}</td>
        </tr>
        {{/rows}}
        </tbody>
        </table>
        """

    static let hunt = """
        {{#hunt}}
        <h1>Hunt <code data-testid="hunt-id">{{id}}</code></h1>
        <dl class="facts">
        <dt>Description</dt><dd>{{description}}</dd>
        <dt>Artifacts</dt><dd>{{artifacts}}</dd>
        <dt>State</dt><dd data-testid="hunt-state">{{state}}</dd>
        <dt>Round</dt><dd>{{round}}</dd>
        <dt>Progress</dt><dd data-progress-url="{{link}}/progress" aria-live="polite"><progress value="{{done}}" max="{{total}}" aria-label="{{done}} of {{total}} clients done"></progress> <span data-testid="hunt-progress">{{done}}/{{total}}</span></dd>
        {{/hunt}}
        <dt>Created by</dt><dd>{{creator}}</dd>
        <dt>Expires</dt><dd>{{expires}}</dd>
        {{#schedule}}<dt>Schedule</dt><dd>{{schedule}}</dd>{{/schedule}}
        </dl>
        {{#diffLink}}<p><a href="{{diffLink}}" data-testid="hunt-diff-link">What changed since the previous round</a></p>{{/diffLink}}
        {{#actions}}<form method="post" action="{{action}}" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" data-testid="hunt-{{name}}">{{label}}</button></form>{{/actions}}
        <h2>Clients by state</h2>
        <ul data-testid="hunt-states">{{#states}}<li>{{name}}: {{count}}</li>{{/states}}</ul>
        <h2>Results</h2>
        {{> results}}
        """

    /// A page of one source's results with the source picker, export links and paging: shared by
    /// the hunt and flow pages (a partial: `{{> results}}`).
    static let results = """
        <nav aria-label="Sources"><ul class="sources">{{#sources}}<li><a href="{{link}}"{{#selected}} aria-current="true"{{/selected}}>{{name}}</a> ({{count}} rows)</li>{{/sources}}</ul></nav>
        {{#exportCSV}}<p class="export">Every row of this source: <a href="{{exportCSV}}" data-testid="export-csv" download>CSV</a>{{/exportCSV}}{{#exportJSONL}} · <a href="{{exportJSONL}}" data-testid="export-jsonl" download>JSON lines</a></p>{{/exportJSONL}}
        {{#filter}}<form method="get" action="{{action}}" class="filter" role="search" data-testid="results-filter">
        <input type="hidden" name="artifact" value="{{artifact}}"><input type="hidden" name="source" value="{{source}}">
        <label>Rows whose <select name="column" data-testid="filter-column">{{#columns}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/columns}}</select></label>
        <label>contains <input name="contains" value="{{contains}}" maxlength="256" required data-testid="filter-text"></label>
        <button type="submit" data-testid="filter-submit">Filter</button>
        {{#clear}}<a href="{{clear}}" data-testid="filter-clear">Every row</a>{{/clear}}
        </form>{{/filter}}
        {{#results}}
        <div class="scroll">
        <table data-testid="results-table">
        <thead><tr>{{#columns}}<th scope="col">{{.}}</th>{{/columns}}</tr></thead>
        <tbody>
        {{#rows}}<tr data-testid="result-row">{{#cells}}<td>{{.}}</td>{{/cells}}</tr>{{/rows}}
        </tbody>
        </table>
        </div>
        <nav aria-label="Result pages" class="pages">
        {{#first}}<a href="{{first}}" data-testid="results-first">First page</a>{{/first}}
        {{#next}}<a href="{{next}}" data-testid="results-next">Next page</a>{{/next}}
        </nav>
        {{/results}}
        """

    static let audit = """
        <h1>Audit log</h1>
        <table data-testid="audit-table">
        <thead><tr><th scope="col">Time</th><th scope="col">User</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">From</th><th scope="col">Details</th></tr></thead>
        <tbody>
        {{#entries}}<tr data-testid="audit-row"><td>{{time}}</td><td>{{user}}</td><td>{{action}}</td><td>{{target}}</td><td>{{remote}}</td><td><code>{{details}}</code></td></tr>{{/entries}}
        </tbody>
        </table>
        <nav aria-label="Audit pages" class="pages">{{#next}}<a href="{{next}}" data-testid="audit-next">Older entries</a>{{/next}}</nav>
        """

    static let error = """
        <h1>{{status}}</h1>
        <p data-testid="error-message">{{text}}</p>
        <p><a href="/clients">Back to the clients</a></p>
        """
}
