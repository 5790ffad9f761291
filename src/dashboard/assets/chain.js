// The Chain page: the doctor's hop-by-hop picture for a client address, with its findings and fixes,
// computed on the model this process runs.
import { api, clear, el, grid, initPage, showError } from './common.js';

const form = document.getElementById('chain-form');
const out = document.getElementById('chain');

function render(report) {
  clear(out);
  out.append(el('p', { class: 'verdict', id: 'chain-verdict' }, report.summary));
  out.append(
    grid(
      ['hop', 'sees', 'detail'],
      report.hops.map((h) =>
        el(
          'tr',
          {},
          el('td', {}, h.name),
          el('td', { class: 'mono' }, h.sees ?? '-'),
          el('td', {}, h.detail),
        ),
      ),
      { id: 'hops' },
    ),
  );
  for (const f of report.findings) out.append(findingCard(f));
  // What the fix reveals (one fault can hide another), as `keepip doctor -f` reports it.
  const afterFix = report.afterFix ?? [];
  if (afterFix.length > 0) {
    out.append(
      el(
        'p',
        { class: 'verdict', id: 'chain-after-fix' },
        `Once those fixes are applied, ${afterFix.length} more finding(s) show, which the first ones hid: apply their fixes with them.`,
      ),
    );
    for (const f of afterFix) out.append(findingCard(f));
  }
}

function findingCard(f) {
  const fix = f.fix
    ? el(
        'div',
        {},
        el('p', {}, `fix: ${f.fix.summary}`),
        f.fix.patches.map((p) => el('pre', {}, p.kubectl)),
      )
    : null;
  return el(
    'div',
    { class: 'card' },
    el('h3', {}, el('span', { class: `badge sev-${f.severity}` }, f.severity), ` ${f.id}`),
    el('p', {}, f.message),
    fix,
  );
}

async function walk() {
  const query = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (String(v).trim()) query.set(k, String(v).trim());
  history.replaceState(null, '', `${location.pathname}?${query}`);
  try {
    render(await api(`/api/chain?${query}`));
  } catch (error) {
    showError(out, error);
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  walk();
});
await initPage();
const given = new URLSearchParams(location.search);
for (const name of ['client', 'host', 'path', 'via'])
  if (given.get(name)) form.elements[name].value = given.get(name);
if (given.get('client')) walk();
