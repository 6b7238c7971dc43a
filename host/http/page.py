"""The operator's status page at ``/``: one static HTML document that renders ``/status`` itself.

Model. The server sends the same bytes every time; a few lines of inline JavaScript fetch
``status`` (relative, so the page also works behind a path prefix) at once and every 2 s and
rebuild the strategy table. Every value, strategy-provided text included (errors, breaker
reasons, ids), reaches the DOM through ``textContent`` or ``dataset``, never through HTML
parsing, so nothing a strategy writes can become markup. No external assets: the style and the
script are inline and the ``Content-Security-Policy`` sent with the page allows exactly those two
(by hash) plus requests to this origin, and nothing else.
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
.state-running { background: #e3f6e3; }
.state-starting, .state-backoff { background: #e6effa; }
.state-paused { background: #fdf3d8; }
.state-open, .state-stopped { background: #fbe1e1; }
.engaged { color: #b00; font-weight: bold; }
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
let refreshes = 0;

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
  document.getElementById("head").replaceChildren(...COLUMNS.map(([, title]) => cell("th", title)));
  const rows = status.strategies.map((s) => {
    const row = document.createElement("tr");
    row.dataset.strategy = s.id;
    row.className = "state-" + s.state;
    row.replaceChildren(...COLUMNS.map(([key, , value]) => cell("td", value(s), key)));
    return row;
  });
  document.getElementById("rows").replaceChildren(...rows);
}

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
<p id="updated">loading…</p>
<noscript><p>This page needs JavaScript; the same data is at <a href="status">/status</a> (JSON).</p></noscript>
<table>
<thead><tr id="head"></tr></thead>
<tbody id="rows"></tbody>
</table>
<script>{_SCRIPT}</script>
</body>
</html>
""".encode()
