// The codes src/whoami/ reports for a bad ?wait= parameter. src/errors.ts merges this table into the
// registry behind docs/errors.md.
import type { CodeTable } from '../error-table.ts';

export const WHOAMI_CODES = {
  WHOAMI_BAD_WAIT: {
    kind: 'error',
    summary: 'the ?wait= parameter is not a duration',
    fix: 'write e.g. 250ms or 2s',
  },
  WHOAMI_WAIT_TOO_LONG: {
    kind: 'error',
    summary: 'the ?wait= parameter exceeds the maximum delay',
    fix: 'ask for a shorter wait',
  },
} as const satisfies CodeTable;

export type WhoamiCode = keyof typeof WHOAMI_CODES;
