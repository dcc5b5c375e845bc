// The harness dashboard's script: a status stream (Server-Sent Events from
// /api/v1/status/stream) drives every view; lists and item details are fetched from the JSON
// API when the stream shows the queue changed, never on a timer. Views by #fragment:
//   #/            overview: queue counts, agents, pool slots, chart of the last hour, pending
//   #/items?state=S&q=TEXT   items, filtered by state and searched by id or title
//   #/item/ID     one item: attempts, result, prompt, log tail
// A pasted token is kept in sessionStorage (this tab only) and sent as `Authorization: Bearer`;
// admin buttons appear only when /api/v1/whoami says the token is the admin token. No cookies.
'use strict';

const TOKEN_KEY = 'harness.token';
const STATES = ['pending', 'leased', 'done', 'failed', 'parked', 'cancelled'];
const app = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  role: 'none',
  status: null,        // the last status snapshot
  statusAt: 0,         // Date.now() when it came
  queueKey: '',        // the queue counts of the last refresh
  stream: null,        // {close()} of the live connection
  refreshTimer: null,
  lastRefresh: 0,
};

// ---------- helpers ----------
function esc(v) {
  return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g,
      c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
}
function badge(s) { return `<span class="badge s-${esc(s)}">${esc(s)}</span>`; }
function ago(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
}
function when(unixMs) { return unixMs ? new Date(unixMs).toLocaleString() : '—'; }
function headers() { return app.token ? {'Authorization': 'Bearer ' + app.token} : {}; }
async function api(path, method) {
  const res = await fetch(path, {method: method || 'GET', headers: headers(), cache: 'no-store'});
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = {error: text}; }
  if (!res.ok) throw new Error((body && body.error) || (res.status + ' ' + res.statusText));
  return body;
}
function toast(msg, bad) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = 'toast' + (bad ? ' error' : '');
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}
function route() {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, query] = h.split('?');
  return {path, params: new URLSearchParams(query || '')};
}

// ---------- the live status stream ----------
function setConn(on, text) {
  const c = document.getElementById('conn');
  c.className = 'conn ' + (on ? 'on' : 'off');
  c.textContent = text;
}
function onStatus(s) {
  app.status = s;
  app.statusAt = Date.now();
  setConn(true, 'live');
  renderLive();
  const key = JSON.stringify(s.queue) + JSON.stringify((s.agents || []).map(a => [a.id, a.item, a.state]));
  if (key !== app.queueKey) {
    app.queueKey = key;
    scheduleRefresh();
  }
}
// EventSource cannot send a header: without a token it is used as is; with one, the same
// stream is read through fetch() (which can) and parsed here.
function connect() {
  if (app.stream) app.stream.close();
  setConn(false, 'connecting');
  if (!app.token) {
    const es = new EventSource('/api/v1/status/stream');
    es.addEventListener('status', e => onStatus(JSON.parse(e.data)));
    es.onerror = () => setConn(false, 'reconnecting');
    app.stream = es;
    return;
  }
  const ctl = new AbortController();
  let closed = false;
  app.stream = {close() { closed = true; ctl.abort(); }};
  (async () => {
    try {
      const res = await fetch('/api/v1/status/stream', {headers: headers(), signal: ctl.signal});
      if (!res.ok) throw new Error('status stream: ' + res.status);
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += dec.decode(value, {stream: true});
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message', data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (event === 'status' && data.length) onStatus(JSON.parse(data.join('\n')));
        }
      }
    } catch (e) { /* reconnect below */ }
    if (!closed) {
      setConn(false, 'reconnecting');
      setTimeout(() => { if (!closed) connect(); }, 2000);
    }
  })();
}

// ---------- token and role ----------
async function loadRole() {
  try {
    const w = await api('/api/v1/whoami');
    app.role = w.role;
  } catch (e) { app.role = 'none'; }
  const r = document.getElementById('role');
  r.textContent = {admin: 'admin', read: 'read-only', open: 'read-only (no tokens)',
                   none: 'token needed'}[app.role] || app.role;
  r.dataset.role = app.role;
}
function setupToken() {
  const form = document.getElementById('tokenform');
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const input = document.getElementById('token');
    app.token = input.value.trim();
    input.value = '';
    if (app.token) sessionStorage.setItem(TOKEN_KEY, app.token);
    await loadRole();
    connect();
    render();
  });
  document.getElementById('forget').addEventListener('click', async () => {
    app.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    await loadRole();
    connect();
    render();
  });
}
function isAdmin() { return app.role === 'admin'; }
async function act(path, what) {
  try {
    await api(path, 'POST');
    toast(what + ': done');
    scheduleRefresh(true);
  } catch (e) { toast(what + ': ' + e.message, true); }
}

