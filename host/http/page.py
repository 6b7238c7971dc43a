"""The operator's status page at ``/``: one static HTML document that renders ``/status`` itself.

Model. The server sends the same bytes every time; a few lines of inline JavaScript fetch
``status`` (relative, so the page also works behind a path prefix) at once and every 2 s and
rebuild the strategy table. Every value, strategy-provided text included (errors, breaker
reasons, ids), reaches the DOM through ``textContent`` or ``dataset``, never through HTML
parsing, so nothing a strategy writes can become markup. No external assets: the style and the
script are inline and the ``Content-Security-Policy`` sent with the page allows exactly those two
(by hash) plus requests to this origin, and nothing else.

Connections. Above the table, a line per broker connection (up or DOWN) and the venue orders go to
(for gRPC: its address, its connection breaker, its failure counts, when it last answered and its
last error), the last reconciliation with the venue ("none yet" before one), and whether the
venue's position messages agree with the ledger (the pairs that disagree now, with both
quantities), as /status has them.

Controls. Only when ``/status`` says a token is required (``server.authToken`` set) the page shows
pause / resume / restart buttons per strategy and a kill-switch engage / release button; with no
token configured it stays read-only. On the first action the page asks for the token
(``window.prompt``) and keeps it in a script variable for the page's life only (never in
storage, the URL or the DOM); it goes out as ``Authorization: Bearer`` (UTF-8). The answer, or the
error the server gave, is shown in the answer line; a 401 forgets the token, so the next action
asks again. After each action the page refreshes. Listeners are attached from the script (one on
the table, one on the kill-switch button); the markup has no event handler attributes, so the
CSP needs no ``'unsafe-inline'`` or ``'unsafe-hashes'``.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CONTENT_SECURITY_POLICY", "REFRESH_S", "STATUS_PAGE"]

REFRESH_S = 2

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; background: #fafafa; }
h1 { font-size: 1.3em; margin: 0 0 .4em; }
#summary span { margin-right: 1.5em; }
#updated { color: #666; }
table { border-collapse: collapse; margin-top: 1em; width: 100%; background: #fff; }
th, td { border: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.error, td.reload { max-width: 30em; overflow-wrap: anywhere; color: #8a1c1c; }
td.error { min-width: 10em; }
.state-running { background: #e3f6e3; }
.state-starting, .state-backoff { background: #e6effa; }
.state-paused { background: #fdf3d8; }
.state-open, .state-stopped { background: #fbe1e1; }
.engaged, .down, #answer.error { color: #b00; font-weight: bold; }
.up { color: #1a6b2a; }
#connections span { margin-right: 1.5em; }
#connections span[data-part] { display: block; margin-top: .2em; }
#answer { margin-left: 1em; }
td.actions button { font-size: .85em; padding: 0 .4em; margin: 0 .2em .2em 0; }
button { font: inherit; padding: .1em .6em; cursor: pointer; }
"""

