// The alerts, response-actions and events pages (see ConsoleTemplates for the rules: everything
// `{{escaped}}`, no inline script or style, every POST form carries the session's CSRF token).

extension ConsoleTemplates {
    static let alerts = """
        <h1>Alerts</h1>
        <form method="get" action="/alerts" class="search" data-testid="alerts-filter">
        <label for="alert-severity">Severity</label>
        <select id="alert-severity" name="severity" data-testid="alerts-severity">
        {{#severityOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/severityOptions}}
        </select>
        <label><input type="checkbox" name="open" value="1"{{#openOnly}} checked{{/openOnly}} data-testid="alerts-open"> Open only</label>
        <button type="submit" data-testid="alerts-filter-submit">Filter</button>
        </form>
        <div class="scroll">
        <table data-testid="alerts-table">
        <thead><tr><th scope="col">Time</th><th scope="col">Severity</th><th scope="col">Name</th><th scope="col">Client</th><th scope="col">Artifact</th><th scope="col">Details</th><th scope="col">Acknowledged</th></tr></thead>
        <tbody>
        {{#rows}}
        <tr data-testid="alert-row" data-alert-id="{{id}}">
        <td>{{time}}</td><td data-testid="alert-severity">{{severity}}</td><td data-testid="alert-name">{{name}}</td>
        <td>{{#clientLink}}<a href="{{clientLink}}">{{client}}</a>{{/clientLink}}{{^clientLink}}server{{/clientLink}}</td>
        <td>{{artifact}}</td><td><code>{{details}}</code></td>
        <td data-testid="alert-ack">{{^open}}by {{acknowledgedBy}} at {{acknowledgedAt}}{{/open}}{{#ackAction}}<form method="post" action="{{ackAction}}" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit" data-testid="alert-ack-button" aria-label="Acknowledge alert {{id}}">Acknowledge</button>
        </form>{{/ackAction}}</td>
        </tr>
        {{/rows}}
        </tbody>
        </table>
        </div>
        <nav aria-label="Alert pages" class="pages">{{#next}}<a href="{{next}}" data-testid="alerts-next">Older alerts</a>{{/next}}</nav>
        """

    static let actions = """
        <h1>Response actions</h1>
        <p>Actions that need REMEDIATION wait here for a second analyst when <code>response_approvals</code> is on. The requester cannot decide their own.</p>
        <div class="scroll">
        <table data-testid="actions-table">
        <thead><tr><th scope="col">Action</th><th scope="col">Client</th><th scope="col">Artifacts</th><th scope="col">Parameters</th><th scope="col">Requested by</th><th scope="col">Reason</th><th scope="col">Asked</th><th scope="col">State</th><th scope="col">Decided</th><th scope="col">Flow</th></tr></thead>
        <tbody>
        {{#rows}}
        <tr data-testid="action-row" data-action-id="{{id}}">
        <td><code>{{id}}</code></td><td><a href="{{clientLink}}">{{client}}</a></td><td>{{artifacts}}</td><td><code>{{parameters}}</code></td>
        <td>{{requester}}</td><td>{{reason}}</td><td>{{created}}</td><td data-testid="action-state">{{state}}</td><td>{{decided}}</td><td><code>{{flow}}</code></td>
        </tr>
        {{#approveAction}}
        <tr data-testid="action-decide"><td colspan="10">
        <form method="post" action="{{approveAction}}" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="reason-{{id}}">Reason</label> <input id="reason-{{id}}" name="reason" maxlength="1000" data-testid="action-reason">
        <button type="submit" data-testid="action-approve" aria-label="Approve {{id}}">Approve</button>
        </form>
        <form method="post" action="{{denyAction}}" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit" data-testid="action-deny" aria-label="Deny {{id}}">Deny</button>
        </form>
        </td></tr>
        {{/approveAction}}
        {{/rows}}
        </tbody>
        </table>
        </div>
        """

    static let events = """
        <h1>Events</h1>
        <form method="get" action="/events" class="search" data-testid="events-filter">
        <label for="event-artifact">Artifact</label>
        <select id="event-artifact" name="artifact" data-testid="events-artifact">
        {{#artifactOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/artifactOptions}}
        </select>
        <button type="submit" data-testid="events-submit">Show</button>
        </form>
        {{#hasArtifact}}<p data-testid="events-count">The newest {{count}} rows of <code>{{artifact}}</code>{{#truncated}} (older rows not shown){{/truncated}}</p>{{/hasArtifact}}
        <div class="scroll">
        <table data-testid="events-table">
        <thead><tr><th scope="col">Time</th><th scope="col">Client</th><th scope="col">Source</th><th scope="col">Row</th></tr></thead>
        <tbody>
        {{#rows}}<tr data-testid="event-row"><td>{{time}}</td><td><a href="{{clientLink}}">{{client}}</a></td><td>{{source}}</td><td><code>{{json}}</code></td></tr>{{/rows}}
        </tbody>
        </table>
        </div>
        """
}
