// An in-memory client connection for the HTTP/1.1 server side: the test decides exactly how the
// client's bytes are split into reads and in which turn the client closes; writes are collected.
import type net from 'node:net';
import { Duplex } from 'node:stream';

export function memorySocket() {
  const written: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(Buffer.from(chunk));
      callback();
    },
  });
  return {
    socket: socket as unknown as net.Socket,
    /** A read of the server's socket. */
    receive: (bytes: string) => socket.emit('data', Buffer.from(bytes, 'latin1')),
    /** The client closes its side, read by the server in the same turn as what came before. */
    close: () => socket.emit('end'),
    written: () => Buffer.concat(written).toString('latin1'),
  };
}
