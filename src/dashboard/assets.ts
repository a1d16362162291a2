// The dashboard's stylesheet and its one script, served from its own routes so that the
// Content-Security-Policy can forbid inline scripts and styles: markup that slipped through
// escaping still could not run.

export const STYLESHEET = `
:root { color-scheme: light dark; --fg: #1d232a; --muted: #66707a; --line: #d9dee3; --bg: #fff; --panel: #f5f7f9;
  --accent: #2459c4; --ok: #1f8a4c; --warn: #b26a00; --bad: #c23a2b; }
@media (prefers-color-scheme: dark) { :root { --fg: #e3e7ea; --muted: #9aa3ab; --line: #2f363d; --bg: #14181c; --panel: #1c2227; --accent: #7aa7ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--panel); }
header strong { font-size: 1.05rem; }
nav a { margin-right: 1rem; color: var(--fg); text-decoration: none; }
nav a.on { color: var(--accent); font-weight: 600; }
main { padding: 1rem 1.2rem; max-width: 1200px; }
h1 { font-size: 1.2rem; margin: .2rem 0 1rem; } h2 { font-size: 1rem; margin: 1.4rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12.5px/1.4 ui-monospace, monospace; }
pre { background: var(--panel); padding: .6rem; overflow: auto; max-height: 28rem; white-space: pre-wrap; word-break: break-word; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: 12px; border: 1px solid var(--line); }
.badge.paused, .badge.dead { color: var(--bad); border-color: var(--bad); }
.badge.running, .badge.alive, .badge.completed { color: var(--ok); border-color: var(--ok); }
.badge.retrying, .badge.cancelled, .badge.expired { color: var(--warn); border-color: var(--warn); }
ol.timeline { padding-left: 1.2rem; } ol.timeline time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: .4rem; }
.warning { border-left: 4px solid var(--warn); background: var(--panel); padding: .5rem .8rem; margin: .4rem 0; }
.flash { border-left: 4px solid var(--ok); background: var(--panel); padding: .5rem .8rem; margin-bottom: 1rem; }
.error { border-left: 4px solid var(--bad); background: var(--panel); padding: .5rem .8rem; margin-bottom: 1rem; }
form.inline { display: inline; }
button { font: inherit; padding: .15rem .6rem; cursor: pointer; }
button[disabled] { cursor: not-allowed; }
input, select, textarea { font: inherit; padding: .2rem .35rem; }
.filters { display: flex; gap: .6rem; flex-wrap: wrap; align-items: end; margin-bottom: .8rem; }
.filters label, .form label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.form { display: grid; gap: .6rem; max-width: 40rem; }
svg.chart rect.ok { fill: var(--ok); } svg.chart rect.bad { fill: var(--bad); }
`;

/** Live figures: every element with data-live is replaced by its URL's fragment every two seconds. */
export const SCRIPT = `
for (const el of document.querySelectorAll("[data-live]")) {
  const refresh = async () => {
    try {
      const res = await fetch(el.dataset.live, { credentials: "same-origin", headers: { "x-pgq-fragment": "1" } });
      if (res.ok) el.innerHTML = await res.text();
    } catch {}
  };
  setInterval(refresh, 2000);
}
`;
