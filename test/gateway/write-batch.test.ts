// Writes held until the end of the event-loop turn (src/gateway/write-batch.ts): what a peer receives
// and when, and that nothing held is lost when a connection is closed in the same turn.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { clientTimeoutsOf } from '../../src/gateway/client-timeouts.ts';
import type { GatewayResponse, H1Handler } from '../../src/gateway/exchange.ts';
import { createH1Server } from '../../src/gateway/h1-server.ts';
import { batchWritesThisTurn, flushBatchedWrites } from '../../src/gateway/write-batch.ts';
import { defaultGatewaySettings } from '../../src/k8s/annotations.ts';
import { memorySocket } from '../helpers/memory-socket.ts';
import { completeResponses, rawExchange } from '../helpers/net.ts';

/** A stream that records each write it is given: one entry per write or writev. */
function recordingStream() {
  const writes: string[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push([chunk.toString('latin1')]);
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.map(({ chunk }) => (chunk as Buffer).toString('latin1')));
      callback();
    },
  });
  return { stream, writes };
}

const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('write-batch: writes held until the end of the turn', () => {
  it('a socket written several times in one turn gets one write at its end', async () => {
    const { stream, writes } = recordingStream();
    batchWritesThisTurn(stream);
    stream.write('head ');
    batchWritesThisTurn(stream); // a second response on the same socket in the same turn
    stream.write('body');
    assert.deepEqual(writes, [], 'nothing leaves during the turn');
    await endOfTurn();
    assert.deepEqual(writes, [['head ', 'body']]);
    assert.equal(stream.writableCorked, 0, 'the socket is left uncorked');
  });

  it('every socket held in the turn is written, each once', async () => {
    const streams = [recordingStream(), recordingStream(), recordingStream()];
    for (const [i, { stream }] of streams.entries()) {
      batchWritesThisTurn(stream);
      stream.write(`answer ${i}`);
    }
    await endOfTurn();
    assert.deepEqual(
      streams.map(({ writes }) => writes),
      [[['answer 0']], [['answer 1']], [['answer 2']]],
    );
  });

  it("keeps the caller's own cork: a corked section inside the turn still leaves at its end", async () => {
    const { stream, writes } = recordingStream();
    batchWritesThisTurn(stream);
    stream.cork();
    stream.write('a');
    stream.write('b');
    stream.uncork();
    assert.deepEqual(writes, [], 'the inner uncork does not flush what the turn holds');
    await endOfTurn();
    assert.deepEqual(writes, [['a', 'b']]);
  });

  it('flushBatchedWrites writes what is held now, and the end of the turn adds nothing', async () => {
    const { stream, writes } = recordingStream();
    batchWritesThisTurn(stream);
    stream.write('before destroy');
    flushBatchedWrites(stream);
    assert.deepEqual(writes, [['before destroy']]);
    flushBatchedWrites(stream); // nothing held: no effect
    await endOfTurn();
    assert.deepEqual(writes, [['before destroy']]);
    assert.equal(stream.writableCorked, 0);
  });

  it('a socket whose write throws is destroyed, and the others of the turn are still written', async () => {
    const broken = new Writable({
      write() {
        throw new Error('broken handle');
      },
    });
    broken.on('error', () => {});
    const healthy = recordingStream();
    batchWritesThisTurn(broken);
    broken.write('lost');
    batchWritesThisTurn(healthy.stream);
    healthy.stream.write('kept');
    await endOfTurn();
    assert.equal(broken.destroyed, true);
    assert.deepEqual(healthy.writes, [['kept']]);
    // And the next turn still batches.
    batchWritesThisTurn(healthy.stream);
    healthy.stream.write('next');
    await endOfTurn();
    assert.deepEqual(healthy.writes, [['kept'], ['next']]);
  });

  it('a socket held after another was flushed early is still written at the end of the turn', async () => {
    const first = recordingStream();
    const second = recordingStream();
    batchWritesThisTurn(first.stream);
    first.stream.write('one');
    flushBatchedWrites(first.stream);
    batchWritesThisTurn(second.stream);
    second.stream.write('two');
    await endOfTurn();
    assert.deepEqual([first.writes, second.writes], [[['one']], [['two']]]);
  });
});

describe('write-batch: the HTTP/1.1 server closes nothing it holds', () => {
  const timeouts = clientTimeoutsOf(defaultGatewaySettings());
  const answer = 'refused';
  const answered = `content-length: ${answer.length}`;

  /** A server answering every request at once with a 403, its body unread. */
  function refusingServer(onResponse: (res: GatewayResponse) => void = () => {}) {
    const handler: H1Handler = {
      onRequest: (_req, res) => {
        res.writeHead(403, { 'content-length': String(answer.length) });
        onResponse(res);
        res.end(Buffer.from(answer));
      },
      onUpgrade: (_req, socket) => socket.destroy(),
      onClientError: (_error, socket) => socket.destroy(),
    };
    return createH1Server(handler, {});
  }

  it('answered before its body, then the client closes in the same turn: the answer is written first', () => {
    const server = refusingServer();
    const client = memorySocket();
    server.serve(client.socket, timeouts);
    // Answered while the body is still coming (the rest is read and dropped), then the client's FIN.
    client.receive(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n${'x'.repeat(1_000)}`);
    client.close();
    assert.match(client.written(), /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.ok(client.written().includes(answered) && client.written().endsWith(answer));
    server.destroyAll();
  });

  it('shutting down closes idle connections only after the answers of this turn are written', () => {
    const server = refusingServer();
    const client = memorySocket();
    server.serve(client.socket, timeouts);
    client.receive('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    server.closeIdle(); // SIGTERM in the same turn as the answer
    assert.ok(client.written().endsWith(answer), client.written());
    assert.equal(client.socket.destroyed, true);
    server.destroyAll();
  });

  it('a response cut by the pipeline (destroy) still delivers what it wrote before', () => {
    const server = refusingServer((res) => {
      res.write(Buffer.from('partial'));
      res.destroy(); // an upstream failing mid-body: nginx too sends what it had, then closes
    });
    const client = memorySocket();
    server.serve(client.socket, timeouts);
    client.receive('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.match(client.written(), /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*\r\n\r\npartial$/);
    server.destroyAll();
  });
  it('pipelined requests and the FIN in one segment: every answer arrives before the close', async () => {
    const request = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const server = refusingServer();
    const listener = net.createServer((socket) => server.serve(socket, timeouts));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address() as net.AddressInfo;
    const { received, closedByServer } = await rawExchange({
      host: '127.0.0.1',
      port,
      payload: request.repeat(3),
      endAfterWrite: true,
    });
    assert.equal(closedByServer, true);
    assert.equal(completeResponses(received), 3);
    server.destroyAll();
    await new Promise((resolve) => listener.close(resolve));
  });
});
