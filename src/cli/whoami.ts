// `keepip whoami --listen ADDR:PORT`: the echo backend, in the role of the seed's Gitea pod.
import { startWhoami } from '../whoami/server.ts';
import { formatHostPort, parseHostPort } from '../net/host-port.ts';
import { parseCommandArgs } from './args.ts';
import type { Command } from './main.ts';
import { catchSignals } from './signals.ts';

const HELP = `Usage: keepip whoami [--listen ADDR:PORT] [--name NAME]

An echo backend: every request is answered with what it received (remote address and port, method,
host, path, headers, body size and SHA-256). JSON with "Accept: application/json" or ?format=json,
text otherwise. GET /health answers 200; ?wait=250ms delays the answer (at most 30s; 2s, or a plain
number of seconds). A request with
"Upgrade: websocket" on any path becomes a WebSocket that echoes every text and binary message (up to
1 MiB each; a larger one closes it with 1009). A request's head must arrive within 10s, the whole
request within 60s.

Options:
  --listen ADDR:PORT   where to listen (default 127.0.0.1:8080; port 0 picks a free port)
  --name NAME          the "name" shown in every answer (default whoami)
  -h, --help           this help
`;

const USAGE = { command: 'whoami', help: HELP };

export const command: Command = {
  summary: 'An echo backend that shows what it received',
  async run(argv) {
    const parsed = parseCommandArgs(USAGE, {
      args: argv,
      options: {
        listen: { type: 'string' },
        name: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (typeof parsed === 'number') return parsed;
    const { values } = parsed;
    const listen = parseHostPort(values.listen ?? '127.0.0.1:8080');
    if (!listen.ok) {
      process.stderr.write(`keepip whoami: --listen: ${listen.error}\n`);
      return 2;
    }
    let running: Awaited<ReturnType<typeof startWhoami>>;
    try {
      running = await startWhoami({ ...listen.value, ...(values.name ? { name: values.name } : {}) });
    } catch (error) {
      const where = formatHostPort(listen.value.host, listen.value.port);
      process.stderr.write(`keepip whoami: cannot listen on ${where}: ${(error as Error).message}\n`);
      return 1;
    }
    const { address, port } = running.address;
    // Handlers first: whoever reads the start-up line may signal at once.
    const signals = catchSignals();
    process.stdout.write(`keepip whoami: listening on http://${formatHostPort(address, port)}\n`);
    await signals.stopped;
    await running.close();
    return 0;
  },
};