// ---------- views ----------
function render() {
  const r = route();
  document.getElementById('nav-overview').className = r.path === '/' ? 'active' : '';
  document.getElementById('nav-items').className = r.path.startsWith('/item') ? 'active' : '';
  const v = document.getElementById('view');
  if (r.path === '/items') {
    v.innerHTML = itemsSkeleton(r.params);
    wireItemsToolbar();
  } else if (r.path.startsWith('/item/')) {
    v.innerHTML = '<div id="item-detail"><p class="muted">Loading…</p></div>';
  } else {
    v.innerHTML = `
      <section id="queue"><h2>Queue</h2><div id="queue-counts" class="counts"></div></section>
      <div class="grid">
        <section><h2>Agents <small id="agents-summary"></small></h2><div id="agents"></div></section>
        <section><h2>Pool <small id="pool-summary"></small></h2><div id="pool"></div><div id="pool-actions"></div></section>
      </div>
      <section class="chart"><h2>Last hour <small>per minute</small></h2><div id="chart"></div></section>
      <section><h2>Pending <small>in the order they will be claimed</small></h2><div id="pending"></div></section>`;
  }
  renderLive();
  scheduleRefresh(true);
}

// What the status snapshot alone shows (redrawn on every frame).
function renderLive(agesOnly) {
  const s = app.status;
  if (!s) return;
  const counts = document.getElementById('queue-counts');
  if (counts && !agesOnly) {
    counts.innerHTML = ['total'].concat(STATES).map(k =>
      `<a class="count" id="count-${k}" href="#/items${k === 'total' ? '' : '?state=' + k}">` +
      `<b>${esc(s.queue[k])}</b><span>${k}</span></a>`).join('');
  }
  const agents = document.getElementById('agents');
  if (agents) {
    const list = s.agents || [];
    document.getElementById('agents-summary').textContent =
        `${s.pool.active} active of ${s.pool.target} wanted · ${(s.metrics.items_per_hour || 0).toFixed(1)} items/h`;
    agents.innerHTML = list.length === 0 ? '<p class="muted">No agents.</p>' :
      `<table><thead><tr><th>Agent</th><th>State</th><th>Health</th><th>Item</th><th>Elapsed</th>
       <th>Last output</th><th>Heartbeat</th>${isAdmin() ? '<th></th>' : ''}</tr></thead><tbody>` +
      list.map(a => {
        const since = Date.now() - app.statusAt;
        return `<tr data-agent="${esc(a.id)}"><td class="mono">${esc(a.id)}</td>
          <td class="state">${badge(a.state)}</td><td>${badge(a.health)}</td>
          <td class="item">${a.item ? `<a href="#/item/${encodeURIComponent(a.item)}">${esc(a.item)}</a>` : '—'}</td>
          <td class="elapsed">${a.item ? ago(a.item_elapsed_ms + since) : '—'}</td>
          <td class="wrap mono output">${esc(a.last_output_line || '—')}</td>
          <td>${ago(a.last_heartbeat_ms_ago + since)} ago</td>
          ${isAdmin() ? `<td>${a.state !== 'stopped' && a.state !== 'draining' ?
              `<button data-drain="${esc(a.id)}">Drain</button>` : ''}</td>` : ''}</tr>`;
      }).join('') + '</tbody></table>';
    agents.querySelectorAll('button[data-drain]').forEach(b => b.onclick = () => {
      if (confirm('Drain ' + b.dataset.drain + '?')) {
        act(`/api/v1/agents/${encodeURIComponent(b.dataset.drain)}/drain`, 'drain ' + b.dataset.drain);
      }
    });
  }
  const pool = document.getElementById('pool');
  if (pool && !agesOnly) {
    const p = s.pool;
    const failed = (p.slots || []).filter(x => x.state === 'failed').length;
    document.getElementById('pool-summary').textContent =
        `launcher ${p.launcher} · target ${p.target} · ${failed} failed slots`;
    let html = p.launcher_error ? `<p class="error">${esc(p.launcher_error)}</p>` : '';
    html += (p.slots || []).length === 0 ? '<p class="muted">No managed slots (agents started elsewhere).</p>' :
      '<table><thead><tr><th>Slot</th><th>Agent</th><th>State</th><th>Failures</th><th>Reason</th></tr></thead><tbody>' +
      p.slots.map(x => `<tr data-slot="${esc(x.slot)}"><td>${esc(x.slot)}</td><td class="mono">${esc(x.agent)}</td>
        <td>${badge(x.state)}</td><td>${esc(x.failures)}</td><td class="wrap">${esc(x.reason || '')}</td></tr>`).join('') +
      '</tbody></table>';
    pool.innerHTML = html;
    const actions = document.getElementById('pool-actions');
    if (actions && isAdmin() && !actions.firstChild) {  // drawn once: typing is not redrawn away
      actions.innerHTML = `<div class="toolbar pool-scale"><label>Scale to
        <input id="scale-target" type="number" min="0" max="10000" value="${esc(p.target)}" class="narrow"></label>
        <button id="scale">Scale</button></div>`;
      document.getElementById('scale').onclick = () => {
        const n = document.getElementById('scale-target').value;
        act(`/api/v1/pool/scale?target=${encodeURIComponent(n)}`, 'scale to ' + n);
      };
    }
  }
}

