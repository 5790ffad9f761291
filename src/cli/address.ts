// Moved to src/net/host-port.ts. Kept only for src/gateway/{gateway,server,upstream}.ts, which still
// import it (a listed violation in test/architecture.test.ts); delete once they import src/net/.
export { formatHostPort, type HostPort, type HostPortResult, parseHostPort } from '../net/host-port.ts';
