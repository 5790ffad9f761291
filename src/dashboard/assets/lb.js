// The Load balancer page: each L4 hop keepip runs, its targets' health, flows and PROXY settings.
import { api, clear, el, grid, initPage, kv, showError } from './common.js';

const root = document.getElementById('lb');

function card(lb) {
  const s = lb.stats;
  return el(
    'div',
    { class: 'card', data: { name: lb.name } },
    el(
      'h2',
      {},
      lb.name,
      ' ',
      el(
        'span',
        { class: 'muted' },
        lb.logicalListen && lb.logicalListen !== lb.listen
          ? `${lb.logicalListen} (listening on ${lb.listen})`
          : lb.listen,
      ),
    ),
    kv([
      ['PROXY protocol', lb.proxyProtocol ?? 'off'],
      [
        'client address',
        lb.preserveClientIp
          ? "preserved (connects from the client's own address)"
          : `replaced: connects from ${lb.sourceAddress ?? 'the OS-chosen address'}`,
      ],
      ['flows', `${s.flowsActive} active, ${s.flowsTotal} total`],
      ['bytes', `${s.bytesToTarget} to targets, ${s.bytesToClient} to clients`],
      ['PROXY headers sent', `v1 ${s.proxyHeadersSent.v1}, v2 ${s.proxyHeadersSent.v2}`],
      [
        'rejected',
        Object.entries(s.flowsRejected)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none',
      ],
      ['failing open', lb.failingOpen ? 'yes: no target is healthy, all get traffic' : 'no'],
    ]),
    grid(
      ['target', 'health', 'in rotation', 'active flows', 'checks', 'last error'],
      lb.targets.map((t) =>
        el(
          'tr',
          {},
          el('td', { class: 'mono' }, t.target),
          el('td', {}, el('span', { class: t.status === 'healthy' ? 'dot up' : 'dot' }), t.status),
          el('td', {}, t.inRotation ? 'yes' : 'no'),
          el('td', {}, String(t.activeFlows)),
          el('td', {}, String(t.checks)),
          el('td', {}, t.lastError ?? '-'),
        ),
      ),
    ),
  );
}

async function refresh() {
  try {
    const { loadBalancers } = await api('/api/lb');
    clear(root);
    if (loadBalancers.length === 0)
      root.append(el('p', { class: 'muted' }, 'no load balancer runs in this process'));
    for (const lb of loadBalancers) root.append(card(lb));
  } catch (error) {
    showError(root, error);
  }
}

await initPage();
await refresh();
setInterval(refresh, 3000);
