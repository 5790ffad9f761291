// Small hand-drawn SVG charts: requests and denials per second, the same by route, and the top denied
// addresses. No library: a few rects and text elements, built with the DOM.
const NS = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 120;

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function reset(id) {
  const root = document.getElementById(id);
  while (root.firstChild) root.firstChild.remove();
  root.append(svg('line', { class: 'axis', x1: 0, y1: H - 14, x2: W, y2: H - 14 }));
  return root;
}

/** Totals per second for the last 60 seconds, oldest first (seconds without traffic count 0). */
function perSecond(stats) {
  const series = [];
  const bySecond = new Map(stats.seconds.map((s) => [s.second, s.routes]));
  for (let s = stats.now - 59; s <= stats.now; s += 1) {
    let requests = 0;
    let denials = 0;
    for (const counts of Object.values(bySecond.get(s) ?? {})) {
      requests += counts.requests;
      denials += counts.denials;
    }
    series.push({ requests, denials });
  }
  return series;
}

function drawRate(stats) {
  const root = reset('rate-chart');
  const series = perSecond(stats);
  const max = Math.max(1, ...series.map((p) => p.requests));
  const bw = W / series.length;
  series.forEach((p, i) => {
    const h = ((H - 20) * p.requests) / max;
    const d = ((H - 20) * p.denials) / max;
    if (p.requests > 0)
      root.append(svg('rect', { class: 'bar-req', x: i * bw + 1, y: H - 14 - h, width: bw - 2, height: h }));
    if (p.denials > 0)
      root.append(svg('rect', { class: 'bar-deny', x: i * bw + 1, y: H - 14 - d, width: bw - 2, height: d }));
  });
  root.append(svg('text', { class: 'small', x: 2, y: 10 }, `max ${max}/s`));
  root.append(svg('text', { class: 'small', x: 2, y: H - 2 }, '-60 s'));
  root.append(svg('text', { class: 'small', x: W - 30, y: H - 2 }, 'now'));
}

function drawRoutes(stats) {
  const root = reset('route-chart');
  const totals = new Map();
  for (const bucket of stats.seconds) {
    if (bucket.second < stats.now - 59) continue;
    for (const [route, counts] of Object.entries(bucket.routes)) {
      const t = totals.get(route) ?? { requests: 0, denials: 0 };
      t.requests += counts.requests;
      t.denials += counts.denials;
      totals.set(route, t);
    }
  }
  const top = [...totals.entries()].sort((a, b) => b[1].requests - a[1].requests).slice(0, 5);
  const max = Math.max(1, ...top.map(([, t]) => t.requests));
  top.forEach(([route, t], i) => {
    const y = 4 + i * 21;
    const w = ((W - 260) * t.requests) / max;
    const d = ((W - 260) * t.denials) / max;
    root.append(svg('text', { x: 0, y: y + 12 }, route.length > 38 ? `${route.slice(0, 37)}…` : route));
    root.append(svg('rect', { class: 'bar-req', x: 250, y, width: Math.max(w, 1), height: 14 }));
    if (t.denials > 0)
      root.append(svg('rect', { class: 'bar-deny', x: 250, y, width: Math.max(d, 1), height: 14 }));
    root.append(
      svg(
        'text',
        { class: 'small', x: 254 + Math.max(w, 1), y: y + 11 },
        `${(t.requests / 60).toFixed(2)}/s, ${t.denials} denied`,
      ),
    );
  });
  if (top.length === 0)
    root.append(svg('text', { class: 'small', x: 2, y: 20 }, 'no requests in the last minute'));
}

function drawDenied(stats) {
  const root = reset('denied-chart');
  const top = stats.topDenied.slice(0, 5);
  const max = Math.max(1, ...top.map((t) => t.count));
  top.forEach((t, i) => {
    const y = 4 + i * 21;
    const w = ((W - 350) * t.count) / max; // room for the label
    root.append(svg('text', { x: 0, y: y + 12 }, t.address));
    root.append(svg('rect', { class: 'bar-deny', x: 250, y, width: Math.max(w, 1), height: 14 }));
    // count is sure; an address that took an evicted one's place may have had up to count + error.
    const label = t.error > 0 ? `≥ ${t.count} (≤ ${t.count + t.error})` : String(t.count);
    root.append(svg('text', { class: 'small', x: 254 + Math.max(w, 1), y: y + 11 }, label));
  });
  if (top.length === 0) root.append(svg('text', { class: 'small', x: 2, y: 20 }, 'nobody denied yet'));
}

export function drawCharts(stats) {
  drawRate(stats);
  drawRoutes(stats);
  drawDenied(stats);
}
