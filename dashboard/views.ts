/*
 * Server-rendered HTML: the status page, the login form and error pages. Template literals only;
 * every interpolated value goes through `html` (escape) — the one rule that keeps a package's
 * error text from running as script. Inline <script>/<style> carry the request's CSP nonce.
 */
import type { UpdateEvent } from '../shared/events.js';
import { relativeTime } from '../shared/humanTime.js';
import { diskSummary, packageLabel, type ServerView } from '../shared/serverView.js';
import type { SurfaceChange } from '../shared/surface.js';
import type { SurfaceComparison } from '../shared/surfaceStore.js';
import { summarizeQueue, type QueueCountMap } from './queue-counts.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(value: unknown): string {
  if (value === undefined || value === null) return '';
  return String(value).replace(/[&<>"'`]/g, (char) => ESCAPES[char]!);
}

/** Shorthand used in every template. */
const h = escapeHtml;

function time(iso: string | null | undefined, now: Date): string {
  if (!iso) return '<span class="muted">never</span>';
  return `<time datetime="${h(iso)}" title="${h(iso)}">${h(relativeTime(iso, now))}</time>`;
}

/** A small icon inline, so no request is needed (img-src allows data:). */
const FAVICON =
  'data:image/svg+xml,'
  + encodeURIComponent(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2f5bd3"/>'
      + '<path d="M8 3l4 4h-2.5v5h-3V7H4z" fill="#fff"/></svg>',
  );

const STYLE = `
:root{--bg:#f6f7f9;--card:#fff;--text:#1d2330;--muted:#6b7385;--line:#e3e6ec;--accent:#2f5bd3;--ok:#1c7c4a;--warn:#a15c00;--bad:#b3261e;--info:#0b6a8a}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--text)}
header{background:#151a21;color:#fff;padding:.75rem 1.25rem;display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;justify-content:space-between}
header h1{font-size:1.15rem;margin:0;font-weight:600}
header nav{display:flex;gap:.75rem;align-items:center;flex-wrap:wrap}
header a{color:#cfd8ff}
header a.home{color:inherit;text-decoration:none}
form.inline{margin:0}
main{max-width:1200px;margin:0 auto;padding:1rem}
a{color:var(--accent)}
.banner{padding:.6rem .9rem;border-radius:8px;margin:0 0 1rem;background:#fff4e0;border:1px solid #f0c57a;color:#5a3a00}
.banner.error{background:#fdecea;border-color:#f1a9a3;color:#6b1a14}
.summary{display:flex;flex-wrap:wrap;gap:.5rem;margin:0 0 1rem;color:var(--muted);font-size:.9rem}
.summary span{background:var(--card);border:1px solid var(--line);border-radius:999px;padding:.15rem .65rem}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;margin:0 0 1rem;overflow:hidden}
section h2{font-size:1rem;margin:0;padding:.75rem 1rem;border-bottom:1px solid var(--line);display:flex;justify-content:space-between;align-items:center;gap:.5rem}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.55rem .75rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.78rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600}
tr:last-child td{border-bottom:0}
td.name strong,td.name .disk{display:block}
td.last-check{min-width:11rem}
.muted{color:var(--muted)}
.small{font-size:.85rem}
code{font:.85em ui-monospace,SFMono-Regular,Menlo,monospace;background:#f0f2f6;padding:.05rem .3rem;border-radius:4px;white-space:nowrap}
.badge{display:inline-block;border-radius:999px;padding:.1rem .6rem;font-size:.8rem;font-weight:600;background:#eef1f6;color:var(--muted);white-space:nowrap}
.badge.idle{background:#e6f4ec;color:var(--ok)}
.badge.checking,.badge.downloading,.badge.staging,.badge.activating{background:#e3f2f8;color:var(--info)}
.badge.awaiting-approval{background:#fff1dc;color:var(--warn)}
.badge.failed{background:#fdecea;color:var(--bad)}
.update{color:var(--warn);font-weight:600}
.error-text{color:var(--bad);font-size:.85rem;max-width:28rem;overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.35rem}
button,.button{font:inherit;font-size:.85rem;border:1px solid var(--line);background:#fff;color:var(--text);border-radius:6px;padding:.3rem .7rem;cursor:pointer;text-decoration:none;display:inline-block}
button:hover,.button:hover{border-color:var(--accent);color:var(--accent)}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button.primary:hover{background:#2449ad;color:#fff}
button.danger{color:var(--bad)}
button:disabled{opacity:.55;cursor:wait}
header button{background:transparent;color:#cfd8ff;border-color:#3a4454}
ul.events{list-style:none;margin:0;padding:0}
ul.events li{padding:.5rem 1rem;border-bottom:1px solid var(--line);display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:baseline}
ul.events li:last-child{border-bottom:0}
.event-type{font-weight:600}
.event-type.failed{color:var(--bad)}
.event-type.activated{color:var(--ok)}
#toast{position:fixed;left:50%;bottom:1rem;transform:translateX(-50%);background:#151a21;color:#fff;padding:.6rem 1rem;border-radius:8px;font-size:.9rem;max-width:90vw;display:none;box-shadow:0 4px 16px rgba(0,0,0,.25)}
#toast.error{background:var(--bad)}
form.login{background:var(--card);border:1px solid var(--line);border-radius:10px;max-width:24rem;margin:2rem auto;padding:1.25rem;display:flex;flex-direction:column;gap:.75rem}
form.login h2{margin:0;font-size:1.1rem}
form.login p{margin:0}
form.login input{font:inherit;padding:.5rem .6rem;border:1px solid var(--line);border-radius:6px;width:100%}
form.login button{padding:.5rem}
.empty{padding:1rem;color:var(--muted)}
.gate{color:var(--warn);font-size:.85rem;max-width:28rem;overflow-wrap:anywhere}
.facts{padding:0 1rem}
ul.changes{list-style:none;margin:0;padding:0}
ul.changes li{padding:.6rem 1rem;border-bottom:1px solid var(--line)}
ul.changes li:last-child{border-bottom:0}
.class{display:inline-block;border-radius:999px;padding:.05rem .55rem;font-size:.78rem;font-weight:600;background:#eef1f6;color:var(--muted)}
.class.breaking{background:#fdecea;color:var(--bad)}
.class.changed{background:#fff1dc;color:var(--warn)}
.class.additive{background:#e6f4ec;color:var(--ok)}
pre.text{margin:.35rem 0 0;padding:.4rem .6rem;background:#f6f7f9;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;font:.82rem/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre.text.before{color:var(--bad)}
pre.text.after{color:var(--ok)}
@media (max-width:760px){
  main{padding:.6rem}
  table.servers thead{display:none}
  table.servers,table.servers tbody,table.servers tr,table.servers td{display:block;width:100%}
  table.servers tr{border-bottom:1px solid var(--line);padding:.4rem 0}
  table.servers td{border:0;padding:.25rem .9rem;display:flex;gap:.75rem;justify-content:space-between}
  table.servers td::before{content:attr(data-label);color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;flex:0 0 6.5rem}
  table.servers td.name::before,table.servers td.actions-cell::before{content:none}
  table.servers td.name{font-size:1.05rem}
  table.servers td.last-check{min-width:0}
  table.servers td > div{text-align:right}
  .summary{font-size:.8rem;gap:.35rem}
  .error-text{max-width:none;text-align:right}
}
`;

/** Posts actions with the session cookie, shows the answer, and refreshes the page body in place. */
const SCRIPT = `
(function () {
  var toast = document.getElementById('toast');
  var toastTimer;
  function say(text, isError) {
    toast.textContent = text;
    toast.className = isError ? 'error' : '';
    toast.style.display = 'block';
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.style.display = 'none'; }, 5000);
  }
  function refresh() {
    return fetch(location.pathname, { headers: { accept: 'text/html' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) return;
        var next = new DOMParser().parseFromString(text, 'text/html').getElementById('content');
        var here = document.getElementById('content');
        if (next && here) here.replaceWith(next);
      })
      .catch(function () {});
  }
  document.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-url]');
    if (!button) return;
    var question = button.getAttribute('data-confirm');
    if (question && !window.confirm(question)) return;
    button.disabled = true;
    fetch(button.getAttribute('data-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: button.getAttribute('data-body') || '{}'
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok) {
          var ids = body.jobIds ? body.jobIds.length + ' jobs' : 'job ' + body.jobId;
          say((button.getAttribute('data-done') || 'Queued') + ' (' + ids + ')', false);
        } else {
          say((body.error && body.error.message) || ('failed: HTTP ' + response.status), true);
        }
      });
    }).catch(function (error) {
      say('request failed: ' + error.message, true);
    }).then(function () {
      button.disabled = false;
      setTimeout(refresh, 700);
      setTimeout(refresh, 2500);
    });
  });
  setInterval(function () { if (!document.hidden) refresh(); }, 10000);
})();
`;

interface LayoutOptions {
  title: string;
  nonce?: string;
  nav?: string;
  body: string;
  script?: boolean;
}

function layout(options: LayoutOptions): string {
  const nonce = options.nonce ? ` nonce="${h(options.nonce)}"` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="${FAVICON}">
<title>${h(options.title)}</title>
<style${nonce}>${STYLE}</style>
${options.script ? '<noscript><meta http-equiv="refresh" content="30"></noscript>' : ''}
</head>
<body>
<header><h1><a class="home" href="/">mcp-updater</a></h1><nav>${options.nav ?? ''}</nav></header>
<main>
${options.body}
</main>
<div id="toast" role="status" aria-live="polite"></div>
${options.script ? `<script${nonce}>${SCRIPT}</script>` : ''}
</body>
</html>`;
}

export interface StatusPageModel {
  servers: ServerView[];
  events: UpdateEvent[];
  queues: QueueCountMap;
  /** API_TOKEN unset: no buttons, a banner says why. */
  readOnly: boolean;
  /** Logged in (session) or bearer: buttons shown. */
  canAct: boolean;
  /** Who is logged in (label), for the header. */
  who?: string;
  now: Date;
  nonce?: string;
}

function actionButton(label: string, url: string, options: { body?: unknown; confirm?: string; done: string; kind?: string }): string {
  const body = options.body === undefined ? '' : ` data-body="${h(JSON.stringify(options.body))}"`;
  const confirm = options.confirm ? ` data-confirm="${h(options.confirm)}"` : '';
  const kind = options.kind ? ` class="${h(options.kind)}"` : '';
  return `<button type="button"${kind} data-url="${h(url)}"${body}${confirm} data-done="${h(options.done)}">${h(label)}</button>`;
}

function serverActions(server: ServerView, model: StatusPageModel): string {
  if (!model.canAct) return '';
  const base = `/api/v1/servers/${encodeURIComponent(server.name)}`;
  const buttons = [actionButton('Check now', `${base}/check`, { done: `Check of ${server.name} queued` })];
  if (server.state === 'awaiting-approval' && server.staged) {
    buttons.push(
      actionButton(`Approve ${server.staged}`, `${base}/approve`, {
        body: { version: server.staged },
        kind: 'primary',
        done: `Activation of ${server.name} ${server.staged} queued`,
        confirm: `Activate ${server.name} ${server.staged}${server.current ? ` (now ${server.current})` : ''}?`,
      }),
    );
  }
  if (server.previous) {
    buttons.push(
      actionButton(`Roll back to ${server.previous}`, `${base}/rollback`, {
        kind: 'danger',
        done: `Rollback of ${server.name} queued`,
        confirm: `Roll ${server.name} back from ${server.current ?? 'the current version'} to ${server.previous}?`,
      }),
    );
  }
  return `<div class="actions">${buttons.join('')}</div>`;
}

function versionCell(value: string | null): string {
  return value ? `<code>${h(value)}</code>` : '<span class="muted">–</span>';
}

function diffLink(server: ServerView, label: string): string {
  return `<a class="small" href="/servers/${encodeURIComponent(server.name)}/diff">${h(label)}</a>`;
}

function availableCell(server: ServerView): string {
  if (server.staged && server.gate) {
    return `<span class="update">${h(server.staged)} staged</span><div class="gate" data-gate>waits for approval: ${h(server.gate)}</div>${diffLink(server, 'what changed')}`;
  }
  if (server.staged) return `<span class="update">${h(server.staged)} staged</span> ${diffLink(server, 'surface diff')}`;
  if (server.updateAvailable && server.candidate) return `<span class="update">${h(server.candidate)}</span>`;
  if (server.latest && server.latest !== server.current) {
    return `<span class="muted">${h(server.latest)} held back (${h(server.policy)})</span>`;
  }
  return server.lastCheck ? '<span class="muted">up to date</span>' : '<span class="muted">–</span>';
}

/** Bytes on disk, as measured after the last stage, activation or cleanup (never on a request). */
function diskLine(server: ServerView): string {
  const summary = diskSummary(server.disk);
  return summary ? `<span class="muted small disk" title="bytes on disk">${h(summary)}</span>` : '';
}

function serverRow(server: ServerView, model: StatusPageModel): string {
  return `<tr id="server-${h(server.name)}" data-server="${h(server.name)}">
<td class="name" data-label="Server"><strong>${h(server.name)}</strong><span class="muted small">${h(packageLabel(server))}</span>${diskLine(server)}</td>
<td data-label="Current">${versionCell(server.current)}</td>
<td data-label="Latest">${versionCell(server.latest)}</td>
<td data-label="Available">${availableCell(server)}</td>
<td data-label="State"><span class="badge ${h(server.state)}" data-state="${h(server.state)}">${h(server.state)}</span></td>
<td class="last-check" data-label="Last check"><div>${time(server.lastCheck, model.now)}${server.lastCheckResult ? `<div class="muted small">${h(server.lastCheckResult)}</div>` : ''}</div></td>
<td data-label="Last error">${server.lastError ? `<div class="error-text">${h(server.lastError)}</div>` : '<span class="muted">–</span>'}</td>
${model.canAct ? `<td class="actions-cell" data-label="Actions">${serverActions(server, model)}</td>` : ''}
</tr>`;
}

function eventItem(event: UpdateEvent, now: Date): string {
  const kind = event.type.endsWith('failed') ? ' failed' : event.type.endsWith('activated') ? ' activated' : '';
  const version = event.version ? ` <code>${h(event.version)}</code>` : '';
  const from = event.from ? ` <span class="muted small">from ${h(event.from)}</span>` : '';
  const reason = event.reason ? `<span class="muted small">${h(event.reason)}</span>` : '';
  const actor = event.actor ? `<span class="muted small">by ${h(event.actor)}</span>` : '';
  return `<li><span class="muted small">${time(event.at, now)}</span><span class="event-type${kind}">${h(event.type)}</span><strong>${h(event.server)}</strong>${version}${from}${reason}${actor}</li>`;
}

/** Scheduled (delayed) jobs are not ready to run, so they are not counted as waiting. */
function queueSummary(queues: QueueCountMap): string {
  const parts = Object.entries(queues).map(([name, counts]) => {
    const summary = summarizeQueue(counts);
    const failed = summary.failed > 0 ? `, ${summary.failed} failed` : '';
    return `<span data-queue="${h(name)}">${h(name)}: ${h(summary.waiting)} waiting, ${h(summary.delayed)} scheduled, ${h(summary.active)} active${h(failed)}</span>`;
  });
  return parts.length > 0 ? `<div class="summary" aria-label="queues">${parts.join('')}</div>` : '';
}

export function renderStatusPage(model: StatusPageModel): string {
  const nav = [
    '<a href="/admin/queues">Queues</a>',
    '<a href="/api/v1/servers">API</a>',
    model.canAct ? actionButton('Check all', '/api/v1/checks', { done: 'Checks queued' }) : '',
    model.who
      ? `<span class="small">${h(model.who)}</span><form class="inline" method="post" action="/logout"><button type="submit">Log out</button></form>`
      : '',
    !model.readOnly && !model.who && !model.canAct ? '<a class="button" href="/login">Log in</a>' : '',
  ].join('');
  const banner = model.readOnly
    ? '<p class="banner" role="note"><strong>Read-only:</strong> API_TOKEN is not set, so checks, approvals and rollbacks cannot be started from here. Set API_TOKEN and restart to enable them.</p>'
    : '';
  const upgradable = model.servers.filter((server) => server.updateAvailable || server.staged).length;
  const failed = model.servers.filter((server) => server.state === 'failed').length;
  const rows =
    model.servers.length > 0
      ? model.servers.map((server) => serverRow(server, model)).join('\n')
      : `<tr><td colspan="8" class="empty">No servers in the inventory.</td></tr>`;
  const events =
    model.events.length > 0
      ? `<ul class="events">${model.events.map((event) => eventItem(event, model.now)).join('')}</ul>`
      : '<p class="empty">No events yet.</p>';
  const body = `${banner}<div id="content">
${queueSummary(model.queues)}
<section>
<h2><span>Servers <span class="muted small">${h(model.servers.length)} total, ${h(upgradable)} with updates, ${h(failed)} failed</span></span><span class="muted small">updated ${h(model.now.toISOString().slice(11, 19))} UTC</span></h2>
<table class="servers">
<thead><tr><th>Server</th><th>Current</th><th>Latest</th><th>Available</th><th>State</th><th>Last check</th><th>Last error</th>${model.canAct ? '<th>Actions</th>' : ''}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
</section>
<section>
<h2>Recent events</h2>
${events}
</section>
</div>`;
  return layout({ title: 'mcp-updater', nonce: model.nonce, nav, body, script: true });
}

export interface DiffPageModel {
  comparison: SurfaceComparison;
  nonce?: string;
}

function changeItem(change: SurfaceChange): string {
  const name = change.kind === 'instructions' ? 'instructions' : `${change.kind} ${change.key}`;
  const texts =
    change.change === 'description' || change.change === 'added' || change.change === 'removed'
      ? [
          change.before !== undefined ? `<pre class="text before" aria-label="before">${h(change.before)}</pre>` : '',
          change.after !== undefined ? `<pre class="text after" aria-label="after">${h(change.after)}</pre>` : '',
        ].join('')
      : '';
  return `<li data-change="${h(change.change)}" data-class="${h(change.class)}"><span class="class ${h(change.class)}">${h(change.class)}</span> <strong>${h(name)}</strong> <span class="muted small">${h(change.change)}</span>
<div class="small">${change.details.map((detail) => h(detail)).join('<br>')}</div>${texts}</li>`;
}

/** /servers/<name>/diff: what changed in the MCP surface, most severe first, descriptions in full. */
export function renderDiffPage(model: DiffPageModel): string {
  const { comparison } = model;
  const { diff, from, to } = comparison;
  const order = { breaking: 0, changed: 1, additive: 2 };
  const changes = [...diff.changes].sort((a, b) => order[a.class] - order[b.class]);
  const body = `<section>
<h2><span>${h(comparison.server)}: MCP surface ${h(from?.version ?? '(nothing active)')} → ${h(to.version)}</span><span class="class ${h(diff.class)}" data-surface-class="${h(diff.class)}">${h(diff.class)}</span></h2>
<p class="small facts">from ${from ? `<code>${h(from.version)}</code> <code title="sha256">${h(from.hash.slice(0, 16))}</code>` : '<span class="muted">(none)</span>'}
· to <code>${h(to.version)}</code> <code title="sha256">${h(to.hash.slice(0, 16))}</code>
· ${h(diff.counts.breaking)} breaking, ${h(diff.counts.changed)} changed, ${h(diff.counts.additive)} additive</p>
${changes.length > 0 ? `<ul class="changes">${changes.map(changeItem).join('')}</ul>` : '<p class="empty">No changes: the surfaces are identical.</p>'}
</section>
<p class="small"><a href="/api/v1/servers/${encodeURIComponent(comparison.server)}/diff?${from ? `from=${encodeURIComponent(from.version)}&amp;` : ''}to=${encodeURIComponent(to.version)}">JSON</a> · <a href="/">Back to the status page</a></p>`;
  return layout({ title: `${comparison.server} surface diff – mcp-updater`, nonce: model.nonce, nav: '<a href="/">Status</a>', body });
}

export interface LoginPageModel {
  readOnly: boolean;
  error?: string;
  next?: string;
  nonce?: string;
}

export function renderLoginPage(model: LoginPageModel): string {
  const body = model.readOnly
    ? '<p class="banner" role="note"><strong>Read-only:</strong> API_TOKEN is not set, so there is nothing to log in to. Set API_TOKEN and restart to enable changes.</p>'
    : `<form class="login" method="post" action="/login">
<h2>Log in</h2>
<p class="muted small">Enter the API_TOKEN this service was started with. A session cookie is kept for 12 hours; the token itself is not stored in the browser.</p>
${model.error ? `<p class="banner error" role="alert">${h(model.error)}</p>` : ''}
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${h(model.next ?? '/')}">
<button class="primary" type="submit">Log in</button>
</form>`;
  return layout({ title: 'Log in – mcp-updater', nonce: model.nonce, nav: '<a href="/">Status</a>', body });
}

export function renderErrorPage(status: number, message: string, nonce?: string): string {
  const body = `<p class="banner error" role="alert"><strong>${h(status)}</strong> ${h(message)}</p><p><a href="/">Back to the status page</a></p>`;
  return layout({ title: `${status} – mcp-updater`, nonce, body });
}
