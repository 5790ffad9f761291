// An Ingress regex whose shape the load-time scan does not see (overlapping alternatives, a polynomial
// run of `.*`) must not let one request hold the gateway: every keepip process lets V8 finish an
// excessively backtracking match in its linear-time engine (src/regex-engine.ts), and the gateway's
// case-insensitive regexes are compiled without the `i` flag that engine refuses
// (src/config/caseless-regex.ts). Run against the real binary, since the setting is the process's own.
// Without both, each crafted request below takes longer than the suite's whole run (2^40 and 4,000^3
// steps); with them, each is answered like any other. Paths, a `~` server-alias and a block-user-agents
// map entry: the three ways an Ingress author's regex meets what a client sends.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { type Running, startKeepip } from '../helpers/process.ts';

describe('Ingress regexes cannot stall the gateway', () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;
  let gateway: Running;
  let port = 0;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
    const file = dir.write(
      'web.yaml',
      toYaml([
        controllerConfigMap({ 'block-user-agents': '~*^x(b|b)*$' }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          annotations: { 'use-regex': 'true', 'server-alias': '~^(c|c)*\\.alias$' },
          paths: [
            { path: '/alt/(a|a)*$', pathType: 'ImplementationSpecific', service: 'web', port: 80 },
            { path: '/poly/.*.*.*=x$', pathType: 'ImplementationSpecific', service: 'web', port: 80 },
            { path: '/ok', pathType: 'Prefix', service: 'web', port: 80 },
          ],
        }),
      ]),
    );
    gateway = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0']);
    const listening = await gateway.waitFor(/keepip gateway: listening http 127\.0\.0\.1:(\d+)/);
    port = Number(listening[1]);
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
    dir.remove();
  });

  test('the scan lets these shapes through: they are served as written', async () => {
    assert.equal((await request(port, { host: 'web.example.com', path: '/alt/aaaa' })).status, 200);
    assert.equal((await request(port, { host: 'web.example.com', path: '/poly/a=b=c=x' })).status, 200);
    assert.equal((await request(port, { host: 'CcC.alias', path: '/ok' })).status, 200);
    const ua = { 'user-agent': 'XbBb' };
    assert.equal((await request(port, { host: 'web.example.com', path: '/ok', headers: ua })).status, 403);
  });

  test('overlapping alternatives under a repeat: a crafted path is answered, the next request too', async () => {
    const crafted = await request(port, { host: 'web.example.com', path: `/alt/${'a'.repeat(40)}!` });
    assert.equal(crafted.status, 404);
    assert.equal((await request(port, { host: 'web.example.com', path: '/ok' })).status, 200);
  });

  test('a polynomial run of .*: a 4,000-byte crafted path is answered, the next request too', async () => {
    const crafted = await request(port, { host: 'web.example.com', path: `/poly/${'='.repeat(4000)}` });
    assert.equal(crafted.status, 404);
    assert.equal((await request(port, { host: 'web.example.com', path: '/ok' })).status, 200);
  });

  test('a ~ server-alias: a crafted Host goes to the default server, the next request is served', async () => {
    const crafted = await request(port, { host: `${'c'.repeat(40)}.other`, path: '/ok' });
    assert.equal(crafted.status, 404);
    assert.equal((await request(port, { host: 'ccc.alias', path: '/ok' })).status, 200);
  });

  test('a block-user-agents regex: a crafted User-Agent is not blocked, and is answered', async () => {
    const crafted = { 'user-agent': `x${'b'.repeat(40)}!` };
    assert.equal(
      (await request(port, { host: 'web.example.com', path: '/ok', headers: crafted })).status,
      200,
    );
    assert.equal((await request(port, { host: 'web.example.com', path: '/ok' })).status, 200);
  });
});
