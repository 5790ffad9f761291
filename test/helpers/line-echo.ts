// Line-echo TCP servers and clients for the tcp-services tests: which backend answered, and whether an
// open connection still carries bytes.
import net from 'node:net';

/** An echo server that prefixes what it sends back with its name. */
export async function startEcho(name: string) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let first = true;
    socket.on('data', (c) => {
      socket.write(first ? `${name} ${c}` : c);
      first = c.toString().endsWith('\n');
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
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
