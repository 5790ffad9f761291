// Placeholder until the lb role lands.
import type { ServedRole } from './protocol.ts';

export async function serve(_init: unknown, _slot: number): Promise<ServedRole> {
  throw new Error('lb workers are not implemented yet');
}