// Data that needs the API: fetched when the stream shows a change, at most once a second.
function scheduleRefresh(now) {
  if (app.refreshTimer) return;
  const wait = now ? 0 : Math.max(0, 1000 - (Date.now() - app.lastRefresh));
  app.refreshTimer = setTimeout(async () => {
    app.refreshTimer = null;
    app.lastRefresh = Date.now();
    try { await refresh(); } catch (e) { /* shown by each part */ }
  }, wait);
}
async function refresh() {
  const r = route();
  if (r.path === '/items') return refreshItems(r.params);
  if (r.path.startsWith('/item/')) return refreshItem(decodeURIComponent(r.path.slice(6)));
  await Promise.all([refreshPending(), refreshChart()]);
  renderLive();
}
// The claim order is the queue's: higher priority first, then submission order (the API's order,
// kept by a stable sort).
async function refreshPending() {
  const el = document.getElementById('pending');
  if (!el) return;
  try {
    const doc = await api('/api/v1/items?state=pending&page_size=10000');
    const items = doc.items.slice().sort((a, b) => b.priority - a.priority);
    const more = items.length > 50 || doc.next_page_token ?
        `<p class="muted">${doc.next_page_token ? 'more than ' : ''}${items.length - 50} more: <a href="#/items?state=pending">all pending</a></p>` : '';
    el.innerHTML = items.length === 0 ? '<p class="muted">Nothing pending.</p>' :
        itemsTable(items.slice(0, 50)) + more;
  } catch (e) { el.innerHTML = `<p class="error">${esc(e.message)}</p>`; }
}
function itemsTable(items) {
  return '<table><thead><tr><th>Id</th><th>State</th><th>Priority</th><th>Attempts</th><th>Agent</th><th>Title</th><th>Updated</th></tr></thead><tbody>' +
    items.map(i => `<tr data-item="${esc(i.id)}" data-state="${esc(i.state)}">
      <td class="mono"><a href="#/item/${encodeURIComponent(i.id)}">${esc(i.id)}</a></td>
      <td class="state">${badge(i.state)}</td><td>${esc(i.priority)}</td>
      <td>${esc(i.attempt_count)}/${esc(i.max_attempts)}</td><td class="mono">${esc(i.agent || '—')}</td>
      <td class="wrap">${esc(i.title || '')}${i.error ? `<div class="error">${esc(i.error)}</div>` : ''}</td>
      <td>${when(i.updated_at_unix_ms)}</td></tr>`).join('') + '</tbody></table>';
}
function itemsSkeleton(params) {
  const st = params.get('state') || '';
  return `<section><h2>Items <small id="items-summary"></small></h2>
    <div class="toolbar"><select id="f-state"><option value="">every state</option>
      ${STATES.map(s => `<option ${s === st ? 'selected' : ''}>${s}</option>`).join('')}</select>
      <input id="f-q" type="search" placeholder="search id or title" value="${esc(params.get('q') || '')}"></div>
    <div id="items"></div></section>`;
}
function wireItemsToolbar() {
  const update = () => {
    const p = new URLSearchParams();
    const st = document.getElementById('f-state').value;
    const q = document.getElementById('f-q').value;
    if (st) p.set('state', st);
    if (q) p.set('q', q);
    history.replaceState(null, '', '#/items' + (p.toString() ? '?' + p : ''));
    scheduleRefresh(true);
  };
  document.getElementById('f-state').onchange = update;
  document.getElementById('f-q').oninput = update;
}
async function refreshItems(params) {
  const el = document.getElementById('items');
  if (!el) return;
  try {
    const st = params.get('state');
    const q = (params.get('q') || '').toLowerCase();
    let items = [], token = '';
    do {  // every page (1000 each)
      const doc = await api('/api/v1/items?' + (st ? 'state=' + encodeURIComponent(st) + '&' : '') +
                            (token ? 'page_token=' + encodeURIComponent(token) : 'page_size=1000'));
      items = items.concat(doc.items);
      token = doc.next_page_token || '';
    } while (token && items.length < 20000);
    const shown = q ? items.filter(i => i.id.toLowerCase().includes(q) ||
                                        (i.title || '').toLowerCase().includes(q)) : items;
    document.getElementById('items-summary').textContent = `${shown.length} of ${items.length}`;
    el.innerHTML = shown.length === 0 ? '<p class="muted">No items.</p>' : itemsTable(shown.slice(0, 2000));
  } catch (e) { el.innerHTML = `<p class="error">${esc(e.message)}</p>`; }
}
async function refreshItem(id) {
  const el = document.getElementById('item-detail');
  if (!el) return;
  let i;
  try { i = await api('/api/v1/items/' + encodeURIComponent(id)); } catch (e) {
    el.innerHTML = `<section><p class="error">${esc(e.message)}</p></section>`;
    return;
  }
  const actions = !isAdmin() ? '' :
    (['pending', 'leased'].includes(i.state) ? '<button class="danger" id="cancel">Cancel</button>' : '') +
    (['failed', 'parked'].includes(i.state) ? '<button id="retry">Retry</button>' : '');
  el.innerHTML = `<section data-item="${esc(i.id)}" data-state="${esc(i.state)}">
    <h2><span class="mono">${esc(i.id)}</span> ${badge(i.state)} <small>${esc(i.title || '')}</small>
      <span class="actions">${actions}</span></h2>
    <dl class="kv"><dt>Priority</dt><dd>${esc(i.priority)}</dd>
      <dt>Attempts</dt><dd>${(i.attempts || []).length} of ${esc(i.max_attempts)}</dd>
      <dt>Agent</dt><dd class="mono">${esc(i.agent || '—')}</dd>
      <dt>Submitted</dt><dd>${when(i.submitted_at_unix_ms)}</dd>
      <dt>Updated</dt><dd>${when(i.updated_at_unix_ms)}</dd>
      <dt>Branch</dt><dd class="mono">${esc(i.result && i.result.branch ? i.result.branch : '—')}</dd>
      <dt>Commit</dt><dd class="mono">${esc(i.result ? i.result.commit || 'no changes' : '—')}</dd>
      ${i.error ? `<dt>Error</dt><dd class="error">${esc(i.error)}</dd>` : ''}
      ${Object.keys(i.labels || {}).length ? `<dt>Labels</dt><dd>${Object.entries(i.labels).map(([k, v]) => esc(k + '=' + v)).join(', ')}</dd>` : ''}
    </dl></section>
    <section><h2>Attempts</h2>${(i.attempts || []).length === 0 ? '<p class="muted">None yet.</p>' :
      '<table><thead><tr><th>#</th><th>Agent</th><th>Lease token</th><th>Started</th><th>Took</th><th>Outcome</th><th>Exit</th><th>Commit</th><th>Error</th></tr></thead><tbody>' +
      i.attempts.map(a => `<tr data-attempt="${esc(a.number)}"><td>${esc(a.number)}</td><td class="mono">${esc(a.agent)}</td>
        <td class="mono">${esc(a.lease_token)}</td><td>${when(a.started_at_unix_ms)}</td>
        <td>${a.ended_at_unix_ms ? ago(a.ended_at_unix_ms - a.started_at_unix_ms) : ago(Date.now() - a.started_at_unix_ms) + '…'}</td>
        <td>${badge(a.outcome)}</td><td>${esc(a.exit_code === null ? '—' : a.exit_code)}</td>
        <td class="mono">${esc(a.commit ? a.commit.slice(0, 12) : '—')}</td><td class="wrap">${esc(a.error || '')}</td></tr>`).join('') +
      '</tbody></table>'}</section>
    <section><h2>Prompt</h2><pre>${esc(i.prompt || '')}</pre></section>
    <section><h2>Log <small>the tail of the last attempt's output</small></h2><pre id="log">${esc(i.log_tail || '(no output yet)')}</pre></section>`;
  const c = document.getElementById('cancel');
  if (c) c.onclick = () => { if (confirm('Cancel ' + i.id + '?')) act(`/api/v1/items/${encodeURIComponent(i.id)}/cancel`, 'cancel ' + i.id); };
  const r = document.getElementById('retry');
  if (r) r.onclick = () => act(`/api/v1/items/${encodeURIComponent(i.id)}/retry`, 'retry ' + i.id);
}

