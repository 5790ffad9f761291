// Debian's chromium as the browser tests start it (playwright-core): headless, no sandbox (root in CI),
// and nothing that reaches beyond loopback on its own (QUIC, background networking, updates, sync).
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
