/// The console's static files, compiled into the binary (no CDN, no build step): served at
/// /assets/NAME with a long cache lifetime, as the Content-Security-Policy allows only
/// same-origin scripts and styles.
public enum ConsoleAssets {
    /// The file served at /assets/`name`, with its content type; nil for an unknown name.
    public static func file(named name: String) -> (contentType: String, body: String)? {
        switch name {
        case "console.css": ("text/css; charset=utf-8", css)
        case "console.js": ("text/javascript; charset=utf-8", script)
        default: nil
        }
    }

    static let css = """
        :root { --fg: #1d2330; --muted: #5b6477; --line: #d6dae3; --accent: #1f5fbf; --bg: #fbfcfe; --warn: #9b1c1c; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; justify-content: space-between; align-items: center; padding: .5rem 1rem; border-bottom: 1px solid var(--line); background: #fff; }
        nav a { margin-right: 1rem; color: var(--accent); }
        .brand { font-weight: 700; margin-right: 1.5rem; }
        main { padding: 1rem 1.5rem; max-width: 1400px; }
        main:focus { outline: none; }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
        .skip { position: absolute; left: -9999px; }
        .skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .25rem .5rem; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: 14px; }
        th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: #eef1f6; position: sticky; top: 0; }
        tbody tr:hover { background: #f2f6fd; }
        .scroll { overflow-x: auto; }
        td { max-width: 40rem; overflow-wrap: anywhere; }
        .label { display: inline-block; padding: 0 .4rem; border: 1px solid var(--line); border-radius: .6rem; background: #eef3fb; }
        .labels { list-style: none; padding: 0; }
        .labels li { margin: .25rem 0; }
        form.inline { display: inline; }
        form.search, form.login { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin: .5rem 0; }
        form.login { flex-direction: column; align-items: flex-start; max-width: 22rem; }
        input, select, button { font: inherit; padding: .3rem .5rem; }
        button { cursor: pointer; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: .25rem; }
        .logout button { background: #fff; color: var(--accent); }
        .message { border-left: 4px solid var(--warn); padding: .4rem .75rem; background: #fdf0f0; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        .pages a { margin-right: 1rem; }
        .sources { padding-left: 1.2rem; }
        """

    static let script = """
        // Quarry console: keyboard helpers and live hunt progress (a hunt's page, the hunts list); every page works without this file.
        // "/" focuses the search field; "g c" and "g h" go to the clients and hunts.
        (function () {
          "use strict";
          var pending = "";
          document.addEventListener("keydown", function (event) {
            var target = event.target;
            var typing = target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA");
            if (typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
            if (event.key === "/") {
              var search = document.getElementById("client-search");
              if (search) { event.preventDefault(); search.focus(); search.select(); }
              return;
            }
            if (pending === "g" && event.key === "c") { window.location.assign("/clients"); }
            if (pending === "g" && event.key === "h") { window.location.assign("/hunts"); }
            pending = event.key === "g" ? "g" : "";
          });
          // Shows progress `p` ({done, total, state, round}) in `box`: its bar and counter, and the
          // state and round where `stateBox` and `roundBox` have a place for them.
          function showProgress(box, stateBox, p, stateSelector) {
            var bar = box.querySelector("progress");
            if (bar) { bar.max = p.total; bar.value = p.done; bar.setAttribute("aria-label", p.done + " of " + p.total + " clients done"); }
            var text = box.querySelector("[data-testid=hunt-progress]");
            if (text) { text.textContent = p.done + "/" + p.total; }
            var state = stateBox.querySelector(stateSelector);
            if (state) { state.textContent = p.state; }
            var round = stateBox.querySelector("[data-testid=hunt-row-round]");
            if (round) { round.textContent = p.round; }
          }
          // A hunt page follows its progress live (server-sent events from /hunts/ID/progress).
          var live = document.querySelector("[data-progress-url]");
          if (live && window.EventSource) {
            new EventSource(live.getAttribute("data-progress-url")).addEventListener("progress", function (event) {
              showProgress(live, document, JSON.parse(event.data), "[data-testid=hunt-state]");
            });
          }
          // A flow page follows its state and row count live (/flows/ID/progress) and reloads
          // once when a running flow ends, to show its results and uploads.
          var flowFacts = document.querySelector("[data-flow-progress-url]");
          if (flowFacts && window.EventSource) {
            var wasFinal = flowFacts.getAttribute("data-flow-final") === "true";
            var source = new EventSource(flowFacts.getAttribute("data-flow-progress-url"));
            source.addEventListener("progress", function (event) {
              var p = JSON.parse(event.data);
              var state = flowFacts.querySelector("[data-testid=flow-state]");
              var rows = flowFacts.querySelector("[data-testid=flow-rows]");
              if (state) { state.textContent = p.state; }
              if (rows) { rows.textContent = String(p.rows); }
              if (p.final) {
                source.close();
                if (!wasFinal) { window.location.reload(); }
              }
            });
          }
          // The hunts list follows every listed hunt (/hunts/progress: one object keyed by hunt ID).
          var table = document.querySelector("[data-hunts-progress-url]");
          if (table && window.EventSource) {
            new EventSource(table.getAttribute("data-hunts-progress-url")).addEventListener("progress", function (event) {
              var hunts = JSON.parse(event.data);
              table.querySelectorAll("[data-hunt-id]").forEach(function (row) {
                var p = hunts[row.getAttribute("data-hunt-id")];
                if (p) { showProgress(row, row, p, "[data-testid=hunt-row-state]"); }
              });
            });
          }
        })();
        """
}
