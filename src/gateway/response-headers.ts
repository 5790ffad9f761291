// Headers a location adds to every response it gives, replacing the backend's own of the same name
// (nginx's more_set_headers): enable-cors. Only requests that have some pay for the wrapper.
import type { GatewayResponse } from './exchange.ts';

type Headers = Record<string, string | number | string[]>;

/** Wraps `res.writeHead` for this one response so that `extra` is set on whatever head is written. */
export function addResponseHeaders(extra: Readonly<Record<string, string>>, res: GatewayResponse): void {
  const writeHead = res.writeHead.bind(res) as (
    status: number,
    message: string,
    headers: Headers,
  ) => GatewayResponse;
  const writeHeadPlain = res.writeHead.bind(res) as (status: number, headers: Headers) => GatewayResponse;
  (res as { writeHead: unknown }).writeHead = (status: number, a?: unknown, b?: unknown) => {
    const headers = ((typeof a === 'string' ? b : a) ?? {}) as Headers;
    const out: Headers = {};
    for (const name in headers) if (extra[name.toLowerCase()] === undefined) out[name] = headers[name]!;
    Object.assign(out, extra);
    return typeof a === 'string' ? writeHead(status, a, out) : writeHeadPlain(status, out);
  };
}
