// The collect page: pick an artifact, fill its typed parameter form, start the collection.

enum ConsoleCollectTemplates {
    static let collect = """
        <h1 data-testid="collect-heading">{{heading}}</h1>
        {{#clientLink}}<p><a href="{{clientLink}}" data-testid="collect-client">Back to the client</a></p>{{/clientLink}}
        <form method="get" action="{{action}}" class="search" role="search">
        <label for="artifact-search">Artifacts</label>
        <input id="artifact-search" name="q" value="{{query}}" placeholder="name or words of the description" data-testid="artifact-search">
        <button type="submit">Search</button>
        </form>
        <ul class="artifacts" data-testid="artifact-list">
        {{#artifacts}}
        <li><a href="{{link}}" data-testid="artifact-choice" data-artifact="{{name}}"{{#selected}} aria-current="true"{{/selected}}>{{name}}</a> <span class="muted">{{description}}</span></li>
        {{/artifacts}}
        </ul>
        {{#hasMore}}<p class="muted">{{moreArtifacts}} more match; narrow the search.</p>{{/hasMore}}
        {{#artifact}}
        <h2 data-testid="collect-artifact">{{artifact}}</h2>
        <p class="muted">{{artifactDescription}}</p>
        {{#hasProblems}}<ul class="problems" role="alert" data-testid="collect-problems">{{#problems}}<li>{{.}}</li>{{/problems}}</ul>{{/hasProblems}}
        <form method="post" action="{{action}}" class="parameters" data-testid="collect-form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="artifact" value="{{artifact}}">
        {{#fields}}
        <div class="field{{#error}} invalid{{/error}}" data-testid="param" data-param="{{name}}" data-type="{{type}}">
        <label for="{{id}}">{{name}} <span class="muted">({{type}})</span></label>
        {{#isBool}}<select id="{{id}}" name="{{field}}">{{#choices}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/choices}}</select>{{/isBool}}
        {{#isNumber}}<input id="{{id}}" name="{{field}}" type="number" step="{{step}}" value="{{value}}">{{/isNumber}}
        {{#isChoice}}<select id="{{id}}" name="{{field}}">{{#choices}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/choices}}</select>{{/isChoice}}
        {{#isMulti}}<select id="{{id}}" name="{{field}}" multiple>{{#choices}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/choices}}</select>{{/isMulti}}
        {{#isText}}<textarea id="{{id}}" name="{{field}}" rows="5">{{value}}</textarea>{{/isText}}
        {{#isLine}}<input id="{{id}}" name="{{field}}" value="{{value}}">{{/isLine}}
        {{#description}}<p class="hint">{{description}}</p>{{/description}}
        {{#error}}<p class="error" data-testid="param-error">{{error}}</p>{{/error}}
        </div>
        {{/fields}}
        {{#hunt}}
        <fieldset data-testid="hunt-settings"><legend>Hunt</legend>
        <div class="field"><label for="hunt-description">Description</label><input id="hunt-description" name="description" maxlength="1000" value="{{description}}"></div>
        <div class="field"><label for="hunt-labels">Only clients with one of these labels (comma-separated)</label><input id="hunt-labels" name="labels" value="{{labels}}"></div>
        <div class="field"><label for="hunt-exclude">Never clients with these labels</label><input id="hunt-exclude" name="exclude_labels" value="{{excludeLabels}}"></div>
        <div class="field"><label for="hunt-os">Only this OS (empty for any)</label><input id="hunt-os" name="os" value="{{os}}"></div>
        <div class="field"><label for="hunt-expiry">Expires after (hours)</label><input id="hunt-expiry" name="expiry_hours" type="number" min="1" value="{{expiryHours}}"></div>
        <div class="field"><label for="hunt-limit">At most this many clients (empty for all)</label><input id="hunt-limit" name="client_limit" type="number" min="1" value="{{clientLimit}}"></div>
        </fieldset>
        {{/hunt}}
        <div class="field">
        <label for="collect-timeout">Timeout (seconds, empty for the default)</label>
        <input id="collect-timeout" name="timeout" type="number" min="1" value="{{timeout}}" data-testid="collect-timeout">
        </div>
        <button type="submit" data-testid="collect-submit">{{submitLabel}}</button>
        </form>
        {{/artifact}}
        """
}
