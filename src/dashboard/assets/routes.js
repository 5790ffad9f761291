// The Routes page: what the gateway serves now, host by host, with each location's lists, the
// settings its annotations gave it, its backend's endpoints, and the issues of the last load.
import { api, clear, el, grid, initPage, kv, listText, showError } from './common.js';

const root = document.getElementById('routes');

function endpoints(backend) {
  if (!backend) return 'no backend';
  if (!backend.found) return el('span', { class: 'badge deny' }, `Service ${backend.service} not found`);
  const list = el('span', {});
  for (const e of backend.endpoints)
    list.append(
      el(
        'span',
        { class: 'mono' },
        el('span', { class: e.ready ? 'dot up' : 'dot' }),
        `${e.address}:${e.port} `,
      ),
    );
  if (backend.endpoints.length === 0) list.append(el('span', { class: 'badge deny' }, 'no endpoint: 503'));
  return el(
    'div',
    {},
    `${backend.service}:${backend.port} `,
    el('span', { class: 'muted' }, `(${backend.ready} ready)`),
    el('br'),
    list,
  );
}

function annotations(l) {
  const shown = Object.entries(l.annotations).filter(([, v]) => v !== null && v !== false);
  const parts = shown.map(([k, v]) => `${k}=${v}`);
  const a = l.access;
  if (a?.rateLimit)
    parts.push(`limit rps=${a.rateLimit.rps} rpm=${a.rateLimit.rpm} connections=${a.rateLimit.connections}`);
  if (a?.basicAuth)
    parts.push(
      `basic auth "${a.basicAuth.realm}" (Secret ${a.basicAuth.secret}, ${a.basicAuth.users} users)`,
    );
  if (a?.externalAuth) parts.push(`auth-url ${a.externalAuth.url}`);
  if (a?.satisfy && a.satisfy !== 'all') parts.push(`satisfy=${a.satisfy}`);
  if (a?.denied) parts.push(`fails closed: ${a.denied.annotation} (${a.denied.reason})`);
  return el(
    'ul',
    { class: 'mono' },
    parts.map((p) => el('li', {}, p)),
  );
}

function hostCard(host) {
  const table = grid(
    ['path', 'Ingress', 'backend and endpoints', 'allowlist', 'denylist', 'annotations'],
    host.locations.map((l) =>
      el(
        'tr',
        { data: { path: l.path } },
        el('td', { class: 'mono' }, `${l.path} `, el('span', { class: 'muted' }, l.pathType)),
        el('td', {}, l.ingress),
        el('td', {}, endpoints(l.backend)),
        el('td', { class: 'mono allowlist' }, listText(l.allow) ?? '-'),
        el('td', { class: 'mono' }, listText(l.deny) ?? '-'),
        el('td', {}, annotations(l)),
      ),
    ),
  );
  const tls = host.tls ? `TLS from Secret ${host.tls.secret}` : 'no TLS';
  return el(
    'div',
    { class: 'card' },
    el('h2', {}, host.host, ' ', el('span', { class: 'muted' }, tls)),
    table,
  );
}

function render(view) {
  clear(root);
  const c = view.clientAddress;
  root.append(
    el(
      'div',
      { class: 'card' },
      el('h2', {}, `Configuration v${view.configVersion}`),
      kv([
        ['ingress class', view.ingressClass],
        [
          'client address',
          `socket${c.useProxyProtocol ? ' → PROXY header' : ''}${c.useForwardedHeaders || c.enableRealIp ? ` → ${c.forwardedForHeader}` : ''}`,
        ],
        ['trusted peers', `${c.trusted.join(', ') || 'nobody'} (${c.trustSource})`],
        ['block-cidrs', listText(view.blockCidrs) ?? '-'],
        ['default allowlist', listText(view.defaultAllow) ?? '-'],
        ['default denylist', listText(view.defaultDeny) ?? '-'],
        ['default backend', view.defaultBackend ? view.defaultBackend.service : '404'],
      ]),
    ),
  );
  const issues = el(
    'div',
    { class: 'card', id: 'issues' },
    el('h2', {}, `Issues from the last load (${view.issues.length})`),
  );
  if (view.issues.length === 0) issues.append(el('p', { class: 'muted' }, 'none'));
  else
    issues.append(
      el(
        'ul',
        {},
        view.issues.map((i) =>
          el('li', {}, el('span', { class: `badge sev-${i.severity}` }, i.severity), ` ${i.message}`),
        ),
      ),
    );
  root.append(issues);
  for (const host of view.hosts) root.append(hostCard(host));
}

await initPage();
try {
  render(await api('/api/routes'));
} catch (error) {
  showError(root, error);
}
