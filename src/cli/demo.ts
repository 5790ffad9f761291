// `keepip demo` (npm start): the seed's incident and its fix, live on loopback, step by step.
import { createInterface } from 'node:readline/promises';
import { DASHBOARD_FLAG_OPTIONS, DASHBOARD_USAGE, prepareDashboard } from '../dashboard/flag.ts';
import { runSeedDemo } from '../demo/seed-demo.ts';
import { parseCommandArgs, usageError } from './args.ts';
import type { Command } from './main.ts';

const HELP = `Usage: keepip demo [--no-pause] [--json] [--dashboard ADDR:PORT]

Runs the seed's scenario (examples/seed) on 127.0.0.0/8 with keepip up and walks through it: the
allowlisted client refused with 403 because the gateway sees the load balancer's address, the
doctor's explanation, the fix applied to the manifests and reloaded live, the same request passing
with the client's own address in the access log and at the backend, a client that is not allowlisted
still refused, and a forged PROXY header sent straight to the gateway pod dropped. Every step prints
the curl command that repeats it by hand.

Uses the manifests' ports (80) when it may bind them, free ports otherwise.

Options:
      --no-pause   do not wait for Enter between steps (the default when stdin is not a terminal)
      --json       print the steps' results as one JSON object at the end
${DASHBOARD_USAGE}  -h, --help       this help

Exit codes: 0 every step behaved as expected, 1 a step did not, 2 usage error.
`;

const USAGE = { command: 'demo', help: HELP };

export const command: Command = {
  summary: "Walk through the seed's incident and its fix on loopback",
  async run(argv) {
    const parsed = parseCommandArgs(USAGE, {
      args: argv,
      options: {
        'no-pause': { type: 'boolean' },
        json: { type: 'boolean' },
        ...DASHBOARD_FLAG_OPTIONS,
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (typeof parsed === 'number') return parsed;
    const { values } = parsed;
    const dashboard = await prepareDashboard(values, process.env);
    if (!dashboard.ok) return usageError(USAGE, dashboard.error);
    const interactive = process.stdin.isTTY === true && !values['no-pause'];
    const prompt = interactive ? createInterface({ input: process.stdin, output: process.stdout }) : null;
    try {
      const result = await runSeedDemo(
        {
          print: (text) => process.stdout.write(text),
          pause: async () => {
            if (prompt) await prompt.question('[press Enter to continue] ');
          },
        },
        dashboard.plan ? { dashboard: dashboard.plan } : {},
      );
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      return result.ok ? 0 : 1;
    } finally {
      prompt?.close();
    }
  },
};
