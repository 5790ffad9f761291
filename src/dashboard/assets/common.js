// Shared by every page: the token, API calls, the header, and DOM building. Text always goes in via
// textContent (request data is written by clients: hosts, paths and headers are never markup).

const TOKEN_KEY = 'keepip-dashboard-token';

/** A #token=... fragment moves into sessionStorage and leaves the address bar (and history). */
function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
}

export function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

function askForToken() {
  const box = document.getElementById('token-box');
  if (!box?.hidden) return;
  box.hidden = false;
  document.getElementById('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById('token-input').value.trim());
    location.reload();
  });
}

/** GET /api/...: the JSON body, or throws an Error carrying the API's code. */
export async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { accept: 'application/json', ...authHeaders() } });
  const body = await response.json().catch(() => null);
  if (response.status === 401) askForToken();
  if (!response.ok) {
    const error = new Error(body?.error?.message ?? `HTTP ${response.status}`);
    error.code = body?.error?.code ?? 'HTTP';
    throw error;
  }
  return body;
}

/** el('td', { class: 'x', data: { id: 1 } }, 'text', child): an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'data') for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A `grid` table: one header row of `headings`, then `rows` (tr elements). */
export function grid(headings, rows, attrs = {}) {
  return el(
    'table',
    { class: 'grid', ...attrs },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        headings.map((h) => el('th', {}, h)),
      ),
    ),
    el('tbody', {}, rows),
  );
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function kv(pairs) {
  const dl = el('dl', { class: 'kv' });
  for (const [key, value] of pairs) dl.append(el('dt', {}, key), el('dd', {}, value ?? '-'));
  return dl;
}

export function showError(container, error) {
  clear(container).append(el('p', { class: 'badge deny' }, `${error.code ?? 'error'}: ${error.message}`));
}

/** The header: current page, mode and config version; pages this process has no data for are hidden. */
export async function initPage() {
  takeTokenFromFragment();
  const page = document.body.dataset.page;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === page) link.classList.add('current');
  }
  try {
    const info = await api('/api/info');
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (info.pages[link.dataset.nav] === false) link.hidden = true;
    }
    document.getElementById('mode').textContent =
      `keepip ${info.mode} · config v${info.configVersion ?? '-'} · ${info.version}`;
    return info;
  } catch {
    return null;
  }
}

export function listText(list) {
  if (!list) return null;
  return list.valid ? `${list.raw} (${list.from})` : `${list.raw} INVALID: ${list.error}`;
}
