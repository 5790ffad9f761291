// The naive Node proxy baseline: what a Node developer writes first — node:http server, http.request
// with a keep-alive Agent, bodies piped both ways, the same allowlist via net.BlockList. Run as its own
// process so its CPU and memory can be measured:
//   node bench/lib/naive-proxy.ts --listen 127.0.0.1:8081 --upstream 127.0.0.1:8080 --allow-file list.txt
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseHostPort } from '../../src/net/host-port.ts';

/** A BlockList holding every CIDR or address of the list (one per line or comma-separated). */
export function buildAllowList(
  text: string,
): { ok: true; list: net.BlockList } | { ok: false; error: string } {
  const list = new net.BlockList();
  for (const entry of text.split(/[\s,]+/).filter((e) => e !== '')) {
    const [address, prefix] = entry.split('/');
    const family = net.isIP(address ?? '');
    if (family === 0) return { ok: false, error: `"${entry}" is not an IP address or CIDR` };
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address!, type);
    else list.addSubnet(address!, Number(prefix), type);
  }
  return { ok: true, list };
}

export function startNaiveProxy(options: {
  listen: { host: string; port: number };
  upstream: { host: string; port: number };
  allow: net.BlockList;
}): Promise<http.Server> {
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 320 });
  const server = http.createServer((req, res) => {
    const raw = req.socket.remoteAddress ?? '';
    const client = raw.startsWith('::ffff:') ? raw.slice(7) : raw;
    if (!options.allow.check(client, net.isIP(client) === 6 ? 'ipv6' : 'ipv4')) {
      req.resume();
      res.writeHead(403, { 'content-type': 'text/plain' }).end('403 Forbidden\n');
      return;
    }
    const headers = { ...req.headers, 'x-real-ip': client, 'x-forwarded-for': client };
    delete headers.connection;
    const upstream = http.request(
      {
        host: options.upstream.host,
        port: options.upstream.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('502 Bad Gateway\n');
      else res.destroy();
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 75_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => resolve(server));
  });
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { listen: { type: 'string' }, upstream: { type: 'string' }, 'allow-file': { type: 'string' } },
  });
  const listen = parseHostPort(values.listen ?? '');
  const upstream = parseHostPort(values.upstream ?? '');
  if (!listen.ok || !upstream.ok || values['allow-file'] === undefined) {
    process.stderr.write('usage: naive-proxy --listen ADDR:PORT --upstream ADDR:PORT --allow-file FILE\n');
    return 2;
  }
  const allow = buildAllowList(readFileSync(values['allow-file'], 'utf8'));
  if (!allow.ok) {
    process.stderr.write(`naive-proxy: ${allow.error}\n`);
    return 2;
  }
  const server = await startNaiveProxy({ listen: listen.value, upstream: upstream.value, allow: allow.list });
  const { address, port } = server.address() as net.AddressInfo;
  process.stdout.write(`naive-proxy: listening on ${address}:${port}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  server.closeAllConnections();
  server.close();
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
