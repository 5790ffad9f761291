// The codes src/up/ throws (UpError) when the whole chain cannot start. src/errors.ts merges this
// table into the registry behind docs/errors.md.
import type { CodeTable } from '../error-table.ts';

export const UP_CODES = {
  UP_CONFIG_INVALID: {
    kind: 'thrown',
    summary: 'keepip up: the manifests have errors the chain cannot run with; nothing starts',
    fix: 'fix the issues listed (each names file, object and field)',
  },
  UP_LISTEN_FAILED: {
    kind: 'thrown',
    summary: 'keepip up: a listener cannot bind its address (in use, not local, or a privileged port)',
    fix: 'free the port, or use --ephemeral-ports to put every listener on a free port',
  },
} as const satisfies CodeTable;

export type UpCode = keyof typeof UP_CODES;