_SCRIPT = """
"use strict";
const money = (v) => (v === null || v === undefined) ? "" : Number(v).toFixed(2);
const num = (v) => (v === null || v === undefined) ? "" : String(v);
const breaker = (b) => [b.state, b.paused_by_operator ? "paused by operator" : "",
  b.restarts_in_budget ? b.restarts_in_budget + " restarts in budget" : ""].filter(Boolean).join(", ");
const position = (p) => Object.entries(p).map(([sym, qty]) => sym + " " + qty).join(", ") || "flat";
const duration = (seconds) => {
  const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
  const m = Math.floor(s % 3600 / 60);
  return (d ? d + " d " : "") + (d || h ? h + " h " : "") + (d || h || m ? m + " m " : "") + (s % 60) + " s";
};
const problem = (s) => [s.last_error, s.last_exit].filter(Boolean).join(" | ") ||
  (s.breaker.state === "closed" ? "" : s.breaker.last_reason);
const reload = (r) => !r ? "" : r.result + " at " + r.at + (r.error ? ": " + r.error : "");
const config = (c) => !c ? "not changed" : (c.ok ? "applied" : "REFUSED") + " at " + c.at +
  (c.error ? ": " + c.error : "") + (c.restart_required.length ? "; restart needed for " +
  c.restart_required.join(", ") : "");
const COLUMNS = [
  ["id", "Strategy", (s) => s.id + (s.plugin && s.plugin !== s.id ? " (" + s.plugin + ")" : "")],
  ["state", "State", (s) => s.state],
  ["breaker", "Breaker", (s) => breaker(s.breaker)],
  ["restarts num", "Restarts", (s) => num(s.restarts)],
  ["signals num", "Signals", (s) => num(s.signals)],
  ["orders num", "Orders", (s) => num(s.orders)],
  ["fills num", "Fills", (s) => num(s.fills)],
  ["position", "Position", (s) => position(s.position)],
  ["realized num", "Realized P&L", (s) => money(s.realized_pnl)],
  ["unrealized num", "Unrealized P&L", (s) => money(s.unrealized_pnl)],
  ["reload", "Last reload", (s) => reload(s.last_reload)],
  ["error", "Last error or reason", problem],
];
const ACTIONS = ["pause", "resume", "restart"];
let refreshes = 0;
let token = null;  // the operator's token, for this page's life only
let busy = false;

function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function killSwitch(risk) {
  if (risk.kill_switch) return "ENGAGED (all strategies)";
  if (risk.killed_strategies.length) return "engaged for " + risk.killed_strategies.join(", ");
  return "off";
}

function button(action, label, strategy) {
  const node = cell("button", label);
  node.type = "button";
  node.dataset.action = action;
  if (strategy !== undefined) node.dataset.strategy = strategy;
  return node;
}

function part(name, text, className) {
  const node = cell("span", text, className);
  node.dataset.part = name;
  return node;
}

function venue(v) {
  if (v.kind === "none") return part("venue", "venue: none (observation, no orders sent)");
  if (v.kind !== "grpc") return part("venue", "venue: " + v.kind);
  const b = v.breaker, st = v.stats;
  const answered = v.last_success === null ? "never answered" :
    "last answer " + v.last_success + " (" + v.last_success_age_s + " s ago)";
  return part("venue", "venue: grpc " + v.address + (v.connected === false ? ", connection lost" : "") +
    ", breaker " + b.state +
    (b.consecutive_failures ? " (" + b.consecutive_failures + " consecutive failures)" : "") +
    ", " + st.unavailable + " unavailable, " + st.timeouts + " timeouts, " + answered +
    (v.last_error ? ", last error: " + v.last_error : ""), v.up ? "up" : "down");
}

function reconciliation(r) {
  if (!r) return part("reconcile", "last reconciliation: none yet");
  return part("reconcile", "last reconciliation: " + r.at + " (" + r.trigger + "): " + r.checked + " checked, " +
    r.closed + " closed, " + r.resent + " resent, " + r.reconciled_fills + " reconciled fills, " +
    r.unavailable + " unavailable", r.unavailable ? "down" : "");
}

function venuePositions(p) {
  const pair = (d) => d.strategy + " " + d.symbol + " venue " + d.venue + " ≠ ledger " + d.ledger;
  const now = p.disagreements.filter((d) => d.current);
  if (now.length) {
    return part("venue-positions", "venue positions: " + now.length + " disagree with the ledger now: " +
      now.map(pair).join("; "), "down");
  }
  if (!p.checked) return part("venue-positions", "venue positions: none received");
  const text = "venue positions: agree with the ledger (" + p.checked + " checked" +
    (p.disagreed ? ", " + p.disagreed + " disagreed before" : "") + ")";
  return part("venue-positions", text, "up");
}

function connections(status) {
  const brokers = status.brokers.map((b) => {
    const node = cell("span", b.name + ": " + (b.up ? "up" : "DOWN"));
    node.className = b.up ? "up" : "down";
    node.dataset.broker = b.name;
    return node;
  });
  if (!brokers.length) brokers.push(cell("span", "brokers: none"));
  document.getElementById("connections").replaceChildren(...brokers, venue(status.venue),
    reconciliation(status.last_reconcile), venuePositions(status.venue_positions));
}

function actions(s) {
  const td = cell("td", "", "actions");
  td.replaceChildren(...ACTIONS.map((a) => button(a, a, s.id)));
  return td;
}

function render(status) {
  const risk = status.risk;
  const summary = [
    "mode: " + status.mode,
    "active: " + status.active_strategies + " of " + status.strategies.length,
    "signal queue: " + status.signal_queue_size,
    "uptime: " + duration(status.uptime_s),
    "orders today: " + risk.approved + " approved, " + risk.rejected + " rejected",
    "hot reload: " + (status.reloads.watching ? "on" : "off"),
  ].map((text) => cell("span", text));
  if (status.reloads.watching) summary.push(cell("span", "config file: " + config(status.reloads.config)));
  const kill = cell("span", "kill switch: " + killSwitch(risk));
  if (risk.kill_switch || risk.killed_strategies.length) kill.className = "engaged";
  document.getElementById("summary").replaceChildren(...summary, kill);
  connections(status);
  const controls = status.controls.token_required;
  document.getElementById("controls").hidden = !controls;
  const switchButton = document.getElementById("kill-switch");
  switchButton.dataset.action = risk.kill_switch ? "release" : "engage";
  switchButton.textContent = (risk.kill_switch ? "release" : "engage") + " kill switch (all strategies)";
  table(status.strategies, controls);
}

function table(strategies, controls) {
  // The actions go right after the state they change.
  const titles = COLUMNS.map(([, title]) => cell("th", title));
  if (controls) titles.splice(2, 0, cell("th", "Actions"));
  document.getElementById("head").replaceChildren(...titles);
  const rows = strategies.map((s) => {
    const row = document.createElement("tr");
    row.dataset.strategy = s.id;
    row.className = "state-" + s.state;
    const cells = COLUMNS.map(([key, , value]) => cell("td", value(s), key));
    if (controls) cells.splice(2, 0, actions(s));
    row.replaceChildren(...cells);
    return row;
  });
  document.getElementById("rows").replaceChildren(...rows);
}

function say(text, failed) {
  const line = document.getElementById("answer");
  line.textContent = text;
  line.className = failed ? "error" : "";
}

// Header values are byte strings: send the token's UTF-8 bytes, one character each.
const bearer = (t) => "Bearer " + Array.from(new TextEncoder().encode(t), (b) => String.fromCharCode(b)).join("");

function outcome(answer) {
  if (answer.state !== undefined) return ": ok, " + answer.strategy + " is " + answer.state;
  return ": ok, kill switch " + killSwitch(answer.risk);
}

async function control(what, path, body) {  // body: an object sent as JSON, or none
  if (busy) return;
  if (token === null) {
    const given = window.prompt("Operator token (server.authToken) to " + what + ":");
    if (!given) { say(what + ": not sent, no token given", true); return; }
    token = given;
  }
  busy = true;
  say(what + ": sending…", false);
  try {
    const response = await fetch(path, { method: "POST", cache: "no-store", headers: {
      "Authorization": bearer(token), "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) {
      token = null;
      say(what + ": refused, wrong token (401); it is forgotten, the next action asks again", true);
    } else if (!response.ok) {
      say(what + ": refused (" + response.status + "): " + (answer.error || response.statusText), true);
    } else {
      say(what + outcome(answer), false);
    }
  } catch (err) {
    say(what + ": failed: " + err.message, true);
  } finally {
    busy = false;
  }
  await refresh();
}

document.getElementById("rows").addEventListener("click", (event) => {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const { action, strategy } = target.dataset;
  control(action + " " + strategy, "strategies/" + encodeURIComponent(strategy) + "/" + action);
});
document.getElementById("kill-switch").addEventListener("click", (event) => {
  const action = event.currentTarget.dataset.action;
  control(action + " kill switch", "kill-switch", { action });
});

async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const response = await fetch("status", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    updated.textContent = "status unavailable: " + err.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
""".replace("REFRESH_MS", str(REFRESH_S * 1000))


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

STATUS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Strategy Engine</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Strategy Engine</h1>
<p id="summary"></p>
<p id="connections"></p>
<p id="updated">loading…</p>
<div id="controls" hidden>
<p><button type="button" id="kill-switch" data-action="engage">engage kill switch (all strategies)</button>
<span id="answer" role="status"></span></p>
</div>
<noscript><p>This page needs JavaScript; the same data is at <a href="status">/status</a> (JSON).</p></noscript>
<table>
<thead><tr id="head"></tr></thead>
<tbody id="rows"></tbody>
</table>
<script>{_SCRIPT}</script>
</body>
</html>
""".encode()
