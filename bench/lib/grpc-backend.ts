// The gRPC backend of the http2 suite: a cleartext HTTP/2 server (prior knowledge, as grpc_pass and
// keepip's GRPC backends speak it) that answers every call to /keepip.test.Echo/Unary with one fixed
// EchoReply and grpc-status 0 in the trailers, after reading the request. It is node:http2 without
// @grpc/grpc-js on purpose: the backend is not what is measured, so it should cost little.
//   node bench/lib/grpc-backend.ts --listen 127.0.0.1:PORT
import http2 from 'node:http2';
import { parseArgs } from 'node:util';

/** EchoReply{message: "keepip bench", real_ip: …} is not needed: a fixed message, 5-byte gRPC prefix. */
export const GRPC_REPLY_MESSAGE = 'keepip bench grpc reply';

/** The gRPC message frame of EchoReply{message: GRPC_REPLY_MESSAGE}. */
export function grpcReplyFrame(): Buffer {
  const text = Buffer.from(GRPC_REPLY_MESSAGE);
  const message = Buffer.concat([Buffer.from([0x0a, text.length]), text]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The gRPC message frame of EchoRequest{message: text} (h2load's request body). */
export function grpcRequestFrame(text: string): Buffer {
  const bytes = Buffer.from(text);
  const message = Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function main(): void {
  const { values } = parseArgs({ options: { listen: { type: 'string' } } });
  const [host, port] = (values.listen ?? '127.0.0.1:0').split(':');
  const reply = grpcReplyFrame();
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (headers[':path'] !== '/keepip.test.Echo/Unary') {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' },
        { endStream: true },
      );
      return;
    }
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }));
      stream.end(reply);
    });
  });
  server.listen(Number(port), host, () => process.stdout.write(`listening ${values.listen}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
