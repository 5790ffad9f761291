// The Decisions page: recent requests, live (Server-Sent Events read through fetch, so the token can
// travel in a header), filters, and the decision trace of the one clicked.
import { drawCharts } from './charts.js';
import { api, authHeaders, clear, el, initPage, showError } from './common.js';

const MAX_ROWS = 500;
const rows = new Map();
const tbody = document.querySelector('#decisions tbody');
const state = document.getElementById('stream-state');
const filters = document.getElementById('filters');
let stream = null;

function filterQuery() {
  const data = new FormData(filters);
  const query = new URLSearchParams();
  for (const name of ['host', 'status', 'address']) {
    const value = String(data.get(name) ?? '').trim();
    if (value) query.set(name, value);
  }
  if (data.get('denied')) query.set('denied', '1');
  return query;
}

/** The rule column: the rule, and the list or entry behind it (e.g. "allowlist 127.0.20.10/32"). */
function ruleText(d) {
  if (d.rule === 'allowlist-miss' && d.lists.allow)
    return `allowlist-miss · not in allowlist ${d.lists.allow.raw}`;
  if (d.rule === 'allowlist' && d.entry) return `allowlist entry ${d.entry}`;
  if ((d.rule === 'denylist' || d.rule === 'block-cidrs') && d.entry) return `${d.rule} entry ${d.entry}`;
  if (d.rule === 'invalid-rules') return 'invalid-rules · the lists fail closed';
  return d.rule;
}

function addRow(d) {
  if (rows.has(d.id)) return;
  const time = d.time.slice(11, 23);
  const route = d.route ? `${d.route.ingress} ${d.route.path}` : '-';
  const statusClass = d.denied ? 'status' : d.status < 400 ? 'status ok' : 'status';
  const tr = el(
    'tr',
    { class: d.denied ? 'denied' : null, data: { id: d.id, client: d.client, status: d.status } },
    el('td', { class: 'mono' }, time),
    el(
      'td',
      { class: 'mono client' },
      d.client,
      d.behind
        ? el('div', { class: 'muted behind' }, `behind it: ${d.behind.client} (${d.behind.via})`)
        : null,
    ),
    el('td', {}, d.from.label),
    el('td', { class: 'mono' }, `${d.host || '-'} ${d.target}`),
    el('td', {}, route),
    el('td', { class: 'rule' }, ruleText(d)),
    el('td', { class: statusClass }, String(d.status)),
  );
  tr.addEventListener('click', () => showTrace(d.id));
  rows.set(d.id, tr);
  tbody.prepend(tr);
  while (rows.size > MAX_ROWS) {
    const oldest = rows.keys().next().value;
    rows.get(oldest).remove();
    rows.delete(oldest);
  }
  document.getElementById('empty').hidden = true;
}

async function showTrace(id) {
  const panel = document.getElementById('trace');
  panel.hidden = false;
  for (const tr of tbody.querySelectorAll('tr.selected')) tr.classList.remove('selected');
  rows.get(id)?.classList.add('selected');
  history.replaceState(null, '', `${location.pathname}${location.search}#decision=${id}`);
  try {
    const { summary, trace } = await api(`/api/decisions/${id}`);
    const verdict = summary.denied ? 'badge deny' : summary.status < 400 ? 'badge ok' : 'badge';
    clear(panel).append(
      el(
        'h2',
        { id: 'trace-title' },
        el('span', { class: verdict }, String(summary.status)),
        ` ${summary.method} ${summary.host}${summary.target} from ${summary.client}`,
      ),
      el('p', {}, `decided by ${summary.rule}${summary.entry ? ` ${summary.entry}` : ''}: ${summary.detail}`),
      el(
        'ol',
        { id: 'trace-steps' },
        trace.map((s) =>
          el(
            'li',
            { data: { step: s.step } },
            el('span', { class: 'step' }, s.step),
            s.sees ? ` sees ${s.sees}` : '',
            el('br'),
            s.detail,
          ),
        ),
      ),
      el(
        'p',
        {},
        el(
          'a',
          {
            href: `/chain?client=${encodeURIComponent(summary.client)}&host=${encodeURIComponent(summary.host)}`,
          },
          'Walk this client through the chain (doctor) →',
        ),
      ),
    );
  } catch (error) {
    showError(panel, error);
  }
}

/** Reads the SSE stream with fetch (EventSource cannot send the Authorization header). */
async function follow() {
  stream?.abort();
  const controller = new AbortController();
  stream = controller;
  clear(tbody);
  rows.clear();
  try {
    const response = await fetch(`/api/decisions/stream?${filterQuery()}`, {
      headers: { accept: 'text/event-stream', ...authHeaders() },
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    state.textContent = 'live';
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (data) addRow(JSON.parse(data));
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    state.textContent = `stream lost (${error.message}); retrying`;
  }
  if (!controller.signal.aborted) setTimeout(follow, 2000);
}

async function refreshStats() {
  try {
    const stats = await api('/api/stats');
    drawCharts(stats);
    const c = stats.counters;
    document.getElementById('counters').textContent =
      `${c.seen} requests seen, ${c.denied} denied, ${c.sampledOut} not kept (sampled under load)`;
  } catch {
    // the next round tries again
  }
}

filters.addEventListener('submit', (event) => event.preventDefault());
filters.addEventListener('change', () => follow());
await initPage();
const wanted = /#decision=(\d+)/.exec(location.hash);
follow();
if (wanted) showTrace(Number(wanted[1]));
refreshStats();
setInterval(refreshStats, 2000);