// ---------- the chart (plain SVG) ----------
async function refreshChart() {
  const el = document.getElementById('chart');
  if (!el) return;
  try {
    const doc = await api('/api/v1/series');
    el.innerHTML = `<div class="grid">
      ${panel('Throughput (items/min)', doc.points, [['done', 'ok'], ['failed', 'bad']], true)}
      ${panel('Item duration (s)', doc.points, [['avg_duration_s', 'accent'], ['max_duration_s', 'warn']], false)}
      ${panel('Queue depth', doc.points, [['pending', 'idle'], ['leased', 'warn']], false)}
    </div>`;
  } catch (e) { el.innerHTML = `<p class="error">${esc(e.message)}</p>`; }
}
function panel(title, pts, series, bars) {
  const W = 420, H = 140, L = 34, B = 18, T = 8;
  const n = pts.length;
  let max = 0;
  for (const p of pts) for (const [k] of series) if (p[k] !== null && p[k] > max) max = p[k];
  max = max > 0 ? niceMax(max) : 1;
  const x = i => L + (W - L - 4) * (i + 0.5) / n;
  const y = v => T + (H - T - B) * (1 - v / max);
  let g = '';
  for (let k = 0; k <= 2; k++) {
    const v = max * k / 2;
    g += `<line x1="${L}" x2="${W - 4}" y1="${y(v)}" y2="${y(v)}" stroke="var(--line)"/>` +
         `<text x="${L - 4}" y="${y(v) + 3}" text-anchor="end">${fmt(v)}</text>`;
  }
  g += `<text x="${L}" y="${H - 4}">-60m</text><text x="${(L + W) / 2}" y="${H - 4}" text-anchor="middle">-30m</text>` +
       `<text x="${W - 4}" y="${H - 4}" text-anchor="end">now</text>`;
  const bw = Math.max(1, (W - L - 4) / n / series.length - 0.5);
  series.forEach(([k, tone], si) => {
    const color = `var(--${tone})`;  // an SVG presentation attribute, not a style (CSP)
    if (bars) {
      pts.forEach((p, i) => {
        if (!p[k]) return;
        g += `<rect x="${x(i) - bw * series.length / 2 + si * bw}" y="${y(p[k])}" width="${bw}" height="${y(0) - y(p[k])}" fill="${color}"><title>${p[k]} ${k}</title></rect>`;
      });
    } else {
      let d = '', pen = false;
      pts.forEach((p, i) => {
        if (p[k] === null) { pen = false; return; }
        d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p[k]).toFixed(1);
        pen = true;
      });
      if (d) g += `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"/>`;
      pts.forEach((p, i) => {  // a dot per minute: a lone minute shows too
        if (p[k] !== null) g += `<circle cx="${x(i).toFixed(1)}" cy="${y(p[k]).toFixed(1)}" r="1.8" fill="${color}"><title>${fmt(p[k])} ${k.replace(/_/g, ' ')}</title></circle>`;
      });
    }
  });
  const legend = series.map(([k, tone]) => `<span><i class="tone-${tone}"></i>${k.replace(/_/g, ' ')}</span>`).join('');
  return `<div><div class="legend"><b>${esc(title)}</b>${legend}</div>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${g}</svg></div>`;
}
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function fmt(v) { return v >= 100 ? Math.round(v) : +v.toFixed(1); }

// ---------- start ----------
setupToken();
window.addEventListener('hashchange', render);
setInterval(() => { if (app.status) renderAgesOnly(); }, 1000);
// Ages and elapsed times move between frames: redraw the agents table locally (no request).
function renderAgesOnly() { if (document.getElementById('agents')) renderLive(true); }
loadRole().then(() => { connect(); render(); });
