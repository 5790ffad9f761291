// The keepip command line: one module per command under src/cli/, loaded on demand so that
// `keepip pp decode` does not pay for the gateway's start-up.
import { fileURLToPath } from 'node:url';
import { reexecServingCommand } from './bounded-heap.ts';

export interface Command {
  /** One line for the top-level help. */
  summary: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, { summary: string }> = {
  demo: {
    summary: "Walk through the seed's incident and its fix on loopback",
  },
  up: {
    summary: 'Run the chain a directory of manifests describes (lb, kube-proxy hop, gateway, backends)',
  },
  gateway: {
    summary: 'The L7 ingress gateway for Ingress manifests (ingress-nginx compatible)',
  },
  controller: {
    summary: 'A drop-in for the ingress-nginx controller: watch the cluster, serve its Ingresses',
  },
  lb: {
    summary: 'An L4 TCP load balancer in the role of an AWS NLB, with PROXY protocol',
  },
  doctor: {
    summary: 'Explain, hop by hop, where the client IP is lost and how to fix it',
  },
  manifests: { summary: 'Print the manifests that install keepip, from ingress-nginx Helm values' },
  whoami: { summary: 'An echo backend that shows what it received' },
  pp: { summary: 'Decode and encode PROXY protocol v1/v2 headers' },
};

/**
 * Other names for a command. The ingress-nginx Helm chart starts its controller with the argument
 * `/nginx-ingress-controller` (the image's entrypoint runs it); with keepip's image, whose entrypoint
 * is `keepip`, the same Deployment arguments then start `keepip controller`: swap the image, keep the args.
 */
const ALIASES: Readonly<Record<string, string>> = {
  '/nginx-ingress-controller': 'controller',
  'nginx-ingress-controller': 'controller',
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'keepip: keep the client IP from the edge to the backend, and decide access on it',
    '',
    'Usage: keepip <command> [options]   (keepip <command> --help for its options)',
    '',
    'Commands:',
    ...lines,
    '',
  ].join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    const pkg = await import('../../package.json', { with: { type: 'json' } });
    process.stdout.write(`keepip ${pkg.default.version}\n`);
    return 0;
  }
  const commandName = ALIASES[name] ?? name;
  const entry = Object.hasOwn(commands, commandName) ? commands[commandName] : undefined;
  if (entry === undefined) {
    process.stderr.write(`keepip: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  // Each command lives in src/cli/<name>.ts and exports `command`.
  const { command } = (await import(`./${commandName}.ts`)) as { command: Command };
  return command.run(rest);
}

/**
 * The executable's entry (bin/keepip, or this file run directly): a serving command first re-runs the
 * process with a bounded young generation (bounded-heap.ts). Tests call runCli, which never re-runs.
 */
export async function runExecutable(argv: string[]): Promise<number> {
  // Without a SIGUSR1 listener Node opens its inspector on 127.0.0.1:9229 when the signal comes (a
  // `kill -USR1` meant for the gateway's log reopen, sent to a controller or an lb), and any local
  // process could then run code in keepip. This one stays for the whole run; commands add their own.
  process.on('SIGUSR1', () => {});
  const name = argv[0];
  if (name !== undefined) reexecServingCommand(ALIASES[name] ?? name, argv);
  return runCli(argv);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await runExecutable(process.argv.slice(2));
}
