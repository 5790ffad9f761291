// Line-echo TCP servers and clients for the tcp-services tests: which backend answered, and whether an
// open connection still carries bytes.
import net from 'node:net';
import { listenTracked } from './net.ts';

/** An echo server that prefixes what it sends back with its name. */
export async function startEcho(name: string) {
  const server = net.createServer((socket) => {
    let first = true;
    socket.on('data', (c) => {
      socket.write(first ? `${name} ${c}` : c);
      first = c.toString().endsWith('\n');
    });
    socket.on('error', () => {});
  });
  return listenTracked(server);
}

/** A client connection that sends a line and waits for the answer (or the connection's end). */
export function client(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const ask = (line: string) =>
    new Promise<string>((resolve) => {
      let text = '';
      const done = (answer: string) => {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(answer);
      };
      const onData = (c: Buffer) => {
        text += c.toString();
        if (text.endsWith('\n')) done(text);
      };
      const onClose = () => done('(closed)');
      socket.on('data', onData);
      socket.on('close', onClose);
      socket.write(`${line}\n`);
    });
  return { ask, close: () => socket.destroy() };
}
