// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core, against
// `keepip up -f examples/seed/before --dashboard` run as a user would. Every page loads under the
// strict CSP without a console error, a denial appears live after a denied request (waited for in
// the DOM), it leads to its trace, and each page's screenshot is a real picture. Heavy: it starts a
// browser (seconds of CPU), so it runs after the main group.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { CHROMIUM_ARGS } from '../helpers/chromium.ts';
import { send } from '../../src/demo/client.ts';
import { requireBinary, type Running, startKeepip } from '../helpers/process.ts';
import { ALLOWED, HOST, OTHER, seed } from './helpers.ts';

/** The text as rendered (what a person sees), not the DOM's textContent. */
function shown(locator: Locator): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText is the rendered text, the point here
  return locator.innerText();
}

/** A PNG with a real picture: the signature, non-zero size, and more bytes than a blank page compresses to. */
function assertScreenshot(png: Buffer, what: string): void {
  assert.deepEqual(
    [...png.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    `${what}: a PNG`,
  );
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width > 0 && height > 0, `${what}: ${width}x${height}`);
  assert.ok(png.length > 8_000, `${what}: ${png.length} bytes is a blank page, not a rendered one`);
}

describe('the dashboard in headless chromium (keepip up on the seed before the fix)', () => {
  let up: Running;
  let url: string;
  let lb: { host: string; port: number };
  let pod: { host: string; port: number };
  let profile: string;
  let browser: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    const executablePath = requireBinary('chromium');
    up = startKeepip(['up', '-f', seed('before'), '--ephemeral-ports', '--dashboard', '127.0.0.1:0']);
    url = (await up.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!;
    const lbLine = await up.waitFor(/lb\/ingress-nginx-controller:80 +\| listening on 127\.0\.10\.1:(\d+)/);
    lb = { host: '127.0.10.1', port: Number(lbLine[1]) };
    pod = {
      host: '127.0.30.1',
      port: Number((await up.waitFor(/gateway +\| listening http 127\.0\.30\.1:(\d+)/))[1]),
    };
    await up.waitFor(/the chain is running/);
    profile = await mkdtemp(join(tmpdir(), 'keepip-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1280, height: 800 },
    });
    page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });
  after(async () => {
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await up?.stop();
  });

  test('Decisions: an allowed and a denied request, then a live denial that leads to its trace', async () => {
    const allowed = await send({ ...pod, from: ALLOWED, hostHeader: HOST, path: '/' }, 30_000);
    assert.equal(allowed.status, 200);
    const denied = await send({ ...lb, from: OTHER, hostHeader: HOST, path: '/' }, 30_000);
    assert.equal(denied.status, 403);

    await page.goto(url);
    const row = page.locator('#decisions tbody tr.denied').first();
    await row.waitFor({ timeout: 30_000 });
    const text = await shown(row);
    assert.match(text, /127\.0\.10\.1/, 'the denied client address (the NLB, as the gateway sees it)');
    assert.match(text, /behind it: 127\.0\.20\.66/, 'and the client the NLB carried');
    assert.match(text, /127\.0\.20\.10\/32/, "the route's allowlist");
    assert.match(text, /403/);
    assert.match(await shown(page.locator('#decisions tbody')), new RegExp(ALLOWED.replaceAll('.', '\\.')));
    await page.locator('#stream-state', { hasText: 'live' }).waitFor({ timeout: 30_000 });

    // A denial after the page is open arrives over the live stream.
    assert.equal(
      (await send({ ...lb, from: '127.0.20.77', hostHeader: HOST, path: '/live' }, 30_000)).status,
      403,
    );
    const live = page.locator('#decisions tbody tr.denied', { hasText: '/live' });
    await live.waitFor({ timeout: 30_000 });
    await live.click();
    const access = page.locator('#trace-steps li[data-step="access"]');
    await access.waitFor({ timeout: 30_000 });
    assert.match(await shown(access), /allowlist-miss/);
    assert.match(await shown(access), /127\.0\.20\.10\/32/);
    assert.match(
      await shown(page.locator('#trace-title')),
      /403 GET gitea\.example\.com\/live from 127\.0\.10\.1/,
    );
    await page.locator('#denied-chart rect.bar-deny').first().waitFor({ timeout: 30_000 });
    assertScreenshot(await page.screenshot({ fullPage: true }), 'decisions');
  });

  test('Routes: the host, its path, backend endpoints and allowlist', async () => {
    await page.goto(`${url}routes`);
    const allowlist = page.locator('td.allowlist').first();
    await allowlist.waitFor({ timeout: 30_000 });
    assert.match(await shown(allowlist), /127\.0\.20\.10\/32/);
    assert.match(await shown(page.locator('main')), /gitea\.example\.com[\s\S]*gitea\/gitea-http:3000/);
    assertScreenshot(await page.screenshot({ fullPage: true }), 'routes');
  });

  test("Chain: the doctor's hops and findings for a typed client address", async () => {
    await page.goto(`${url}chain`);
    await page.locator('input[name="client"]').fill(ALLOWED);
    await page.locator('#chain-form button').click();
    const verdict = page.locator('#chain-verdict');
    await verdict.waitFor({ timeout: 30_000 });
    assert.match(
      await shown(verdict),
      /403 Forbidden: denied by allowlist-miss, the gateway sees 127\.0\.10\.1/,
    );
    assert.match(await shown(page.locator('#chain')), /CLIENT_IP_LOST_AT_LB/);
    assertScreenshot(await page.screenshot({ fullPage: true }), 'chain');
  });

  test('Load balancer: the NLB and its target', async () => {
    await page.goto(`${url}lb`);
    const card = page.locator('.card[data-name="lb/ingress-nginx-controller:80"]');
    await card.waitFor({ timeout: 30_000 });
    assert.match(await shown(card), /connects from 127\.0\.10\.1/);
    assert.match(await shown(card), /healthy/);
    assertScreenshot(await page.screenshot({ fullPage: true }), 'lb');
  });

  test('no page logged an error or a Content-Security-Policy violation', () => {
    assert.deepEqual(problems, []);
  });
});
