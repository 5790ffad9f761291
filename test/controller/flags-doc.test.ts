// docs/controller.md lists every controller flag with its status in keepip: the table and the flags the
// parser knows (src/controller/flags.ts) must agree, so a flag that starts working (or stops) is not
// documented as the opposite.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FLAGS } from '../../src/controller/flags.ts';

const DOC = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'controller.md'), 'utf8');

test('every controller flag has a row in docs/controller.md with its default and status', () => {
  const rows = new Map<string, { defaultText: string; status: string }>();
  for (const [, name, defaultText, status] of DOC.matchAll(
    /^\| `--([a-z0-9_-]+)` \| ([^|]*) \| ([^|]+) \|/gm,
  ))
    rows.set(name!, { defaultText: defaultText!.trim(), status: status!.trim() });
  for (const flag of FLAGS) {
    const row = rows.get(flag.name);
    assert.ok(row !== undefined, `--${flag.name} has no row in docs/controller.md`);
    const { defaultText, status } = row;
    assert.equal(defaultText, flag.default === '' ? '""' : `\`${flag.default}\``, `--${flag.name}: default`);
    const said = flag.implemented ? 'implemented' : 'no effect';
    const documented = status === 'implemented' ? 'implemented' : 'no effect';
    assert.equal(documented, said, `--${flag.name}: documented "${status}", flags.ts says ${said}`);
  }
});
