// node:http, loaded through require. An ESM `import … from 'node:http'` builds the module's ESM
// facade, which reads every export, and node:http's lazy WebSocket / CloseEvent / MessageEvent
// getters then load Node's bundled undici: about 0.1 s of CPU for every process that starts (keepip,
// each worker, each test file), for classes keepip never uses. Types still come from 'node:http'
// (`import type`, erased).
import { createRequire } from 'node:module';

const http: typeof import('node:http') = createRequire(import.meta.url)('node:http');

export default http;
