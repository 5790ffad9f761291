// The dashboard's JSON API over a running seed chain: what a script (and the page) reads about a
// denied and an allowed request, the routes, the doctor's chain, the load balancers, and the rules
// of the server itself (read-only, strict CSP, token, Host check).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CONTENT_SECURITY_POLICY } from '../../src/dashboard/server.ts';
import { HIDDEN_FAULT, hiddenFaultManifests } from '../helpers/hidden-fault.ts';
import { runKeepip } from '../helpers/process.ts';
import {
  ALLOWED,
  dashboardOnChain,
  direct,
  getWithHost,
  kept,
  OTHER,
  type Seeded,
  seededDashboard,
  viaLb,
} from './helpers.ts';

describe('dashboard API on the seed before the fix', () => {
  let s: Seeded;
  before(async () => {
    s = await seededDashboard('before');
    assert.equal((await direct(s, ALLOWED)).status, 200);
    assert.equal((await viaLb(s, OTHER)).status, 403);
    await kept(s, 2);
  });
  after(() => s.close());

  test('/api/decisions names the denied client, where it came from, the allowlist and the 403', async () => {
    const { status, body } = await s.get('/api/decisions');
    assert.equal(status, 200);
    const [allowed, denied] = body.decisions;
    assert.equal(allowed.client, ALLOWED);
    assert.equal(allowed.status, 200);
    assert.equal(allowed.denied, false);
    assert.equal(allowed.rule, 'allowlist');
    assert.equal(allowed.entry, '127.0.20.10/32');
    // Through the NLB the gateway sees the NLB's address: that is the incident.
    assert.equal(denied.client, '127.0.10.1');
    assert.deepEqual(denied.from, { kind: 'socket', label: 'TCP peer' });
    assert.equal(denied.status, 403);
    assert.equal(denied.denied, true);
    assert.equal(denied.rule, 'allowlist-miss');
    assert.equal(denied.lists.allow.raw, '127.0.20.10/32');
    assert.deepEqual(denied.route, { ingress: 'gitea/gitea', path: '/', pathType: 'Prefix' });
    assert.equal(denied.host, 'gitea.example.com');
    // keepip up runs the NLB too: it says whom the connection carried, the address the gateway lost.
    assert.deepEqual(denied.behind, { client: OTHER, via: 'lb/ingress-nginx-controller:80' });
    assert.equal(allowed.behind, null);
  });

  test('filters: denied only, by status, by address, by host', async () => {
    const ids = async (query: string) =>
      (await s.get(`/api/decisions?${query}`)).body.decisions.map((d: { client: string }) => d.client);
    assert.deepEqual(await ids('denied=1'), ['127.0.10.1']);
    assert.deepEqual(await ids('status=4xx'), ['127.0.10.1']);
    assert.deepEqual(await ids('status=200'), [ALLOWED]);
    assert.deepEqual(await ids('address=127.0.20.'), [ALLOWED]);
    assert.deepEqual(await ids('host=nothing.example'), []);
    assert.equal((await s.get('/api/decisions?status=forbidden')).body.error.code, 'DASHBOARD_BAD_QUERY');
  });

  test('/api/decisions/:id is the decision trace, hop by hop inside the gateway', async () => {
    const list = (await s.get('/api/decisions?denied=1')).body.decisions;
    const { status, body } = await s.get(`/api/decisions/${list[0].id}`);
    assert.equal(status, 200);
    assert.deepEqual(
      body.trace.map((t: { step: string }) => t.step),
      ['connection', 'proxy-header', 'client-address', 'route', 'access', 'answer'],
    );
    const access = body.trace.find((t: { step: string }) => t.step === 'access');
    assert.equal(access.sees, '127.0.10.1');
    assert.match(access.detail, /deny by allowlist-miss/);
    assert.match(access.detail, /allowlist \(annotation\): 127\.0\.20\.10\/32/);
    assert.match(body.trace[0].detail, /^TCP peer 127\.0\.10\.1:\d+ on http listener 127\.0\.30\.1:\d+/);
    assert.match(
      body.trace[0].detail,
      /lb\/ingress-nginx-controller:80 carried it for client 127\.0\.20\.66:\d+/,
    );
    const missing = await s.get('/api/decisions/999999');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'DASHBOARD_NOT_FOUND');
  });

  test('/api/stats counts requests and denials by route and the top denied addresses', async () => {
    const { body } = await s.get('/api/stats');
    let requests = 0;
    let denials = 0;
    for (const second of body.seconds) {
      const counts = second.routes['gitea/gitea /'];
      requests += counts?.requests ?? 0;
      denials += counts?.denials ?? 0;
    }
    assert.equal(requests, 2);
    assert.equal(denials, 1);
    assert.deepEqual(
      body.topDenied.map((t: { address: string; count: number }) => [t.address, t.count]),
      [['127.0.10.1', 1]],
    );
  });

  test('/api/routes: hosts, paths, backends with endpoints, lists, version, issues', async () => {
    const { body } = await s.get('/api/routes');
    assert.equal(body.configVersion, 1);
    const [host] = body.hosts;
    assert.equal(host.host, 'gitea.example.com');
    const [location] = host.locations;
    assert.equal(location.path, '/');
    assert.equal(location.ingress, 'gitea/gitea');
    assert.equal(location.allow.raw, '127.0.20.10/32');
    assert.equal(location.backend.service, 'gitea/gitea-http');
    assert.deepEqual(location.backend.endpoints, [{ address: '127.0.40.11', port: 3000, ready: true }]);
    assert.ok(Array.isArray(body.issues));
  });

  test("/api/chain is the doctor's report for a typed client", async () => {
    const { status, body } = await s.get('/api/chain?client=127.0.20.10&host=gitea.example.com');
    assert.equal(status, 200);
    assert.equal(body.schema, 'keepip.doctor/v1');
    assert.equal(body.verdict, 'denied-403');
    assert.equal(body.gatewayLogsAddress, '127.0.10.1');
    assert.ok(body.findings.some((f: { id: string }) => f.id === 'CLIENT_IP_LOST_AT_LB'));
    assert.equal((await s.get('/api/chain?client=not-an-ip')).body.error.code, 'DASHBOARD_BAD_QUERY');
    assert.equal((await s.get('/api/chain?client=10.0.0.1&via=carrier-pigeon')).status, 400);
  });

  test('/api/lb: the L4 hops, outside in, with targets, health and flows', async () => {
    const { body } = await s.get('/api/lb');
    const names = body.loadBalancers.map((l: { name: string }) => l.name);
    assert.deepEqual(names, ['lb/ingress-nginx-controller:80', 'cluster-ip/gitea-http:3000']);
    const [lb] = body.loadBalancers;
    assert.equal(lb.logicalListen, '127.0.10.1:80');
    assert.equal(lb.sourceAddress, '127.0.10.1');
    assert.equal(lb.proxyProtocol, null);
    assert.equal(lb.stats.flowsTotal, 1);
    assert.equal(lb.targets.length, 1);
  });

  test('the live stream sends a denial as it happens', async () => {
    const controller = new AbortController();
    const response = await fetch(new URL('/api/decisions/stream?denied=1', s.board.url), {
      signal: controller.signal,
    });
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    // The backlog first (the denial already kept), then the new one.
    const events = () => text.split('\n\n').filter((e) => e.includes('event: decision'));
    while (events().length < 1) {
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the stream ended before the backlog arrived');
      text += value;
    }
    assert.equal((await viaLb(s, '127.0.20.77', '/live')).status, 403);
    while (!text.includes('"target":"/live"')) {
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the stream ended before the denial arrived');
      text += value;
    }
    const live = JSON.parse(
      events()
        .find((e) => e.includes('/live'))!
        .split('data: ')[1]!,
    );
    assert.equal(live.status, 403);
    assert.equal(live.client, '127.0.10.1');
    assert.equal(live.denied, true);
    controller.abort();
  });

  test('each page is the shared shell around its own title, script and body', async () => {
    const pages = [
      ['/', 'Decisions', 'decisions', 'id="decisions"'],
      ['/routes', 'Routes', 'routes', 'id="routes"'],
      ['/chain', 'Chain', 'chain', 'id="chain-form"'],
      ['/lb', 'Load balancer', 'lb', 'id="lb"'],
    ] as const;
    for (const [path, title, name, marker] of pages) {
      const page = await s.get(path);
      assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8', path);
      assert.match(page.text, new RegExp(`<title>keepip · ${title}</title>`), path);
      assert.match(page.text, new RegExp(`<script type="module" src="/assets/${name}.js">`), path);
      assert.match(page.text, new RegExp(`<body data-page="${name}">`), path);
      assert.ok(page.text.includes(marker), `${path} has its own body`);
      assert.doesNotMatch(page.text, /\{\{/, `${path}: no placeholder left`);
    }
    // The shell and the page bodies are not served as files of their own.
    assert.equal((await s.get('/assets/page.html')).status, 404);
    assert.equal((await s.get('/assets/lb.main.html')).status, 404);
  });

  test('read-only, strict CSP, Host check, unknown paths', async () => {
    assert.match(CONTENT_SECURITY_POLICY, /script-src 'self';/);
    for (const path of ['/', '/routes', '/chain', '/lb', '/assets/decisions.js', '/assets/common.js']) {
      const page = await s.get(path);
      assert.equal(page.status, 200, path);
      assert.equal(page.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
      // No inline script, event handler attribute, style attribute, remote URL, or markup from strings.
      assert.doesNotMatch(page.text, /<script>|\son[a-z]+=|\sstyle=|https?:\/\/|innerHTML|eval\(/i, path);
    }
    const post = await fetch(new URL('/api/info', s.board.url), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(
      ((await post.json()) as { error: { code: string } }).error.code,
      'DASHBOARD_METHOD_NOT_ALLOWED',
    );
    const info = new URL('/api/info', s.board.url).href;
    assert.equal(await getWithHost(info, 'attacker.example'), 421);
    assert.equal(await getWithHost(info, 'attacker.example:80'), 421);
    assert.equal(await getWithHost(info, 'localhost:1234'), 200);
    assert.equal(await getWithHost(info, '[::1]:1234'), 200);
    assert.equal((await s.get('/api/nothing')).status, 404);
    assert.equal((await s.get('/assets/../package.json')).status, 404);
  });
});

describe('dashboard API with a token', () => {
  const token = 'a-long-enough-dashboard-token-1234';
  let s: Seeded;
  before(async () => {
    s = await seededDashboard('before', token);
  });
  after(() => s.close());

  test('every /api call needs the bearer token; the static page does not (it holds no data)', async () => {
    const bare = await s.get('/api/info');
    assert.equal(bare.status, 401);
    assert.equal(bare.body.error.code, 'DASHBOARD_UNAUTHORIZED');
    assert.equal((await s.get('/api/info', { authorization: 'Bearer wrong-token-wrong-token' })).status, 401);
    const ok = await s.get('/api/info', { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.mode, 'up');
    assert.equal((await s.get('/api/decisions/stream')).status, 401);
    assert.equal((await s.get('/')).status, 200);
    // With a token a name may be used (rebinding cannot guess the token).
    const info = new URL('/api/info', s.board.url).href;
    assert.equal(await getWithHost(info, 'dash.example', { authorization: `Bearer ${token}` }), 200);
    assert.equal(await getWithHost(info, 'dash.example'), 401);
  });
});

describe('dashboard Chain page on manifests with a hidden fault', () => {
  let s: Seeded;
  let dir: string;
  before(async () => {
    dir = await hiddenFaultManifests();
    s = await dashboardOnChain(dir, null);
  });
  after(() => s.close());

  test('/api/chain reports what the fix reveals (afterFix), as keepip doctor -f does on the same files', async () => {
    const query = 'client=127.0.20.10&host=gitea.example.com';
    const { body } = await s.get(`/api/chain?${query}`);
    const ids = (list: { id: string }[]) => list.map((f) => f.id);
    const patches = (list: { id: string; fix: { patches: { patch: unknown }[] } }[]) =>
      list.map((f) => [f.id, f.fix.patches[0]?.patch]);
    assert.deepEqual(ids(body.findings), HIDDEN_FAULT.findings);
    assert.deepEqual(patches(body.afterFix), HIDDEN_FAULT.afterFix);
    const cli = await runKeepip([
      'doctor',
      '-f',
      dir,
      '--client',
      '127.0.20.10',
      '--host',
      'gitea.example.com',
      '--json',
    ]);
    const doctor = JSON.parse(cli.stdout);
    assert.deepEqual(
      [ids(body.findings), patches(body.afterFix)],
      [ids(doctor.findings), patches(doctor.afterFix)],
    );
  });
});
